//! Typed arrays read by name from a source (an `.npz` archive or a folder of `.npy` files), the
//! element type found by trying the types accepted in turn: features (float32, float64, uint8),
//! class labels (any integer type) and regression targets (float32, float64).
use super::{DataKeys, Features};
use ndarray::{ArrayD, Axis, IxDyn, OwnedRepr};
use ndarray_npy::{NpzReader, ReadNpyError, ReadNpyExt, ReadNpzError, ReadableElement};
use std::fs::File;
use std::path::PathBuf;

/// Why an array could not be read as the type asked.
pub enum Fetch {
    /// It holds another element type.
    WrongType,
    Failed(String),
}

/// Where arrays are read from by name.
pub trait ArraySource {
    fn array<T: ReadableElement>(&mut self, key: &str) -> Result<ArrayD<T>, Fetch>;
}

impl ArraySource for NpzReader<File> {
    fn array<T: ReadableElement>(&mut self, key: &str) -> Result<ArrayD<T>, Fetch> {
        self.by_name::<OwnedRepr<T>, IxDyn>(key)
            .map_err(|e| match e {
                ReadNpzError::Npy(ReadNpyError::WrongDescriptor(_)) => Fetch::WrongType,
                e => Fetch::Failed(e.to_string()),
            })
    }
}

/// A folder holding `<key>.npy` files; each header is checked (as an `.npz` entry's is) before
/// the array is read.
pub struct NpyFolder(pub PathBuf);

impl ArraySource for NpyFolder {
    fn array<T: ReadableElement>(&mut self, key: &str) -> Result<ArrayD<T>, Fetch> {
        use std::io::Seek;
        let path = self.0.join(format!("{key}.npy"));
        let (mut file, _) =
            super::npy::open(&path, key).map_err(|e| Fetch::Failed(e.to_string()))?;
        file.rewind().map_err(|e| Fetch::Failed(e.to_string()))?;
        ArrayD::<T>::read_npy(std::io::BufReader::new(file)).map_err(|e| match e {
            ReadNpyError::WrongDescriptor(_) => Fetch::WrongType,
            e => Fetch::Failed(e.to_string()),
        })
    }
}

/// `Ok(Some(a))` when `key` holds `T`, `Ok(None)` when it holds another type.
fn try_read<T: ReadableElement>(
    src: &mut impl ArraySource,
    key: &str,
) -> Result<Option<ArrayD<T>>, String> {
    match src.array::<T>(key) {
        Ok(a) => Ok(Some(a)),
        Err(Fetch::WrongType) => Ok(None),
        Err(Fetch::Failed(e)) => Err(e),
    }
}

/// Features as read: float32 and float64 kept, uint8 widened exactly to float32.
pub fn read_features(src: &mut impl ArraySource, key: &str) -> Result<Features, String> {
    let x = if let Some(a) = try_read::<f32>(src, key)? {
        Features::F32(a.into_shared())
    } else if let Some(a) = try_read::<f64>(src, key)? {
        Features::F64(a.into_shared())
    } else if let Some(a) = try_read::<u8>(src, key)? {
        Features::F32(a.mapv(f32::from).into_shared())
    } else {
        return Err("must be float32, float64 or uint8".into());
    };
    if x.shape().len() < 2 {
        return Err(format!(
            "must have a row axis and at least one feature axis, got shape {:?}",
            x.shape()
        ));
    }
    Ok(x)
}

/// Labels, or float targets where labels are not required, checked against `rows`.
pub type Targets = (Option<Vec<i64>>, Option<ndarray::Array2<f32>>);

pub fn read_targets(
    src: &mut impl ArraySource,
    keys: &DataKeys,
    rows: usize,
    require_labels: bool,
) -> Result<Targets, String> {
    let key = &keys.y;
    // Float targets (regression) are accepted where labels are not required.
    let values = if require_labels {
        None
    } else {
        read_values(src, key).map_err(|r| format!("array '{key}': {r}"))?
    };
    if let Some(v) = values {
        if v.nrows() != rows {
            return Err(format!(
                "'{}' has {rows} rows but '{key}' has {}",
                keys.x,
                v.nrows()
            ));
        }
        if let Some(row) = v
            .axis_iter(Axis(0))
            .position(|r| r.iter().any(|x| !x.is_finite()))
        {
            return Err(format!("'{key}' holds NaN or infinity in row {row}"));
        }
        return Ok((None, Some(v)));
    }
    let y = read_labels(src, key).map_err(|r| format!("array '{key}': {r}"))?;
    if y.len() != rows {
        return Err(format!(
            "'{}' has {rows} rows but '{key}' has {} labels",
            keys.x,
            y.len()
        ));
    }
    check_labels(&y, key)?;
    Ok((Some(y), None))
}

/// Refuses negative labels, naming the first (row from 0, as numpy counts).
pub fn check_labels(y: &[i64], key: &str) -> Result<(), String> {
    match y.iter().enumerate().find(|(_, &v)| v < 0) {
        Some((row, v)) => Err(format!("label {v} in row {row} of '{key}' is negative")),
        None => Ok(()),
    }
}

fn read_labels(src: &mut impl ArraySource, key: &str) -> Result<Vec<i64>, String> {
    macro_rules! try_int {
        ($($t:ty),*) => {$(
            if let Some(a) = try_read::<$t>(src, key)? {
                return flat_labels(a.mapv(|v| v as i64));
            }
        )*};
    }
    try_int!(i64, i32, u8, i16, u16, u32, i8);
    match try_read::<u64>(src, key)? {
        Some(a) => {
            if let Some((row, v)) = a
                .iter()
                .enumerate()
                .find(|(_, &v)| i64::try_from(v).is_err())
            {
                return Err(format!("label {v} in row {row} is too large to be a class"));
            }
            flat_labels(a.mapv(|v| v as i64))
        }
        None => Err("labels must be integers (int8..int64, uint8..uint64)".into()),
    }
}

/// Float targets (regression), or None when the array is not float.
fn read_values(
    src: &mut impl ArraySource,
    key: &str,
) -> Result<Option<ndarray::Array2<f32>>, String> {
    let a = if let Some(a) = try_read::<f32>(src, key)? {
        a
    } else if let Some(a) = try_read::<f64>(src, key)? {
        a.mapv(|v| v as f32)
    } else {
        return Ok(None);
    };
    let rows = a.shape().first().copied().unwrap_or(0);
    let cols = a.len().checked_div(rows).unwrap_or(0);
    a.into_shape_with_order((rows, cols))
        .map(Some)
        .map_err(|_| "regression targets must be [N] or [N, k]".to_string())
}

fn flat_labels(a: ArrayD<i64>) -> Result<Vec<i64>, String> {
    match a.shape() {
        [_] | [_, 1] => Ok(a.iter().copied().collect()),
        s => Err(format!(
            "labels must be one per row (shape [N] or [N,1]), got {s:?}"
        )),
    }
}
