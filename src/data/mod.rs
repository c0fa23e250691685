//! Labelled data sets from `.npz` files (plain or compressed): features `x`, integer labels `y`.
pub mod npz;

use crate::error::{Error, Result};
use crate::ir::Dim;
use crate::memory;
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

/// Most rows a data set may have: more is a corrupt or hostile file, not data.
pub const MAX_ROWS: usize = 1 << 31;

/// Heap bytes a feature array of `entry` takes once read and converted: f32 and f64 as stored;
/// uint8 is read, then widened to f32 (both live at once).
fn feature_bytes(entry: &npz::NpyEntry) -> u64 {
    let elems = entry.shape.iter().map(|&d| d as u64).product::<u64>();
    match entry.descr.trim_start_matches(['<', '>', '|', '=']) {
        "u1" => elems.saturating_mul(5),
        _ => entry.data_bytes,
    }
}

/// Refuses feature shapes no model can take: no feature axis, a zero-sized axis, or absurd rows.
fn check_feature_shape(key: &str, shape: &[usize]) -> std::result::Result<(), String> {
    if shape.len() < 2 {
        return Err(format!(
            "array '{key}' must have a row axis and at least one feature axis, got shape {shape:?}"
        ));
    }
    if shape[0] == 0 {
        return Err(format!("array '{key}' has no rows"));
    }
    if shape[1..].contains(&0) {
        return Err(format!(
            "array '{key}' has shape {shape:?}: rows without any feature value"
        ));
    }
    if shape[0] > MAX_ROWS {
        return Err(format!(
            "array '{key}' has {} rows, more than the {MAX_ROWS} accepted",
            shape[0]
        ));
    }
    Ok(())
}

impl Dataset {
    /// Reads `path`; `require_labels` makes a missing `y` an error. Every array's declared size
    /// is checked against the file and the memory available before it is read.
    pub fn load(path: &Path, keys: &DataKeys, require_labels: bool) -> Result<Dataset> {
        let err = |reason: String| Error::data(path, reason);
        let (mut npz, entries) = npz::open(path)?;
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        let present = || names.join(", ");
        let x_entry = entries.iter().find(|e| e.name == keys.x).ok_or_else(|| {
            err(format!(
                "no array '{}' (arrays present: {})",
                keys.x,
                present()
            ))
        })?;
        check_feature_shape(&keys.x, &x_entry.shape).map_err(err)?;
        let y_entry = entries.iter().find(|e| e.name == keys.y);
        let y_bytes = y_entry.map_or(0, |e| {
            (e.shape.iter().product::<usize>() as u64).saturating_mul(8)
        });
        memory::reserve(
            &format!("reading {}", path.display()),
            feature_bytes(x_entry).saturating_add(y_bytes),
        )?;
        let x = read_features(&mut npz, &keys.x)
            .map_err(|r| err(format!("array '{}': {r}", keys.x)))?;
        let rows = x.rows();
        let (y, y_values) = match y_entry {
            None if require_labels => {
                return Err(err(format!(
                    "no label array '{}' (arrays present: {})",
                    keys.y,
                    present()
                )))
            }
            None => (None, None),
            Some(_) => read_targets(&mut npz, keys, rows, require_labels).map_err(err)?,
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
        let per_row_model = sample_dims
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d));
        if per_row_model != Some(per_row_x) {
            let takes = per_row_model.map_or("more values than memory can hold".into(), |n| {
                format!("{n} values")
            });
            return Err(Error::data(
                &self.path,
                format!(
                    "rows of x have {per_row_x} values (shape {:?}) but model input '{input_name}' \
                     takes {takes} per sample (shape [{}])",
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

/// Labels, or float targets where labels are not required, checked against `rows`.
type Targets = (Option<Vec<i64>>, Option<ndarray::Array2<f32>>);

fn read_targets(
    npz: &mut NpzReader<File>,
    keys: &DataKeys,
    rows: usize,
    require_labels: bool,
) -> std::result::Result<Targets, String> {
    let key = &keys.y;
    // Float targets (regression) are accepted where labels are not required.
    let values = if require_labels {
        None
    } else {
        read_values(npz, key).map_err(|r| format!("array '{key}': {r}"))?
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
    let y = read_labels(npz, key).map_err(|r| format!("array '{key}': {r}"))?;
    if y.len() != rows {
        return Err(format!(
            "'{}' has {rows} rows but '{key}' has {} labels",
            keys.x,
            y.len()
        ));
    }
    if let Some((row, v)) = y.iter().enumerate().find(|(_, &v)| v < 0) {
        return Err(format!("label {v} in row {row} of '{key}' is negative"));
    }
    Ok((Some(y), None))
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
        Ok(a) => {
            if let Some((row, v)) = a
                .iter()
                .enumerate()
                .find(|(_, &v)| i64::try_from(v).is_err())
            {
                return Err(format!("label {v} in row {row} is too large to be a class"));
            }
            flat_labels(a.mapv(|v| v as i64))
        }
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
