//! The in-memory model the whole program works on. Protobuf appears here only as opaque,
//! crate-private remainders (`extra`, [`OpaqueAttribute`], [`OpaqueType`]: the fields the middle
//! never reads), so that import → export loses nothing and nothing outside `onnx` depends on them.
pub mod builder;
mod patch;

pub use patch::GraphPatch;

use crate::pb;
use crate::tensor::{DataType, Storage, Tensor};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq)]
pub struct OpsetId {
    /// "" is the default ONNX domain.
    pub domain: String,
    pub version: i64,
    /// Opaque original (keeps whether `domain` was written out).
    pub(crate) extra: pb::OperatorSetIdProto,
}

#[derive(Debug, Clone)]
pub struct Model {
    pub ir_version: i64,
    pub opsets: Vec<OpsetId>,
    pub graph: Graph,
    /// Opaque rest of the ModelProto: producer, doc string, metadata, functions, training info …
    pub(crate) extra: pb::ModelProto,
    /// Things the importer noticed but accepted (for example a decode that dropped bytes).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Graph {
    pub name: String,
    pub nodes: Vec<Node>,
    pub initializers: Vec<Tensor>,
    pub inputs: Vec<ValueInfo>,
    pub outputs: Vec<ValueInfo>,
    pub value_info: Vec<ValueInfo>,
    /// Opaque rest of the GraphProto (doc string, sparse initializers, annotations, metadata).
    pub(crate) extra: pb::GraphProto,
}

#[derive(Debug, Clone, Default)]
pub struct Node {
    pub name: String,
    pub op_type: String,
    pub domain: String,
    /// Input names; an empty string marks an omitted optional input, as in ONNX.
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub attributes: Vec<Attribute>,
    /// Opaque rest of the NodeProto (doc string, overload, metadata, device configurations).
    pub(crate) extra: pb::NodeProto,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    pub name: String,
    pub value: AttrValue,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Float(f32),
    Int(i64),
    String(Vec<u8>),
    Floats(Vec<f32>),
    Ints(Vec<i64>),
    Strings(Vec<Vec<u8>>),
    Tensor(Box<Tensor>),
    /// Graphs, sparse tensors, type protos, references, or anything with a doc string: passed
    /// through untouched.
    Opaque(OpaqueAttribute),
}

/// An attribute kept as it was read (graphs, sparse tensors, references, doc strings …).
#[derive(Debug, Clone, PartialEq)]
pub struct OpaqueAttribute(pub(crate) Box<pb::AttributeProto>);

#[derive(Debug, Clone, PartialEq)]
pub enum Dim {
    Value(i64),
    Param(String),
    Unknown,
}

