//! Labelled data sets from `.npz` files (plain or compressed): features `x`, integer labels `y`.
use crate::error::{Error, Result};
use crate::ir::Dim;
use ndarray::{ArrayD, Axis, IxDyn, OwnedRepr};
use ndarray_npy::{NpzReader, ReadNpyError, ReadNpzError};
use std::fs::File;
use std::path::{Path, PathBuf};

/// Feature values as read (uint8 is widened to f32 exactly; f64 stays f64 until the model's input
/// type is known).
#[derive(Debug, Clone)]
pub enum Features {
    F32(ArrayD<f32>),
    F64(ArrayD<f64>),
}

#[derive(Debug, Clone)]
pub struct Dataset {
    pub path: PathBuf,
    pub x: Features,
    /// Class labels, one per row of `x`; None when the file has no integer label array.
    pub y: Option<Vec<i64>>,
    /// Regression targets `[N, k]` when `y` holds floats instead of labels.
    pub y_values: Option<ndarray::Array2<f32>>,
}

/// Names of the arrays to read.
#[derive(Debug, Clone)]
pub struct DataKeys {
    pub x: String,
    pub y: String,
}

impl Default for DataKeys {
    fn default() -> Self {
        DataKeys {
            x: "x".into(),
            y: "y".into(),
        }
    }
}

fn is_wrong_type(e: &ReadNpzError) -> bool {
    matches!(e, ReadNpzError::Npy(ReadNpyError::WrongDescriptor(_)))
}

/// Largest array the loader accepts (16 GiB): beyond it a file is refused before allocation.
const MAX_ARRAY_BYTES: u64 = 16 << 30;

/// Checks every `.npy` entry's header against the bytes the entry really holds, so a header that
/// claims a huge shape is refused before ndarray-npy allocates for it.
fn check_npz_sizes(path: &Path) -> std::result::Result<(), String> {
    use std::io::Read;
    let file = File::open(path).map_err(|e| e.to_string())?;
    let mut zip =
        zip::ZipArchive::new(file).map_err(|e| format!("not a readable .npz file ({e})"))?;
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| format!("not a readable .npz file ({e})"))?;
        let name = entry.name().trim_end_matches(".npy").to_string();
        let size = entry.size();
        if size > MAX_ARRAY_BYTES {
            return Err(format!(
                "array '{name}' is {size} bytes, more than the {MAX_ARRAY_BYTES} accepted"
            ));
        }
        let mut head = Vec::with_capacity(4096);
        (&mut entry)
            .take(4096)
            .read_to_end(&mut head)
            .map_err(|e| e.to_string())?;
        let Some((header_len, elem, dims)) = parse_npy_header(&head) else {
            continue; // left to ndarray-npy, which reports it
        };
        let need = dims
            .iter()
            .try_fold(elem, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| format!("array '{name}' declares an impossible shape {dims:?}"))?;
        if need
            .checked_add(header_len)
            .is_none_or(|total| total > size)
        {
            return Err(format!(
                "array '{name}' declares shape {dims:?} ({need} bytes) but the file holds {} bytes of data",
                size.saturating_sub(header_len)
            ));
        }
    }
    Ok(())
}

/// (total header bytes, element size, shape) of a `.npy` header, or None when it is not one.
fn parse_npy_header(b: &[u8]) -> Option<(u64, u64, Vec<u64>)> {
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        return None;
    }
    let (len, start) = match b[6] {
        1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10),
        _ if b.len() >= 12 => (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12),
        _ => return None,
    };
    let text = std::str::from_utf8(b.get(start..start + len)?).ok()?;
    let descr = text.split("'descr':").nth(1)?.split('\'').nth(1)?;
    let elem: u64 = descr
        .trim_start_matches(['<', '>', '|', '='])
        .get(1..)?
        .parse()
        .ok()?;
    let shape = text
        .split("'shape':")
        .nth(1)?
        .split('(')
        .nth(1)?
        .split(')')
        .next()?;
    let dims = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u64>().ok())
        .collect::<Option<Vec<u64>>>()?;
    Some(((start + len) as u64, elem, dims))
}

