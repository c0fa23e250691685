//! IR → ModelProto → bytes or files. Files are written atomically (temporary file + rename in the
//! same folder), and never over the paths the caller protects (the input model and its data).
use crate::error::{Error, Result};
use crate::fsutil;
use crate::ir::{AttrValue, Attribute, Dim, Graph, Model, Node, ValueInfo, ValueType};
use crate::pb;
use crate::tensor::{Storage, Tensor, TensorData};
use prost::Message;
use std::io::Write;
use std::path::{Path, PathBuf};

/// How tensor data is laid out when a model is written to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExternalDataMode {
    /// Tensors that were external when imported stay external; the rest stay inline.
    #[default]
    AsImported,
    /// Everything inside the one .onnx file.
    Inline,
    /// Every tensor of at least this many bytes goes to the external data file.
    Threshold(u64),
}

#[derive(Debug, Clone, Default)]
pub struct SaveOptions {
    pub external: ExternalDataMode,
    /// Paths that must never be written (the input model and its external data files).
    pub protected: Vec<PathBuf>,
}

/// Alignment of tensors in an external data file (lets readers memory-map them).
const EXTERNAL_ALIGN: u64 = 64;

/// The model as one self-contained protobuf (external tensors inlined).
pub fn to_bytes(model: &Model) -> Vec<u8> {
    to_proto(model, &mut |_| Ok(None))
        .expect("inline export cannot fail")
        .encode_to_vec()
}

/// The file a model written to `path` keeps its external tensors in: `<path>.data`.
pub fn data_file_of(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.data", path.display()))
}

/// Writes the model to `path` (and [`data_file_of`] it when any tensor is external).
/// Returns the paths written.
pub fn save(model: &Model, path: &Path, opts: &SaveOptions) -> Result<Vec<PathBuf>> {
    if path.file_name().is_none() {
        return Err(Error::Invalid(format!(
            "{}: not a file path",
            path.display()
        )));
    }
    let data_path = data_file_of(path);
    // The location is recorded relative to the model's folder.
    let data_name = data_path
        .file_name()
        .expect("a file name, checked above")
        .to_string_lossy()
        .into_owned();
    for target in [path, data_path.as_path()] {
        refuse_protected(target, &opts.protected)?;
    }

    let mut data_file: Option<(tempfile::NamedTempFile, u64)> = None;
    let mut place_external = |t: &Tensor| -> Result<Option<Vec<pb::StringStringEntryProto>>> {
        let external = match opts.external {
            ExternalDataMode::AsImported => matches!(t.storage, Storage::External(_)),
            ExternalDataMode::Inline => false,
            ExternalDataMode::Threshold(min) => {
                data_bytes(t).is_some_and(|b| b.len() as u64 >= min)
            }
        };
        let Some(bytes) = external.then(|| data_bytes(t)).flatten() else {
            return Ok(None);
        };
        if data_file.is_none() {
            let f = fsutil::temp_beside(&data_path)?;
            data_file = Some((f, 0));
        }
        let (file, pos) = data_file.as_mut().expect("created above");
        let offset = pos.div_ceil(EXTERNAL_ALIGN) * EXTERNAL_ALIGN;
        let pad = (offset - *pos) as usize;
        file.write_all(&vec![0u8; pad])
            .and_then(|_| file.write_all(&bytes))
            .map_err(|e| Error::io(&data_path, e))?;
        *pos = offset + bytes.len() as u64;
        let entry = |k: &str, v: String| pb::StringStringEntryProto {
            key: Some(k.into()),
            value: Some(v),
        };
        Ok(Some(vec![
            entry("location", data_name.clone()),
            entry("offset", offset.to_string()),
            entry("length", bytes.len().to_string()),
        ]))
    };
    let proto = to_proto(model, &mut place_external)?;

    let mut model_file = fsutil::temp_beside(path)?;
    model_file
        .write_all(&proto.encode_to_vec())
        .map_err(|e| Error::io(path, e))?;
    // Both files complete before either replaces its target; the data goes first, so the model
    // never refers to data that is not there.
    let mut files = Vec::new();
    let mut written = vec![path.to_path_buf()];
    if let Some((file, _)) = data_file {
        files.push((file, data_path.as_path()));
        written.push(data_path.clone());
    }
    files.push((model_file, path));
    fsutil::commit_together(files)?;
    Ok(written)
}

fn refuse_protected(target: &Path, protected: &[PathBuf]) -> Result<()> {
    if protected.iter().any(|p| fsutil::same_file(p, target)) {
        return Err(Error::Invalid(format!(
            "refusing to write {}: it is one of the input files",
            target.display()
        )));
    }
    Ok(())
}

/// Little-endian bytes of decoded data; None for data kept in the proto's typed fields.
fn data_bytes(t: &Tensor) -> Option<Vec<u8>> {
    Some(match &t.data {
        TensorData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::F64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::Bytes(b) => b.clone(),
        TensorData::InProto => return None,
    })
}

/// A string field as it goes out: present when it was present on import or is non-empty now.
fn present(imported: &Option<String>, value: &str) -> Option<String> {
    (imported.is_some() || !value.is_empty()).then(|| value.to_string())
}

type PlaceExternal<'a> = dyn FnMut(&Tensor) -> Result<Option<Vec<pb::StringStringEntryProto>>> + 'a;