impl std::fmt::Display for Dim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dim::Value(v) => write!(f, "{v}"),
            Dim::Param(p) => write!(f, "{p}"),
            Dim::Unknown => write!(f, "?"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ValueType {
    /// A tensor; `shape` None means the rank is unknown.
    Tensor {
        elem_type: DataType,
        shape: Option<Vec<Dim>>,
    },
    /// Sequence, map, optional, sparse types, or a tensor type with denotations: passed through.
    Opaque(OpaqueType),
    /// No type recorded.
    None,
}

/// A value type kept as it was read (sequences, maps, optionals, denotations …).
#[derive(Debug, Clone, PartialEq)]
pub struct OpaqueType(pub(crate) pb::TypeProto);

#[derive(Debug, Clone, PartialEq)]
pub struct ValueInfo {
    pub name: String,
    pub ty: ValueType,
    /// Opaque rest of the ValueInfoProto (doc string, metadata).
    pub(crate) extra: pb::ValueInfoProto,
}

impl ValueInfo {
    pub fn tensor(name: &str, elem_type: DataType, shape: Option<Vec<Dim>>) -> Self {
        ValueInfo {
            name: name.to_string(),
            ty: ValueType::Tensor { elem_type, shape },
            extra: Default::default(),
        }
    }

    pub fn tensor_shape(&self) -> Option<(DataType, Option<&[Dim]>)> {
        match &self.ty {
            ValueType::Tensor { elem_type, shape } => Some((*elem_type, shape.as_deref())),
            _ => None,
        }
    }

    /// A human-readable type such as `float[N,64]` or `seq(map)`.
    pub fn type_string(&self) -> String {
        match &self.ty {
            ValueType::Tensor { elem_type, shape } => match shape {
                Some(s) => format!(
                    "{}[{}]",
                    elem_type.name(),
                    s.iter()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                ),
                None => format!("{}[?]", elem_type.name()),
            },
            ValueType::Opaque(t) => opaque_type_name(&t.0),
            ValueType::None => "?".into(),
        }
    }
}

fn opaque_type_name(t: &pb::TypeProto) -> String {
    use pb::type_proto::Value;
    match &t.value {
        Some(Value::TensorType(_)) => "tensor".into(),
        Some(Value::SequenceType(s)) => match s.elem_type.as_deref() {
            Some(e) => format!("seq({})", opaque_type_name(e)),
            None => "seq".into(),
        },
        Some(Value::MapType(_)) => "map".into(),
        Some(Value::OptionalType(_)) => "optional".into(),
        Some(Value::SparseTensorType(_)) => "sparse_tensor".into(),
        Some(Value::OpaqueType(_)) => "opaque".into(),
        None => "?".into(),
    }
}

impl Node {
    /// A node of the default domain with no name of its own and no attributes.
    pub fn new(op_type: &str, inputs: Vec<String>, outputs: Vec<String>) -> Self {
        Node {
            op_type: op_type.into(),
            inputs,
            outputs,
            ..Default::default()
        }
    }

    pub fn attr(&self, name: &str) -> Option<&AttrValue> {
        self.attributes
            .iter()
            .find(|a| a.name == name)
            .map(|a| &a.value)
    }

    /// Integer attribute `name`, or `default` when absent.
    pub fn int_attr(&self, name: &str, default: i64) -> crate::Result<i64> {
        match self.attr(name) {
            None => Ok(default),
            Some(AttrValue::Int(v)) => Ok(*v),
            Some(_) => Err(crate::Error::node(
                self,
                format!("attribute {name}: expected an integer"),
            )),
        }
    }

    /// A 0/1 attribute (`transA`, `keepdims` …), or `default` when absent; any other value is
    /// an error naming the node.
    pub fn flag_attr(&self, name: &str, default: bool) -> crate::Result<bool> {
        match self.int_attr(name, default as i64)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(crate::Error::node(
                self,
                format!("attribute {name}: expected 0 or 1, got {v}"),
            )),
        }
    }

    /// Finite float attribute `name`, or `default` when absent.
    pub fn float_attr(&self, name: &str, default: f32) -> crate::Result<f32> {
        match self.attr(name) {
            None => Ok(default),
            Some(AttrValue::Float(v)) if v.is_finite() => Ok(*v),
            Some(AttrValue::Float(v)) => Err(crate::Error::node(
                self,
                format!("attribute {name}: {v} is not finite"),
            )),
            Some(_) => Err(crate::Error::node(
                self,
                format!("attribute {name}: expected a float"),
            )),
        }
    }

    /// True for a Constant node (default domain) that produces `tensor`.
    pub fn is_constant_of(&self, tensor: &str) -> bool {
        self.op_type == "Constant"
            && self.domain.is_empty()
            && self.outputs.first().is_some_and(|o| o == tensor)
    }

    /// Input `i` if present and not the empty "omitted" marker.
    pub fn input(&self, i: usize) -> Option<&str> {
        self.inputs
            .get(i)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// A short label for messages: the node name, or its first output when it has no name.
    pub fn label(&self) -> &str {
        if self.name.is_empty() {
            self.outputs
                .first()
                .map(String::as_str)
                .unwrap_or("<unnamed>")
        } else {
            &self.name
        }
    }
}

impl Graph {
    pub fn initializer(&self, name: &str) -> Option<&Tensor> {
        self.initializers.iter().find(|t| t.name == name)
    }

    pub fn initializer_mut(&mut self, name: &str) -> Option<&mut Tensor> {
        self.initializers.iter_mut().find(|t| t.name == name)
    }

    /// Every tensor the graph holds: initializers, then node attributes' tensors (a Constant's
    /// `value`, …).
    pub fn tensors(&self) -> impl Iterator<Item = &Tensor> {
        let in_attributes = self.nodes.iter().flat_map(|n| &n.attributes);
        self.initializers
            .iter()
            .chain(in_attributes.filter_map(|a| match &a.value {
                AttrValue::Tensor(t) => Some(&**t),
                _ => None,
            }))
    }

    /// The external data files the graph's tensors are read from, relative to the model's
    /// folder, each once.
    pub fn external_locations(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .tensors()
            .filter_map(|t| match &t.storage {
                Storage::External(r) => Some(r.location.as_str()),
                _ => None,
            })
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The tensor of this name that the graph itself holds: an initializer, or the `value` of
    /// the Constant node that produces it.
    pub fn stored(&self, name: &str) -> Option<&Tensor> {
        self.initializer(name).or_else(|| {
            let node = self.nodes.iter().find(|n| n.is_constant_of(name))?;
            match node.attr("value") {
                Some(AttrValue::Tensor(t)) => Some(&**t),
                _ => None,
            }
        })
    }

    /// [`Graph::stored`], to change.
    pub fn stored_mut(&mut self, name: &str) -> Option<&mut Tensor> {
        if self.initializer(name).is_some() {
            return self.initializer_mut(name);
        }
        let node = self.nodes.iter_mut().find(|n| n.is_constant_of(name))?;
        node.attributes
            .iter_mut()
            .find(|a| a.name == "value")
            .and_then(|a| match &mut a.value {
                AttrValue::Tensor(t) => Some(&mut **t),
                _ => None,
            })
    }

    /// For each tensor name, the indices of the nodes that read it.
    pub fn consumers(&self) -> HashMap<&str, Vec<usize>> {
        let mut map: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, n) in self.nodes.iter().enumerate() {
            for inp in n.inputs.iter().filter(|s| !s.is_empty()) {
                let v = map.entry(inp.as_str()).or_default();
                if v.last() != Some(&i) {
                    v.push(i);
                }
            }
        }
        map
    }

    /// For each tensor name, the index of the node that writes it.
    pub fn producers(&self) -> HashMap<&str, usize> {
        let mut map = HashMap::new();
        for (i, n) in self.nodes.iter().enumerate() {
            for out in n.outputs.iter().filter(|s| !s.is_empty()) {
                map.insert(out.as_str(), i);
            }
        }
        map
    }

    pub fn is_graph_output(&self, name: &str) -> bool {
        self.outputs.iter().any(|o| o.name == name)
    }

    /// A graph input that is not also an initializer (old IR versions list initializers as inputs).
    pub fn runtime_inputs(&self) -> impl Iterator<Item = &ValueInfo> {
        self.inputs
            .iter()
            .filter(|i| self.initializer(&i.name).is_none())
    }

    /// Makes every recorded type of a stored tensor — an initializer or a Constant node's value
    /// (in `value_info`, in the graph inputs where IR < 4 models list initializers, in the
    /// outputs) — say the tensor's current element type and shape, so a model whose tensors
    /// changed size stays valid for strict consumers.
    pub fn sync_stored_types(&mut self) {
        let constants = self.nodes.iter().filter_map(|n| match n.attr("value") {
            Some(AttrValue::Tensor(t)) if n.is_constant_of(n.outputs.first()?) => {
                Some((n.outputs[0].clone(), &**t))
            }
            _ => None,
        });
        let shapes: HashMap<String, (DataType, Vec<Dim>)> = self
            .initializers
            .iter()
            .map(|t| (t.name.clone(), t))
            .chain(constants)
            .map(|(name, t)| {
                let dims = t.dims.iter().map(|&d| Dim::Value(d)).collect();
                (name, (t.elem_type, dims))
            })
            .collect();
        let records = self
            .value_info
            .iter_mut()
            .chain(self.inputs.iter_mut())
            .chain(self.outputs.iter_mut());
        for v in records {
            let Some((elem, dims)) = shapes.get(&v.name) else {
                continue;
            };
            if let ValueType::Tensor { elem_type, shape } = &mut v.ty {
                *elem_type = *elem;
                *shape = Some(dims.clone());
            }
        }
    }

    /// Removes nodes whose outputs nobody needs for the graph outputs (and initializers that
    /// become unused). Keeps node order.
    pub fn remove_dead_nodes(&mut self) {
        let mut needed: std::collections::HashSet<String> =
            self.outputs.iter().map(|o| o.name.clone()).collect();
        let mut keep = vec![false; self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate().rev() {
            if n.outputs.iter().any(|o| needed.contains(o)) {
                keep[i] = true;
                needed.extend(n.inputs.iter().filter(|s| !s.is_empty()).cloned());
            }
        }
        let mut it = keep.iter();
        self.nodes.retain(|_| *it.next().unwrap_or(&true));
        self.initializers.retain(|t| needed.contains(&t.name));
        self.value_info.retain(|v| needed.contains(&v.name));
    }
}