impl Dataset {
    /// Reads `path`; `require_labels` makes a missing `y` an error.
    pub fn load(path: &Path, keys: &DataKeys, require_labels: bool) -> Result<Dataset> {
        let err = |reason: String| Error::data(path, reason);
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        check_npz_sizes(path).map_err(err)?;
        let mut npz =
            NpzReader::new(file).map_err(|e| err(format!("not a readable .npz file ({e})")))?;
        let names = npz
            .names()
            .map_err(|e| err(format!("not a readable .npz file ({e})")))?;
        if !names.iter().any(|n| n == &keys.x) {
            return Err(err(format!(
                "no array '{}' (arrays present: {}); choose one with --x-key",
                keys.x,
                names.join(", ")
            )));
        }
        let x = read_features(&mut npz, &keys.x)
            .map_err(|r| err(format!("array '{}': {r}", keys.x)))?;
        let rows = x.rows();
        if rows == 0 {
            return Err(err(format!("array '{}' has no rows", keys.x)));
        }
        let has_y = names.iter().any(|n| n == &keys.y);
        // Float targets (regression) are accepted where labels are not required.
        let y_values = if has_y && !require_labels {
            read_values(&mut npz, &keys.y).map_err(|r| err(format!("array '{}': {r}", keys.y)))?
        } else {
            None
        };
        if let Some(v) = &y_values {
            if v.nrows() != rows {
                return Err(err(format!(
                    "'{}' has {rows} rows but '{}' has {}",
                    keys.x,
                    keys.y,
                    v.nrows()
                )));
            }
            if let Some(row) = v
                .axis_iter(Axis(0))
                .position(|r| r.iter().any(|x| !x.is_finite()))
            {
                return Err(err(format!(
                    "'{}' holds NaN or infinity in row {row}",
                    keys.y
                )));
            }
        }
        let y = if has_y && y_values.is_none() {
            let y = read_labels(&mut npz, &keys.y)
                .map_err(|r| err(format!("array '{}': {r}", keys.y)))?;
            if y.len() != rows {
                return Err(err(format!(
                    "'{}' has {rows} rows but '{}' has {} labels",
                    keys.x,
                    keys.y,
                    y.len()
                )));
            }
            if let Some((row, v)) = y.iter().enumerate().find(|(_, &v)| v < 0) {
                return Err(err(format!(
                    "label {v} in row {row} of '{}' is negative",
                    keys.y
                )));
            }
            Some(y)
        } else if require_labels {
            return Err(err(format!(
                "no label array '{}' (arrays present: {}); choose one with --y-key",
                keys.y,
                names.join(", ")
            )));
        } else {
            None
        };
        let ds = Dataset {
            path: path.to_path_buf(),
            x,
            y,
            y_values,
        };
        if let Some(row) = ds.first_non_finite_row() {
            return Err(err(format!(
                "'{}' holds NaN or infinity in row {row}",
                keys.x
            )));
        }
        Ok(ds)
    }

    pub fn rows(&self) -> usize {
        self.x.rows()
    }

    /// At most `max` rows, evenly spaced over the set (all of it when it is small enough).
    pub fn evenly_spaced(&self, max: usize) -> Dataset {
        let n = self.rows();
        if n <= max || max == 0 {
            return self.clone();
        }
        let rows: Vec<usize> = (0..max).map(|i| i * n / max).collect();
        self.select(&rows)
    }

    /// The given rows.
    pub fn select(&self, rows: &[usize]) -> Dataset {
        Dataset {
            path: self.path.clone(),
            x: match &self.x {
                Features::F32(a) => Features::F32(a.select(Axis(0), rows)),
                Features::F64(a) => Features::F64(a.select(Axis(0), rows)),
            },
            y: self
                .y
                .as_ref()
                .map(|y| rows.iter().map(|&r| y[r]).collect()),
            y_values: self.y_values.as_ref().map(|v| v.select(Axis(0), rows)),
        }
    }

    fn first_non_finite_row(&self) -> Option<usize> {
        fn find<T: Copy>(a: &ArrayD<T>, finite: fn(T) -> bool) -> Option<usize> {
            a.axis_iter(Axis(0))
                .position(|row| row.iter().any(|&v| !finite(v)))
        }
        match &self.x {
            Features::F32(a) => find(a, f32::is_finite),
            Features::F64(a) => find(a, f64::is_finite),
        }
    }

    /// Features reshaped to a model input of shape `[batch, dims...]`. The element count per row
    /// must match when the model's per-sample dims are known.
    pub fn features_for_input(&self, input_name: &str, shape: Option<&[Dim]>) -> Result<Features> {
        let per_row_x: usize = self.x.shape()[1..].iter().product();
        let Some(shape) = shape else {
            return Ok(self.x.clone());
        };
        let sample_dims: Option<Vec<usize>> = shape
            .iter()
            .skip(1)
            .map(|d| match d {
                Dim::Value(v) if *v >= 0 => Some(*v as usize),
                _ => None,
            })
            .collect();
        let Some(sample_dims) = sample_dims.filter(|_| !shape.is_empty()) else {
            return Ok(self.x.clone());
        };
        let per_row_model: usize = sample_dims.iter().product();
        if per_row_model != per_row_x {
            return Err(Error::data(
                &self.path,
                format!(
                    "rows of x have {per_row_x} values (shape {:?}) but model input '{input_name}' \
                     takes {per_row_model} per sample (shape [{}])",
                    &self.x.shape()[1..],
                    shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(",")
                ),
            ));
        }
        let mut full = vec![self.rows()];
        full.extend(sample_dims);
        Ok(match &self.x {
            Features::F32(a) => Features::F32(reshape(a, &full)),
            Features::F64(a) => Features::F64(reshape(a, &full)),
        })
    }
}

