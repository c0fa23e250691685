//! ModelProto → IR. Validates every tensor (dims, data length, external references) before it
//! allocates, so a hostile file gets an error, never a panic or a huge allocation.
//!
//! Names and domains are copied out but also left in the `extra` protos, so export knows whether
//! the field was present (proto2 presence: `domain: ""` and no domain encode differently).
use super::external;
use crate::error::{Error, Result};
use crate::ir::{
    AttrValue, Attribute, Dim, Graph, Model, Node, OpaqueAttribute, OpaqueType, OpsetId, ValueInfo,
    ValueType,
};
use crate::pb;
use crate::tensor::{element_count, DataType, Storage, Tensor, TensorData};
use prost::Message;
use std::path::Path;

/// Reads an ONNX file; external data is resolved relative to the file's folder.
pub fn load(path: &Path) -> Result<Model> {
    let bytes = crate::fsutil::read_regular(path)?;
    let base = crate::fsutil::folder(path);
    from_bytes(&bytes, Some(&base)).map_err(|e| match e {
        Error::Decode { reason, .. } => Error::Decode {
            path: path.to_path_buf(),
            reason,
        },
        other => other,
    })
}

/// Decodes a model from bytes. `base_dir` is the folder external data is read from; without one,
/// a model with external data is refused.
pub fn from_bytes(bytes: &[u8], base_dir: Option<&Path>) -> Result<Model> {
    let decode_err = |reason: String| Error::Decode {
        path: "<bytes>".into(),
        reason,
    };
    if bytes.is_empty() {
        return Err(decode_err("the file is empty".into()));
    }
    let mut proto = pb::ModelProto::decode(bytes).map_err(|e| decode_err(e.to_string()))?;
    let mut warnings = Vec::new();
    let reencoded = proto.encoded_len();
    if reencoded != bytes.len() {
        warnings.push(format!(
            "decoding kept {reencoded} of {} bytes: the file has fields this schema does not know \
             (or a non-canonical encoding); unknown fields are not written back",
            bytes.len()
        ));
    }
    let graph = proto
        .graph
        .take()
        .ok_or_else(|| decode_err("no graph (is this an ONNX model file?)".into()))?;
    let ir_version = proto
        .ir_version
        .take()
        .ok_or_else(|| decode_err("no ir_version (is this an ONNX model file?)".into()))?;
    let opsets = std::mem::take(&mut proto.opset_import)
        .into_iter()
        .map(|o| OpsetId {
            domain: o.domain.clone().unwrap_or_default(),
            version: o.version.unwrap_or(0),
            extra: o,
        })
        .collect();
    let graph = import_graph(graph, base_dir)?;
    check_references(&graph)?;
    Ok(Model {
        ir_version,
        opsets,
        graph,
        extra: proto,
        warnings,
    })
}

/// Every node input must be a graph input, an initializer, or an earlier node's output.
fn check_references(g: &Graph) -> Result<()> {
    let mut known: std::collections::HashSet<&str> = g
        .inputs
        .iter()
        .map(|v| v.name.as_str())
        .chain(g.initializers.iter().map(|t| t.name.as_str()))
        .collect();
    let produced: std::collections::HashSet<&str> = g
        .nodes
        .iter()
        .flat_map(|n| n.outputs.iter().map(String::as_str))
        .collect();
    for n in &g.nodes {
        for input in n.inputs.iter().filter(|s| !s.is_empty()) {
            if !known.contains(input.as_str()) {
                let reason = if produced.contains(input.as_str()) {
                    format!("input '{input}' is produced by a later node (the graph is not in topological order)")
                } else {
                    format!("input '{input}' is not a graph input, an initializer or any node's output (missing initializer?)")
                };
                return Err(Error::node(n, reason));
            }
        }
        known.extend(n.outputs.iter().map(String::as_str));
    }
    for o in &g.outputs {
        if !known.contains(o.name.as_str()) {
            return Err(Error::Graph(format!(
                "output '{}' is produced by no node",
                o.name
            )));
        }
    }
    Ok(())
}

