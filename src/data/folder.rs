//! A data set stored as a folder of `.npy` files: `<x-key>.npy` (features, memory-mapped and
//! read a batch at a time, never loaded whole) and `<y-key>.npy` (labels or float targets, read
//! into memory after its header is checked against the file and the memory budget). The label
//! file may be absent where labels are not required, as an `.npz` file's `y` may.
use super::arrays::{self, NpyFolder};
use super::mapped::MappedArray;
use super::{check_feature_shape, npy, DataKeys, Dataset, Features};
use crate::error::{Error, Result};
use crate::memory;
use std::path::{Path, PathBuf};

/// Reads the data set in folder `dir`.
pub fn load(dir: &Path, keys: &DataKeys, require_labels: bool) -> Result<Dataset> {
    let err = |reason: String| Error::data(dir, reason);
    let x_path = array_path(dir, &keys.x).map_err(err)?;
    let y_path = array_path(dir, &keys.y).map_err(err)?;
    if !exists(&x_path) {
        return Err(err(format!(
            "no feature file '{}.npy' in the folder (.npy files present: {})",
            keys.x,
            present(dir)
        )));
    }
    let x = MappedArray::open(&x_path, &keys.x)?;
    check_feature_shape(&keys.x, x.shape()).map_err(|r| Error::data(&x_path, r))?;
    let (y, y_values) = if exists(&y_path) {
        let (_, entry) = npy::open(&y_path, &keys.y)?;
        let elements = entry.shape.iter().map(|&d| d as u64).product::<u64>();
        memory::reserve(
            &format!("reading {}", y_path.display()),
            elements.saturating_mul(8),
        )?;
        arrays::read_targets(
            &mut NpyFolder(dir.to_path_buf()),
            keys,
            x.rows(),
            require_labels,
        )
        .map_err(err)?
    } else if require_labels {
        return Err(err(format!(
            "no label file '{}.npy' in the folder (.npy files present: {})",
            keys.y,
            present(dir)
        )));
    } else {
        (None, None)
    };
    Ok(Dataset {
        path: dir.to_path_buf(),
        x: Features::Mapped(x),
        y,
        y_values,
    })
}

/// The files `--data path` reads, for the output guard: a folder and every `.npy` file in it,
/// else the path itself.
pub fn input_files(path: &Path) -> Vec<PathBuf> {
    let mut files = vec![path.to_path_buf()];
    if path.is_dir() {
        files.extend(
            std::fs::read_dir(path)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "npy")),
        );
    }
    files
}

/// `dir/<key>.npy`, for a key that is a plain file name (no folder part, not empty).
fn array_path(dir: &Path, key: &str) -> std::result::Result<PathBuf, String> {
    let plain = !key.is_empty() && key != "." && key != ".." && !key.contains(['/', '\\', '\0']);
    if !plain {
        return Err(format!(
            "array name '{key}' cannot name a file in the folder (it must be a plain file name)"
        ));
    }
    Ok(dir.join(format!("{key}.npy")))
}

/// True when something is at `path` (a dangling link counts, so that opening it says why).
fn exists(path: &Path) -> bool {
    path.symlink_metadata().is_ok()
}

/// The `.npy` files in `dir`, for messages (at most 20 named).
fn present(dir: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".npy"))
        .take(1000)
        .collect();
    names.sort();
    let more = names.len().saturating_sub(20);
    names.truncate(20);
    match (names.is_empty(), more) {
        (true, _) => "none".into(),
        (false, 0) => names.join(", "),
        (false, n) => format!("{}, and {n} more", names.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, Array2};
    use ndarray_npy::WriteNpyExt;

    fn save<T: ndarray_npy::WritableElement, D: ndarray::Dimension>(
        dir: &Path,
        name: &str,
        a: &ndarray::Array<T, D>,
    ) {
        a.write_npy(std::fs::File::create(dir.join(name)).unwrap())
            .unwrap();
    }

    #[test]
    fn features_are_mapped_and_labels_read() {
        let dir = tempfile::tempdir().unwrap();
        let x = Array2::from_shape_fn((4, 3), |(i, j)| (i * 3 + j) as f32 / 7.0);
        save(dir.path(), "x.npy", &x);
        save(dir.path(), "y.npy", &Array1::from(vec![0i32, 1, 1, 0]));
        let ds = Dataset::load(dir.path(), &DataKeys::default(), true).unwrap();
        assert!(matches!(ds.x, Features::Mapped(_)));
        assert_eq!(ds.x.slice_f32(0, 4), x.into_dyn());
        assert_eq!(ds.y, Some(vec![0, 1, 1, 0]));
    }

    #[test]
    fn missing_files_and_bad_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), "feat.npy", &Array2::<f32>::zeros((2, 2)));
        let e = Dataset::load(dir.path(), &DataKeys::default(), false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no feature file 'x.npy'") && e.contains("feat.npy"),
            "{e}"
        );
        let keys = DataKeys {
            x: "feat".into(),
            y: "y".into(),
        };
        let e = Dataset::load(dir.path(), &keys, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no label file 'y.npy'"), "{e}");
        assert!(Dataset::load(dir.path(), &keys, false).unwrap().y.is_none());
        let keys = DataKeys {
            x: "../feat".into(),
            y: "y".into(),
        };
        let e = Dataset::load(dir.path(), &keys, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("plain file name"), "{e}");
    }

    #[test]
    fn labels_must_match_the_rows() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), "x.npy", &Array2::<f64>::zeros((3, 2)));
        save(dir.path(), "y.npy", &Array1::from(vec![1i64, 2]));
        let e = Dataset::load(dir.path(), &DataKeys::default(), true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("'x' has 3 rows but 'y' has 2 labels"), "{e}");
    }
}
