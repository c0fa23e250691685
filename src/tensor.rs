//! Tensors of the IR: element type, shape, decoded data, and where the data lived in the file.
use crate::error::{Error, Result};

/// ONNX element types (TensorProto.DataType codes) that the IR names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    Float,
    Uint8,
    Int8,
    Uint16,
    Int16,
    Int32,
    Int64,
    String,
    Bool,
    Float16,
    Double,
    Uint32,
    Uint64,
    Complex64,
    Complex128,
    Bfloat16,
    /// float8 / 4-bit / 2-bit and future types: kept by code, never decoded.
    Other(i32),
}

impl DataType {
    pub fn from_code(code: i32) -> Option<Self> {
        Some(match code {
            1 => Self::Float,
            2 => Self::Uint8,
            3 => Self::Int8,
            4 => Self::Uint16,
            5 => Self::Int16,
            6 => Self::Int32,
            7 => Self::Int64,
            8 => Self::String,
            9 => Self::Bool,
            10 => Self::Float16,
            11 => Self::Double,
            12 => Self::Uint32,
            13 => Self::Uint64,
            14 => Self::Complex64,
            15 => Self::Complex128,
            16 => Self::Bfloat16,
            17..=26 => Self::Other(code),
            _ => return None,
        })
    }

    pub fn code(self) -> i32 {
        match self {
            Self::Float => 1,
            Self::Uint8 => 2,
            Self::Int8 => 3,
            Self::Uint16 => 4,
            Self::Int16 => 5,
            Self::Int32 => 6,
            Self::Int64 => 7,
            Self::String => 8,
            Self::Bool => 9,
            Self::Float16 => 10,
            Self::Double => 11,
            Self::Uint32 => 12,
            Self::Uint64 => 13,
            Self::Complex64 => 14,
            Self::Complex128 => 15,
            Self::Bfloat16 => 16,
            Self::Other(c) => c,
        }
    }

    /// Bytes needed to store `n` elements in `raw_data`, or None for strings.
    pub fn storage_bytes(self, n: u64) -> Option<u64> {
        let bits: u64 = match self {
            Self::String => return None,
            Self::Bool | Self::Uint8 | Self::Int8 => 8,
            Self::Uint16 | Self::Int16 | Self::Float16 | Self::Bfloat16 => 16,
            Self::Float | Self::Int32 | Self::Uint32 => 32,
            Self::Double | Self::Int64 | Self::Uint64 | Self::Complex64 => 64,
            Self::Complex128 => 128,
            // float8 variants
            Self::Other(17..=20) | Self::Other(24) => 8,
            // 4-bit types (uint4, int4, float4e2m1)
            Self::Other(21..=23) => 4,
            // 2-bit types
            Self::Other(25..=26) => 2,
            Self::Other(_) => return None,
        };
        n.checked_mul(bits).map(|b| b.div_ceil(8))
    }

    pub fn name(self) -> String {
        match self {
            Self::Other(c) => format!("type#{c}"),
            t => format!("{t:?}").to_lowercase(),
        }
    }
}

/// Decoded tensor contents. Only the types the middle of the program computes with are decoded;
/// the rest is kept as little-endian bytes (from raw or external data) or left in the protobuf
/// typed fields (`InProto`), and written back unchanged.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    I32(Vec<i32>),
    Bytes(Vec<u8>),
    InProto,
}

/// Where a tensor's data was stored; export writes it back the same way unless told otherwise.
#[derive(Debug, Clone, PartialEq)]
pub enum Storage {
    Raw,
    Typed,
    External(ExternalRef),
}

/// An external-data reference as read from the file (`location` is relative to the model folder).
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalRef {
    pub location: String,
    pub offset: u64,
    pub length: Option<u64>,
}

/// Largest element count the importer accepts for one tensor (2^34, 64 GiB of f32); anything
/// larger is a corrupt or hostile file, refused before any allocation.
pub const MAX_ELEMENTS: u64 = 1 << 34;

/// Element count of `dims`, refusing negative dims and overflow.
pub fn element_count(name: &str, dims: &[i64]) -> Result<u64> {
    let mut n: u64 = 1;
    for &d in dims {
        if d < 0 {
            return Err(Error::tensor(
                name,
                format!("negative dimension {d} in {dims:?}"),
            ));
        }
        n = n
            .checked_mul(d as u64)
            .filter(|&n| n <= MAX_ELEMENTS)
            .ok_or_else(|| Error::tensor(name, format!("dimensions {dims:?} are too large")))?;
    }
    Ok(n)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub elem_type: DataType,
    pub dims: Vec<i64>,
    pub data: TensorData,
    pub storage: Storage,
    /// Opaque rest of the TensorProto (doc string, metadata, and for `InProto` the typed data).
    /// Only `onnx::import`/`onnx::export` read or write it.
    pub(crate) extra: crate::pb::TensorProto,
}

impl Tensor {
    /// A new f32 tensor stored inline as raw data.
    pub fn from_f32(name: &str, dims: Vec<i64>, values: Vec<f32>) -> Self {
        Tensor {
            name: name.to_string(),
            elem_type: DataType::Float,
            dims,
            data: TensorData::F32(values),
            storage: Storage::Raw,
            extra: Default::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.dims.iter().map(|&d| d.max(0) as usize).product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.data {
            TensorData::F32(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<&[i64]> {
        match &self.data {
            TensorData::I64(v) => Some(v),
            _ => None,
        }
    }

    /// Replaces the values and shape of an f32 tensor, keeping its name, storage and metadata.
    pub fn set_f32(&mut self, dims: Vec<i64>, values: Vec<f32>) {
        debug_assert_eq!(dims.iter().product::<i64>() as usize, values.len());
        self.dims = dims;
        self.data = TensorData::F32(values);
        self.elem_type = DataType::Float;
    }
}