fn import_graph(mut g: pb::GraphProto, base: Option<&Path>) -> Result<Graph> {
    let nodes = std::mem::take(&mut g.node)
        .into_iter()
        .map(|n| import_node(n, base))
        .collect::<Result<_>>()?;
    let initializers = std::mem::take(&mut g.initializer)
        .into_iter()
        .map(|t| import_tensor(t, base))
        .collect::<Result<_>>()?;
    let vi = |v: Vec<pb::ValueInfoProto>| v.into_iter().map(import_value_info).collect();
    Ok(Graph {
        name: g.name.clone().unwrap_or_default(),
        nodes,
        initializers,
        inputs: vi(std::mem::take(&mut g.input)),
        outputs: vi(std::mem::take(&mut g.output)),
        value_info: vi(std::mem::take(&mut g.value_info)),
        extra: g,
    })
}

pub(super) fn import_node(mut n: pb::NodeProto, base: Option<&Path>) -> Result<Node> {
    let name = n.name.clone().unwrap_or_default();
    let op_type = n.op_type.clone().unwrap_or_default();
    let attributes = std::mem::take(&mut n.attribute)
        .into_iter()
        .map(|a| import_attribute(a, base))
        .collect::<Result<_>>()
        .map_err(|e| Error::Node {
            node: name.clone(),
            op: op_type.clone(),
            reason: e.to_string(),
        })?;
    Ok(Node {
        name,
        op_type,
        domain: n.domain.clone().unwrap_or_default(),
        inputs: std::mem::take(&mut n.input),
        outputs: std::mem::take(&mut n.output),
        attributes,
        extra: n,
    })
}

fn import_attribute(a: pb::AttributeProto, base: Option<&Path>) -> Result<Attribute> {
    use pb::attribute_proto::AttributeType as T;
    let name = a.name.clone().unwrap_or_default();
    let simple = a.doc_string.is_none() && a.ref_attr_name.is_none();
    // Only the field that matches the declared type may be set; anything else stays opaque.
    let others_empty = |keep: &str| {
        (keep == "f" || a.f.is_none())
            && (keep == "i" || a.i.is_none())
            && (keep == "s" || a.s.is_none())
            && (keep == "t" || a.t.is_none())
            && a.g.is_none()
            && a.sparse_tensor.is_none()
            && a.tp.is_none()
            && (keep == "floats" || a.floats.is_empty())
            && (keep == "ints" || a.ints.is_empty())
            && (keep == "strings" || a.strings.is_empty())
            && a.tensors.is_empty()
            && a.graphs.is_empty()
            && a.sparse_tensors.is_empty()
            && a.type_protos.is_empty()
    };
    let value = match a.r#type.and_then(|t| T::try_from(t).ok()) {
        Some(T::Float) if simple && a.f.is_some() && others_empty("f") => {
            AttrValue::Float(a.f.unwrap_or_default())
        }
        Some(T::Int) if simple && a.i.is_some() && others_empty("i") => {
            AttrValue::Int(a.i.unwrap_or_default())
        }
        Some(T::String) if simple && a.s.is_some() && others_empty("s") => {
            AttrValue::String(a.s.clone().unwrap_or_default())
        }
        Some(T::Floats) if simple && others_empty("floats") => AttrValue::Floats(a.floats.clone()),
        Some(T::Ints) if simple && others_empty("ints") => AttrValue::Ints(a.ints.clone()),
        Some(T::Strings) if simple && others_empty("strings") => {
            AttrValue::Strings(a.strings.clone())
        }
        Some(T::Tensor) if simple && a.t.is_some() && others_empty("t") => {
            let t = a.t.clone().unwrap_or_default();
            AttrValue::Tensor(Box::new(import_tensor(t, base)?))
        }
        _ => AttrValue::Opaque(OpaqueAttribute(Box::new(a))),
    };
    Ok(Attribute { name, value })
}

