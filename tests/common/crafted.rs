//! Models crafted from the bundled digits MLP (legacy exporter: Gemm → Relu → Gemm → Relu →
//! Gemm) with ops inserted or weights moved, as other exporters write them or as a hostile file
//! might.
use super::model_dir;
use bean_onnx::pb;
use prost::Message;
use std::path::{Path, PathBuf};

pub fn legacy() -> pb::ModelProto {
    let path = model_dir("digits-torch").join("model-legacy.onnx");
    pb::ModelProto::decode(&*std::fs::read(path).unwrap()).unwrap()
}

pub fn write_model(dir: &Path, name: &str, m: &pb::ModelProto) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, m.encode_to_vec()).unwrap();
    p
}

pub fn nodes_of<'a>(m: &'a mut pb::ModelProto, op: &str) -> Vec<&'a mut pb::NodeProto> {
    let g = m.graph.as_mut().unwrap();
    g.node
        .iter_mut()
        .filter(|n| n.op_type.as_deref() == Some(op))
        .collect()
}

pub fn int_attr(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: Some(name.into()),
        r#type: Some(pb::attribute_proto::AttributeType::Int as i32),
        i: Some(v),
        ..Default::default()
    }
}

/// Inserts `op` (reading the `k`-th Gemm's data input, then `extra_inputs`) in front of that
/// Gemm, which then reads the op's output.
pub fn insert_before_gemm(
    m: &mut pb::ModelProto,
    k: usize,
    op: &str,
    extra_inputs: &[&str],
    attrs: Vec<pb::AttributeProto>,
) {
    let g = m.graph.as_mut().unwrap();
    let at = g
        .node
        .iter()
        .enumerate()
        .filter(|(_, n)| n.op_type.as_deref() == Some("Gemm"))
        .nth(k)
        .unwrap()
        .0;
    let feed = g.node[at].input[0].clone();
    let out = format!("{feed}_{}", op.to_lowercase());
    g.node[at].input[0] = out.clone();
    let mut input = vec![feed];
    input.extend(extra_inputs.iter().map(|s| s.to_string()));
    g.node.insert(
        at,
        pb::NodeProto {
            name: Some(format!("/inserted/{op}_{k}")),
            op_type: Some(op.into()),
            input,
            output: vec![out],
            attribute: attrs,
            ..Default::default()
        },
    );
}

/// An int64 initializer.
pub fn add_ints(m: &mut pb::ModelProto, name: &str, values: &[i64]) {
    m.graph.as_mut().unwrap().initializer.push(pb::TensorProto {
        name: Some(name.into()),
        data_type: Some(7),
        dims: vec![values.len() as i64],
        int64_data: values.to_vec(),
        ..Default::default()
    });
}

/// The index of the `k`-th Gemm's weight among the initializers.
pub fn gemm_weight(m: &mut pb::ModelProto, k: usize) -> usize {
    let weight = nodes_of(m, "Gemm")[k].input[1].clone();
    let g = m.graph.as_ref().unwrap();
    g.initializer
        .iter()
        .position(|t| t.name.as_deref() == Some(&weight))
        .unwrap()
}

/// The digits model with an Identity between its last two Gemms.
pub fn identity_before_last_gemm(dir: &Path) -> PathBuf {
    let mut m = legacy();
    insert_before_gemm(&mut m, 2, "Identity", &[], vec![]);
    write_model(dir, "identity_cut.onnx", &m)
}

