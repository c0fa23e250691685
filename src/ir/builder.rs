//! A small builder for ONNX graphs in our IR: name-generating op helpers and typed constants.
//! Every call returns a [`Wire`], the handle of the tensor it produced, and takes wires as
//! inputs, so a graph is written as ordinary expressions and no tensor name is spelled by hand.
//! Every float constant takes the builder's element type, so the same construction yields an f32
//! graph (training) or an f64 graph (gradient checks).
use crate::ir::{AttrValue, Attribute, Dim, Graph, Model, Node, OpsetId, ValueInfo};
use crate::tensor::{DataType, Storage, Tensor, TensorData};

/// Opset of generated graphs: ONNX Runtime and tract both support it fully.
pub const OPSET: i64 = 17;
/// IR version matching opset 17.
pub const IR_VERSION: i64 = 8;

/// A tensor of the graph being built (its name, which only the builder chooses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wire(String);

impl Wire {
    /// The tensor's name in the built graph.
    pub fn name(&self) -> &str {
        &self.0
    }
}

pub fn attr_int(name: &str, v: i64) -> Attribute {
    Attribute {
        name: name.into(),
        value: AttrValue::Int(v),
    }
}

pub struct GraphBuilder {
    graph: Graph,
    elem: DataType,
    counter: usize,
}

impl GraphBuilder {
    pub fn new(name: &str, elem: DataType) -> Self {
        assert!(matches!(elem, DataType::Float | DataType::Double));
        GraphBuilder {
            graph: Graph {
                name: name.into(),
                ..Default::default()
            },
            elem,
            counter: 0,
        }
    }

    /// The element type of the graph's float tensors.
    pub fn elem(&self) -> DataType {
        self.elem
    }

    fn fresh(&mut self, hint: &str) -> String {
        self.counter += 1;
        format!("{hint}_{}", self.counter)
    }

    /// Declares a float graph input of the builder's type; a `None` dim is the symbolic batch.
    pub fn input(&mut self, name: &str, dims: &[Option<usize>]) -> Wire {
        let shape = dims
            .iter()
            .map(|d| match d {
                Some(v) => Dim::Value(*v as i64),
                None => Dim::Param("batch".into()),
            })
            .collect();
        self.graph
            .inputs
            .push(ValueInfo::tensor(name, self.elem, Some(shape)));
        Wire(name.to_string())
    }

    /// Marks `tensor` as a graph output under `name` (through an Identity when names differ).
    pub fn output(&mut self, tensor: &Wire, name: &str) {
        if tensor.0 != name {
            self.graph.nodes.push(Node {
                name: format!("out_{name}"),
                op_type: "Identity".into(),
                inputs: vec![tensor.0.clone()],
                outputs: vec![name.into()],
                ..Default::default()
            });
        }
        self.graph
            .outputs
            .push(ValueInfo::tensor(name, self.elem, None));
    }

    pub fn op(&mut self, op: &str, inputs: &[&Wire], attrs: Vec<Attribute>) -> Wire {
        let out = self.fresh(&op.to_lowercase());
        self.graph.nodes.push(Node {
            name: out.clone(),
            op_type: op.into(),
            inputs: inputs.iter().map(|w| w.0.clone()).collect(),
            outputs: vec![out.clone()],
            attributes: attrs,
            ..Default::default()
        });
        Wire(out)
    }

    /// A float constant of the builder's type with the given shape.
    pub fn constant(&mut self, values: &[f64], dims: &[i64]) -> Wire {
        let name = self.fresh("const");
        let data = match self.elem {
            DataType::Double => TensorData::F64(values.to_vec()),
            _ => TensorData::F32(values.iter().map(|&v| v as f32).collect()),
        };
        self.graph.initializers.push(Tensor {
            name: name.clone(),
            elem_type: self.elem,
            dims: dims.to_vec(),
            data,
            storage: Storage::Raw,
            extra: Default::default(),
        });
        Wire(name)
    }

