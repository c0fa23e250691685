//! Labelled data sets as users have them: features `x` and integer labels (or float targets) `y`
//! from an `.npz` file (plain or compressed), a folder holding `<x-key>.npy` and `<y-key>.npy`
//! (the features memory-mapped, never loaded whole), or a CSV file with a header row (the
//! `--y-key` column holds the labels). The format is what the path is: a folder, a file ending
//! in `.csv`, else an `.npz` file.
mod arrays;
pub mod csv;
pub mod folder;
pub mod mapped;
pub mod npy;
pub mod npz;

use crate::error::{Error, Result};
use crate::ir::Dim;
use crate::memory;
use mapped::MappedArray;
use ndarray::{ArcArray, ArrayD, Axis, IxDyn};
use std::path::{Path, PathBuf};

/// Feature values as read (uint8 is widened to f32 exactly; f64 stays f64 until the model's input
/// type is known). In-memory arrays are shared, so a clone or a reshape copies no values; a
/// mapped `.npy` file is read a batch of rows at a time.
#[derive(Debug, Clone)]
pub enum Features {
    F32(ArcArray<f32, IxDyn>),
    F64(ArcArray<f64, IxDyn>),
    Mapped(MappedArray),
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
pub(crate) fn check_feature_shape(key: &str, shape: &[usize]) -> std::result::Result<(), String> {
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
    /// Reads `path` (a folder of `.npy` files, a `.csv` file or an `.npz` file);
    /// `require_labels` makes a missing `y` an error. Every array's declared size is checked
    /// against the file and the memory available before it is read.
    pub fn load(path: &Path, keys: &DataKeys, require_labels: bool) -> Result<Dataset> {
        let ds = if path.is_dir() {
            folder::load(path, keys, require_labels)?
        } else if is_csv(path) {
            csv::load(path, keys, require_labels)?
        } else {
            load_npz(path, keys, require_labels)?
        };
        if let Some(row) = ds.first_non_finite_row() {
            return Err(Error::data(
                path,
                format!("'{}' holds NaN or infinity in row {row}", keys.x),
            ));
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
            x: self.x.gather(rows),
            y: self
                .y
                .as_ref()
                .map(|y| rows.iter().map(|&r| y[r]).collect()),
            y_values: self.y_values.as_ref().map(|v| v.select(Axis(0), rows)),
        }
    }

    fn first_non_finite_row(&self) -> Option<usize> {
        fn find<T: Copy>(a: ndarray::ArrayViewD<T>, finite: fn(T) -> bool) -> Option<usize> {
            a.axis_iter(Axis(0))
                .position(|row| row.iter().any(|&v| !finite(v)))
        }
        match &self.x {
            Features::F32(a) => find(a.view(), f32::is_finite),
            Features::F64(a) => find(a.view(), f64::is_finite),
            Features::Mapped(m) => m.first_non_finite_row(),
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
        Ok(self.x.reshaped(&full))
    }
}

/// True when `path` names a CSV file (by its extension, in any case).
fn is_csv(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

/// Reads an `.npz` file: every entry's header checked first, then `x` and `y` read whole.
fn load_npz(path: &Path, keys: &DataKeys, require_labels: bool) -> Result<Dataset> {
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
    let x = arrays::read_features(&mut npz, &keys.x)
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
        Some(_) => arrays::read_targets(&mut npz, keys, rows, require_labels).map_err(err)?,
    };
    Ok(Dataset {
        path: path.to_path_buf(),
        x,
        y,
        y_values,
    })
}

impl Features {
    pub fn rows(&self) -> usize {
        self.shape().first().copied().unwrap_or(0)
    }

    pub fn shape(&self) -> &[usize] {
        match self {
            Features::F32(a) => a.shape(),
            Features::F64(a) => a.shape(),
            Features::Mapped(m) => m.shape(),
        }
    }

    /// The same rows seen as `shape` (as many values per row); in-memory arrays in row-major
    /// order and mapped ones are not copied.
    pub fn reshaped(&self, shape: &[usize]) -> Features {
        fn reshape<T: Clone>(a: &ArcArray<T, IxDyn>, shape: &[usize]) -> ArcArray<T, IxDyn> {
            let standard = if a.is_standard_layout() {
                a.clone()
            } else {
                a.as_standard_layout().into_owned().into_shared()
            };
            standard
                .into_shape_with_order(IxDyn(shape))
                .expect("element counts checked by the caller")
        }
        match self {
            Features::F32(a) => Features::F32(reshape(a, shape)),
            Features::F64(a) => Features::F64(reshape(a, shape)),
            Features::Mapped(m) => Features::Mapped(
                m.with_shape(shape)
                    .expect("element counts checked by the caller"),
            ),
        }
    }

    /// Rows `start..end` as f32.
    pub fn slice_f32(&self, start: usize, end: usize) -> ArrayD<f32> {
        match self {
            Features::F32(a) => a.slice_axis(Axis(0), (start..end).into()).to_owned(),
            Features::F64(a) => a
                .slice_axis(Axis(0), (start..end).into())
                .mapv(|v| v as f32),
            Features::Mapped(m) => m.slice_f32(start, end),
        }
    }

    /// Rows `start..end` as f64.
    pub fn slice_f64(&self, start: usize, end: usize) -> ArrayD<f64> {
        match self {
            Features::F32(a) => a.slice_axis(Axis(0), (start..end).into()).mapv(f64::from),
            Features::F64(a) => a.slice_axis(Axis(0), (start..end).into()).to_owned(),
            Features::Mapped(m) => m.slice_f64(start, end),
        }
    }

    /// The given rows as f32, read from the source (only those rows of a mapped file).
    pub fn gather_f32(&self, rows: &[usize]) -> ArrayD<f32> {
        match self {
            Features::F32(a) => a.select(Axis(0), rows),
            Features::F64(a) => a.select(Axis(0), rows).mapv(|v| v as f32),
            Features::Mapped(m) => m.gather_f32(rows),
        }
    }

    /// The given rows, in memory, in the type a copy keeps (float64 stays float64).
    pub fn gather(&self, rows: &[usize]) -> Features {
        match self {
            Features::F32(a) => Features::F32(a.select(Axis(0), rows).into_shared()),
            Features::F64(a) => Features::F64(a.select(Axis(0), rows).into_shared()),
            Features::Mapped(m) if m.is_f64() => Features::F64(m.gather_f64(rows).into_shared()),
            Features::Mapped(m) => Features::F32(m.gather_f32(rows).into_shared()),
        }
    }
}