fn reshape<T: Clone>(a: &ArrayD<T>, shape: &[usize]) -> ArrayD<T> {
    a.as_standard_layout()
        .into_owned()
        .into_shape_with_order(IxDyn(shape))
        .expect("element counts checked by the caller")
}

impl Features {
    pub fn rows(&self) -> usize {
        self.shape().first().copied().unwrap_or(0)
    }

    pub fn shape(&self) -> &[usize] {
        match self {
            Features::F32(a) => a.shape(),
            Features::F64(a) => a.shape(),
        }
    }

    /// Rows `start..end` as f32.
    pub fn slice_f32(&self, start: usize, end: usize) -> ArrayD<f32> {
        match self {
            Features::F32(a) => a.slice_axis(Axis(0), (start..end).into()).to_owned(),
            Features::F64(a) => a
                .slice_axis(Axis(0), (start..end).into())
                .mapv(|v| v as f32),
        }
    }

    /// Rows `start..end` as f64.
    pub fn slice_f64(&self, start: usize, end: usize) -> ArrayD<f64> {
        match self {
            Features::F32(a) => a.slice_axis(Axis(0), (start..end).into()).mapv(f64::from),
            Features::F64(a) => a.slice_axis(Axis(0), (start..end).into()).to_owned(),
        }
    }
}

fn read_features(npz: &mut NpzReader<File>, key: &str) -> std::result::Result<Features, String> {
    let x = match npz.by_name::<OwnedRepr<f32>, IxDyn>(key) {
        Ok(a) => Features::F32(a),
        Err(e) if is_wrong_type(&e) => match npz.by_name::<OwnedRepr<f64>, IxDyn>(key) {
            Ok(a) => Features::F64(a),
            Err(e) if is_wrong_type(&e) => match npz.by_name::<OwnedRepr<u8>, IxDyn>(key) {
                Ok(a) => Features::F32(a.mapv(f32::from)),
                Err(e) if is_wrong_type(&e) => {
                    return Err("must be float32, float64 or uint8".into())
                }
                Err(e) => return Err(e.to_string()),
            },
            Err(e) => return Err(e.to_string()),
        },
        Err(e) => return Err(e.to_string()),
    };
    if x.shape().len() < 2 {
        return Err(format!(
            "must have a row axis and at least one feature axis, got shape {:?}",
            x.shape()
        ));
    }
    Ok(x)
}

fn read_labels(npz: &mut NpzReader<File>, key: &str) -> std::result::Result<Vec<i64>, String> {
    macro_rules! try_int {
        ($($t:ty),*) => {$(
            match npz.by_name::<OwnedRepr<$t>, IxDyn>(key) {
                Ok(a) => return flat_labels(a.mapv(|v| v as i64)),
                Err(e) if is_wrong_type(&e) => {}
                Err(e) => return Err(e.to_string()),
            }
        )*};
    }
    try_int!(i64, i32, u8, i16, u16, u32, i8);
    match npz.by_name::<OwnedRepr<u64>, IxDyn>(key) {
        Ok(a) => flat_labels(a.mapv(|v| i64::try_from(v).unwrap_or(-1))),
        Err(e) if is_wrong_type(&e) => {
            Err("labels must be integers (int8..int64, uint8..uint64)".into())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Float targets (regression), or None when the array is not float.
fn read_values(
    npz: &mut NpzReader<File>,
    key: &str,
) -> std::result::Result<Option<ndarray::Array2<f32>>, String> {
    let a = match npz.by_name::<OwnedRepr<f32>, IxDyn>(key) {
        Ok(a) => a,
        Err(e) if is_wrong_type(&e) => match npz.by_name::<OwnedRepr<f64>, IxDyn>(key) {
            Ok(a) => a.mapv(|v| v as f32),
            Err(e) if is_wrong_type(&e) => return Ok(None),
            Err(e) => return Err(e.to_string()),
        },
        Err(e) => return Err(e.to_string()),
    };
    let rows = a.shape().first().copied().unwrap_or(0);
    let cols = a.len().checked_div(rows).unwrap_or(0);
    a.into_shape_with_order((rows, cols))
        .map(Some)
        .map_err(|_| "regression targets must be [N] or [N, k]".to_string())
}

fn flat_labels(a: ArrayD<i64>) -> std::result::Result<Vec<i64>, String> {
    match a.shape() {
        [_] | [_, 1] => Ok(a.iter().copied().collect()),
        s => Err(format!(
            "labels must be one per row (shape [N] or [N,1]), got {s:?}"
        )),
    }
}
