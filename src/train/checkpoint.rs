//! Checkpoints on disk: `<base>.json` (progress, settings signature, history) and `<base>.npz`
//! (state and best weights), each written atomically.
use super::finetune::Checkpoint;
use crate::error::{Error, Result};
use ndarray::{ArrayD, IxDyn, OwnedRepr};
use ndarray_npy::{NpzReader, NpzWriter};
use std::io::Write;
use std::path::{Path, PathBuf};

pub fn paths(base: &Path) -> (PathBuf, PathBuf) {
    let s = base.as_os_str().to_string_lossy();
    (
        PathBuf::from(format!("{s}.json")),
        PathBuf::from(format!("{s}.npz")),
    )
}

fn atomic_write(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(|e| Error::io(&dir, e))?;
    write(tmp.as_file_mut())
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

pub fn save(base: &Path, ck: &Checkpoint) -> Result<()> {
    let (json, npz) = paths(base);
    atomic_write(&npz, |f| {
        let mut w = NpzWriter::new(f);
        let io = |e: ndarray_npy::WriteNpzError| std::io::Error::other(e.to_string());
        for (i, a) in ck.state.iter().enumerate() {
            w.add_array(format!("state{i}"), a).map_err(io)?;
        }
        for (i, a) in ck.best_params.iter().flatten().enumerate() {
            w.add_array(format!("best{i}"), a).map_err(io)?;
        }
        w.finish().map_err(io)?;
        Ok(())
    })?;
    let text = serde_json::to_vec_pretty(ck).map_err(|e| Error::Invalid(e.to_string()))?;
    atomic_write(&json, |f| f.write_all(&text))
}

/// Loads a checkpoint, or None when there is none at `base`.
pub fn load(base: &Path) -> Result<Option<Checkpoint>> {
    let (json, npz) = paths(base);
    if !json.exists() {
        return Ok(None);
    }
    let bad = |p: &Path, e: String| Error::data(p, format!("not a usable checkpoint: {e}"));
    let text = std::fs::read(&json).map_err(|e| Error::io(&json, e))?;
    let mut ck: Checkpoint =
        serde_json::from_slice(&text).map_err(|e| bad(&json, e.to_string()))?;
    let file = std::fs::File::open(&npz).map_err(|e| Error::io(&npz, e))?;
    let mut r = NpzReader::new(file).map_err(|e| bad(&npz, e.to_string()))?;
    let names = r.names().map_err(|e| bad(&npz, e.to_string()))?;
    let mut read = |prefix: &str| -> Result<Vec<ArrayD<f32>>> {
        let n = names.iter().filter(|n| n.starts_with(prefix)).count();
        (0..n)
            .map(|i| {
                r.by_name::<OwnedRepr<f32>, IxDyn>(&format!("{prefix}{i}"))
                    .map_err(|e| bad(&npz, e.to_string()))
            })
            .collect()
    };
    ck.state = read("state")?;
    let best = read("best")?;
    ck.best_params = (!best.is_empty()).then_some(best);
    Ok(Some(ck))
}