fn import_value_info(mut v: pb::ValueInfoProto) -> ValueInfo {
    let name = v.name.clone().unwrap_or_default();
    let ty = match v.r#type.take() {
        None => ValueType::None,
        Some(t) => tensor_type(&t).unwrap_or(ValueType::Opaque(OpaqueType(t))),
    };
    ValueInfo { name, ty, extra: v }
}

/// A plain tensor type (no denotations) as IR; None when it must stay opaque.
fn tensor_type(t: &pb::TypeProto) -> Option<ValueType> {
    let pb::type_proto::Value::TensorType(tt) = t.value.as_ref()? else {
        return None;
    };
    if t.denotation.is_some() {
        return None;
    }
    let elem_type = DataType::from_code(tt.elem_type?)?;
    let shape = match &tt.shape {
        None => None,
        Some(s) => {
            let mut dims = Vec::with_capacity(s.dim.len());
            for d in &s.dim {
                if d.denotation.is_some() {
                    return None;
                }
                use pb::tensor_shape_proto::dimension::Value;
                dims.push(match &d.value {
                    Some(Value::DimValue(v)) => Dim::Value(*v),
                    Some(Value::DimParam(p)) => Dim::Param(p.clone()),
                    None => Dim::Unknown,
                });
            }
            Some(dims)
        }
    };
    Some(ValueType::Tensor { elem_type, shape })
}

/// TensorProto → Tensor, checking the data against the declared shape before allocating.
pub(crate) fn import_tensor(mut t: pb::TensorProto, base: Option<&Path>) -> Result<Tensor> {
    let name = t.name.clone().unwrap_or_default();
    let code = t.data_type.take().unwrap_or(0);
    let elem_type = DataType::from_code(code)
        .filter(|_| code != 0)
        .ok_or_else(|| Error::tensor(&name, format!("unknown or missing data type {code}")))?;
    let dims = std::mem::take(&mut t.dims);
    let n = element_count(&name, &dims)?;
    let external = t.data_location == Some(pb::tensor_proto::DataLocation::External as i32);
    if t.segment.is_some() {
        return Err(Error::tensor(&name, "segmented tensors are not supported"));
    }
    let fields = value_fields(&t, external);
    if fields.len() > 1 {
        return Err(Error::tensor(
            &name,
            format!(
                "holds values in more than one field ({}): which one is meant is ambiguous",
                fields.join(", ")
            ),
        ));
    }

    let (storage, bytes) = if external {
        let r = external::parse_ref(&name, &t.external_data)?;
        let base = base.ok_or_else(|| {
            Error::external(&name, "the model was not read from a file, so there is no folder to read external data from")
        })?;
        let need = elem_type.storage_bytes(n).ok_or_else(|| {
            Error::external(
                &name,
                format!("{} tensors cannot be external", elem_type.name()),
            )
        })?;
        let bytes = external::read(&name, base, &r, need)?;
        (Storage::External(r), Some(bytes))
    } else if let Some(raw) = t.raw_data.take() {
        let need = elem_type
            .storage_bytes(n)
            .ok_or_else(|| Error::tensor(&name, "string tensor with raw_data"))?;
        if raw.len() as u64 != need {
            return Err(Error::tensor(
                &name,
                format!(
                    "raw_data holds {} bytes but shape {dims:?} of {} needs {need}",
                    raw.len(),
                    elem_type.name()
                ),
            ));
        }
        (Storage::Raw, Some(raw))
    } else {
        (Storage::Typed, None)
    };

    let data = match bytes {
        Some(b) => decode_le(elem_type, b),
        None => decode_typed(&name, elem_type, n, &mut t)?,
    };
    Ok(Tensor {
        name,
        elem_type,
        dims,
        data,
        storage,
        extra: t,
    })
}