fn to_proto(model: &Model, place: &mut PlaceExternal) -> Result<pb::ModelProto> {
    let mut m = model.extra.clone();
    m.ir_version = Some(model.ir_version);
    m.opset_import = model
        .opsets
        .iter()
        .map(|o| pb::OperatorSetIdProto {
            domain: present(&o.extra.domain, &o.domain),
            version: Some(o.version),
        })
        .collect();
    m.graph = Some(export_graph(&model.graph, place)?);
    Ok(m)
}

fn export_graph(g: &Graph, place: &mut PlaceExternal) -> Result<pb::GraphProto> {
    let mut p = g.extra.clone();
    p.name = present(&p.name, &g.name);
    p.node = g
        .nodes
        .iter()
        .map(|n| export_node(n, place))
        .collect::<Result<_>>()?;
    p.initializer = g
        .initializers
        .iter()
        .map(|t| export_tensor(t, place))
        .collect::<Result<_>>()?;
    p.input = g.inputs.iter().map(export_value_info).collect();
    p.output = g.outputs.iter().map(export_value_info).collect();
    p.value_info = g.value_info.iter().map(export_value_info).collect();
    Ok(p)
}

fn export_node(n: &Node, place: &mut PlaceExternal) -> Result<pb::NodeProto> {
    let mut p = n.extra.clone();
    p.name = present(&p.name, &n.name);
    p.op_type = Some(n.op_type.clone());
    p.domain = present(&p.domain, &n.domain);
    p.input = n.inputs.clone();
    p.output = n.outputs.clone();
    p.attribute = n
        .attributes
        .iter()
        .map(|a| export_attribute(a, place))
        .collect::<Result<_>>()?;
    Ok(p)
}

fn export_attribute(a: &Attribute, place: &mut PlaceExternal) -> Result<pb::AttributeProto> {
    use pb::attribute_proto::AttributeType as T;
    let mut p = pb::AttributeProto {
        name: Some(a.name.clone()),
        ..Default::default()
    };
    let ty = match &a.value {
        AttrValue::Float(v) => {
            p.f = Some(*v);
            T::Float
        }
        AttrValue::Int(v) => {
            p.i = Some(*v);
            T::Int
        }
        AttrValue::String(v) => {
            p.s = Some(v.clone());
            T::String
        }
        AttrValue::Floats(v) => {
            p.floats = v.clone();
            T::Floats
        }
        AttrValue::Ints(v) => {
            p.ints = v.clone();
            T::Ints
        }
        AttrValue::Strings(v) => {
            p.strings = v.clone();
            T::Strings
        }
        AttrValue::Tensor(t) => {
            p.t = Some(export_tensor(t, place)?);
            T::Tensor
        }
        AttrValue::Opaque(o) => return Ok((*o.0).clone()),
    };
    p.r#type = Some(ty as i32);
    Ok(p)
}

fn export_value_info(v: &ValueInfo) -> pb::ValueInfoProto {
    let mut p = v.extra.clone();
    p.name = present(&p.name, &v.name);
    p.r#type = match &v.ty {
        ValueType::None => None,
        ValueType::Opaque(t) => Some(t.0.clone()),
        ValueType::Tensor { elem_type, shape } => {
            use pb::tensor_shape_proto::{dimension::Value, Dimension};
            let shape = shape.as_ref().map(|dims| pb::TensorShapeProto {
                dim: dims
                    .iter()
                    .map(|d| Dimension {
                        value: match d {
                            Dim::Value(v) => Some(Value::DimValue(*v)),
                            Dim::Param(s) => Some(Value::DimParam(s.clone())),
                            Dim::Unknown => None,
                        },
                        denotation: None,
                    })
                    .collect(),
            });
            Some(pb::TypeProto {
                value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                    elem_type: Some(elem_type.code()),
                    shape,
                })),
                denotation: None,
            })
        }
    };
    p
}

pub(crate) fn export_tensor(t: &Tensor, place: &mut PlaceExternal) -> Result<pb::TensorProto> {
    let mut p = t.extra.clone();
    p.name = present(&p.name, &t.name);
    p.data_type = Some(t.elem_type.code());
    p.dims = t.dims.clone();
    let was_external = matches!(t.storage, Storage::External(_));
    if let Some(entries) = place(t)? {
        // Keep keys we do not manage (checksum, …) beside the new location/offset/length.
        let mut kept: Vec<_> = p
            .external_data
            .into_iter()
            .filter(|e| !matches!(e.key.as_deref(), Some("location" | "offset" | "length")))
            .collect();
        let mut all = entries;
        all.append(&mut kept);
        p.external_data = all;
        p.data_location = Some(pb::tensor_proto::DataLocation::External as i32);
        p.raw_data = None;
        return Ok(p);
    }
    if was_external {
        p.external_data.clear();
        p.data_location = None;
    }
    let raw = was_external || t.storage == Storage::Raw;
    match (&t.data, raw) {
        (TensorData::InProto, _) => {}
        (_, true) => p.raw_data = data_bytes(t),
        (TensorData::F32(v), false) => p.float_data = v.clone(),
        (TensorData::F64(v), false) => p.double_data = v.clone(),
        (TensorData::I64(v), false) => p.int64_data = v.clone(),
        (TensorData::I32(v), false) => p.int32_data = v.clone(),
        (TensorData::Bytes(_), false) => p.raw_data = data_bytes(t),
    }
    Ok(p)
}