/// The digits model with the middle Gemm's weight held by a Constant node.
pub fn constant_node_weight(dir: &Path) -> PathBuf {
    let mut m = legacy();
    let i = gemm_weight(&mut m, 1);
    let g = m.graph.as_mut().unwrap();
    let t = g.initializer.remove(i);
    g.node.insert(
        0,
        pb::NodeProto {
            name: Some("/weight/Constant".into()),
            op_type: Some("Constant".into()),
            output: vec![t.name.clone().unwrap()],
            attribute: vec![pb::AttributeProto {
                name: Some("value".into()),
                r#type: Some(pb::attribute_proto::AttributeType::Tensor as i32),
                t: Some(t),
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    write_model(dir, "constant_weight.onnx", &m)
}

/// [`constant_node_weight`] with the Constant's value in the external file `constant.bin`.
pub fn constant_node_external_weight(dir: &Path) -> PathBuf {
    let path = constant_node_weight(dir);
    let mut m = pb::ModelProto::decode(&*std::fs::read(&path).unwrap()).unwrap();
    let node = &mut m.graph.as_mut().unwrap().node[0];
    let t = node.attribute[0].t.as_mut().unwrap();
    let bytes: Vec<u8> = match t.raw_data.take() {
        Some(raw) => raw,
        None => std::mem::take(&mut t.float_data)
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
    };
    std::fs::write(dir.join("constant.bin"), &bytes).unwrap();
    let entry = |k: &str, v: String| pb::StringStringEntryProto {
        key: Some(k.into()),
        value: Some(v),
    };
    t.data_location = Some(pb::tensor_proto::DataLocation::External as i32);
    t.external_data = vec![
        entry("location", "constant.bin".into()),
        entry("offset", "0".into()),
        entry("length", bytes.len().to_string()),
    ];
    write_model(dir, "constant_external.onnx", &m)
}

/// The digits model with Dropout (inference) before the middle Gemm, and Reshape to [−1, 64],
/// Cast to float and Flatten before the last: ops that pass values through unchanged.
pub fn pass_through_ops(dir: &Path) -> PathBuf {
    let mut m = legacy();
    insert_before_gemm(&mut m, 1, "Dropout", &[], vec![]);
    add_ints(&mut m, "shape_64", &[-1, 64]);
    insert_before_gemm(&mut m, 2, "Reshape", &["shape_64"], vec![]);
    insert_before_gemm(&mut m, 2, "Cast", &[], vec![int_attr("to", 1)]);
    insert_before_gemm(&mut m, 2, "Flatten", &[], vec![int_attr("axis", 1)]);
    write_model(dir, "pass_through.onnx", &m)
}

/// The digits model with the middle Gemm's weight stored as float16.
pub fn float16_weight(dir: &Path) -> PathBuf {
    let mut m = legacy();
    let i = gemm_weight(&mut m, 1);
    let t = &mut m.graph.as_mut().unwrap().initializer[i];
    let n: i64 = t.dims.iter().product();
    t.data_type = Some(10);
    t.raw_data = Some(vec![0u8; 2 * n as usize]);
    write_model(dir, "float16_weight.onnx", &m)
}

/// The digits model with the middle Gemm's weight computed at run time (a Transpose of the
/// transposed initializer).
pub fn runtime_weight(dir: &Path) -> PathBuf {
    let mut m = legacy();
    let i = gemm_weight(&mut m, 1);
    let g = m.graph.as_mut().unwrap();
    let t = &mut g.initializer[i];
    let name = t.name.clone().unwrap();
    let (r, c) = (t.dims[0], t.dims[1]);
    let values: Vec<f32> = t
        .raw_data
        .as_ref()
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let mut transposed = vec![0f32; values.len()];
    for a in 0..r as usize {
        for b in 0..c as usize {
            transposed[b * r as usize + a] = values[a * c as usize + b];
        }
    }
    t.dims = vec![c, r];
    t.raw_data = Some(transposed.iter().flat_map(|v| v.to_le_bytes()).collect());
    t.name = Some(format!("{name}_t"));
    g.node.insert(
        0,
        pb::NodeProto {
            name: Some("/weight/Transpose".into()),
            op_type: Some("Transpose".into()),
            input: vec![format!("{name}_t")],
            output: vec![name],
            ..Default::default()
        },
    );
    write_model(dir, "runtime_weight.onnx", &m)
}