/// The fields of `t` holding values; ONNX allows one.
fn value_fields(t: &pb::TensorProto, external: bool) -> Vec<&'static str> {
    [
        ("external data", external),
        ("raw_data", t.raw_data.is_some()),
        ("float_data", !t.float_data.is_empty()),
        ("int32_data", !t.int32_data.is_empty()),
        ("string_data", !t.string_data.is_empty()),
        ("int64_data", !t.int64_data.is_empty()),
        ("double_data", !t.double_data.is_empty()),
        ("uint64_data", !t.uint64_data.is_empty()),
    ]
    .into_iter()
    .filter_map(|(field, present)| present.then_some(field))
    .collect()
}

fn decode_le(elem_type: DataType, b: Vec<u8>) -> TensorData {
    fn chunks<const N: usize, T>(b: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
        b.chunks_exact(N)
            .map(|c| f(c.try_into().expect("exact chunk")))
            .collect()
    }
    match elem_type {
        DataType::Float => TensorData::F32(chunks(&b, f32::from_le_bytes)),
        DataType::Double => TensorData::F64(chunks(&b, f64::from_le_bytes)),
        DataType::Int64 => TensorData::I64(chunks(&b, i64::from_le_bytes)),
        DataType::Int32 => TensorData::I32(chunks(&b, i32::from_le_bytes)),
        _ => TensorData::Bytes(b),
    }
}

/// Typed-field data (`float_data`, `int64_data`, …). Decoded types are moved out of the proto;
/// other types stay in it (`InProto`) after their length is checked.
fn decode_typed(name: &str, et: DataType, n: u64, t: &mut pb::TensorProto) -> Result<TensorData> {
    // `n` is at most MAX_ELEMENTS, so `n * 2` cannot overflow.
    let check = |len: usize, field: &str, need: u64| {
        if len as u64 == need {
            Ok(())
        } else {
            Err(Error::tensor(
                name,
                format!("{field} holds {len} values but the shape needs {need}"),
            ))
        }
    };
    Ok(match et {
        DataType::Float => {
            check(t.float_data.len(), "float_data", n)?;
            TensorData::F32(std::mem::take(&mut t.float_data))
        }
        DataType::Double => {
            check(t.double_data.len(), "double_data", n)?;
            TensorData::F64(std::mem::take(&mut t.double_data))
        }
        DataType::Int64 => {
            check(t.int64_data.len(), "int64_data", n)?;
            TensorData::I64(std::mem::take(&mut t.int64_data))
        }
        DataType::Int32 => {
            check(t.int32_data.len(), "int32_data", n)?;
            TensorData::I32(std::mem::take(&mut t.int32_data))
        }
        DataType::String => {
            check(t.string_data.len(), "string_data", n)?;
            TensorData::InProto
        }
        DataType::Complex64 => {
            check(t.float_data.len(), "float_data", 2 * n)?;
            TensorData::InProto
        }
        DataType::Complex128 => {
            check(t.double_data.len(), "double_data", 2 * n)?;
            TensorData::InProto
        }
        DataType::Uint32 | DataType::Uint64 => {
            check(t.uint64_data.len(), "uint64_data", n)?;
            TensorData::InProto
        }
        // 8/16-bit types live in int32_data, one value each (float16, bfloat16 and float8 as
        // their bits); 4-bit types two to a value, 2-bit types four.
        DataType::Bool
        | DataType::Uint8
        | DataType::Int8
        | DataType::Uint16
        | DataType::Int16
        | DataType::Float16
        | DataType::Bfloat16
        | DataType::Other(17..=20)
        | DataType::Other(24) => {
            check(t.int32_data.len(), "int32_data", n)?;
            TensorData::InProto
        }
        DataType::Other(21..=23) => {
            check(t.int32_data.len(), "int32_data", n.div_ceil(2))?;
            TensorData::InProto
        }
        DataType::Other(25..=26) => {
            check(t.int32_data.len(), "int32_data", n.div_ceil(4))?;
            TensorData::InProto
        }
        DataType::Other(_) => TensorData::InProto,
    })
}