    pub fn scalar(&mut self, v: f64) -> Wire {
        self.constant(&[v], &[])
    }

    /// An int64 constant (axes, shapes).
    pub fn ints(&mut self, values: &[i64]) -> Wire {
        let name = self.fresh("ints");
        self.graph.initializers.push(Tensor {
            name: name.clone(),
            elem_type: DataType::Int64,
            dims: vec![values.len() as i64],
            data: TensorData::I64(values.to_vec()),
            storage: Storage::Raw,
            extra: Default::default(),
        });
        Wire(name)
    }

    // Arithmetic shorthands.
    pub fn add(&mut self, a: &Wire, b: &Wire) -> Wire {
        self.op("Add", &[a, b], vec![])
    }
    pub fn sub(&mut self, a: &Wire, b: &Wire) -> Wire {
        self.op("Sub", &[a, b], vec![])
    }
    pub fn mul(&mut self, a: &Wire, b: &Wire) -> Wire {
        self.op("Mul", &[a, b], vec![])
    }
    pub fn div(&mut self, a: &Wire, b: &Wire) -> Wire {
        self.op("Div", &[a, b], vec![])
    }
    pub fn matmul(&mut self, a: &Wire, b: &Wire) -> Wire {
        self.op("MatMul", &[a, b], vec![])
    }
    /// `op(a) · op(b)` with optional transposes, as one Gemm.
    pub fn gemm(&mut self, a: &Wire, b: &Wire, trans_a: bool, trans_b: bool) -> Wire {
        self.op(
            "Gemm",
            &[a, b],
            vec![
                attr_int("transA", trans_a as i64),
                attr_int("transB", trans_b as i64),
            ],
        )
    }
    pub fn mul_scalar(&mut self, a: &Wire, k: f64) -> Wire {
        let c = self.scalar(k);
        self.mul(a, &c)
    }
    pub fn square(&mut self, a: &Wire) -> Wire {
        self.mul(a, a)
    }
    /// Sum over `axes` (all axes when empty), keeping dims or not.
    pub fn reduce_sum(&mut self, a: &Wire, axes: &[i64], keepdims: bool) -> Wire {
        if axes.is_empty() {
            return self.op(
                "ReduceSum",
                &[a],
                vec![attr_int("keepdims", keepdims as i64)],
            );
        }
        let ax = self.ints(axes);
        self.op(
            "ReduceSum",
            &[a, &ax],
            vec![attr_int("keepdims", keepdims as i64)],
        )
    }
    pub fn reduce_mean(&mut self, a: &Wire, axes: &[i64], keepdims: bool) -> Wire {
        let attrs = if axes.is_empty() {
            vec![attr_int("keepdims", keepdims as i64)]
        } else {
            vec![
                Attribute {
                    name: "axes".into(),
                    value: AttrValue::Ints(axes.to_vec()),
                },
                attr_int("keepdims", keepdims as i64),
            ]
        };
        self.op("ReduceMean", &[a], attrs)
    }
    /// The batch size as a scalar of the builder's type.
    pub fn batch_size(&mut self, x: &Wire) -> Wire {
        let shape = self.op("Shape", &[x], vec![]);
        let start = self.ints(&[0]);
        let end = self.ints(&[1]);
        let b = self.op("Slice", &[&shape, &start, &end], vec![]);
        let b = self.op("Cast", &[&b], vec![attr_int("to", self.elem.code() as i64)]);
        let axes = self.ints(&[0]);
        self.op("Squeeze", &[&b, &axes], vec![])
    }

    pub fn into_model(self) -> Model {
        Model {
            ir_version: IR_VERSION,
            opsets: vec![OpsetId {
                domain: String::new(),
                version: OPSET,
                extra: Default::default(),
            }],
            graph: self.graph,
            extra: crate::pb::ModelProto {
                producer_name: Some("bean-onnx".into()),
                producer_version: Some(env!("CARGO_PKG_VERSION").into()),
                ..Default::default()
            },
            warnings: vec![],
        }
    }
}
