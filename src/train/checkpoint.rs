//! Checkpoints on disk: `<base>.json` (progress, settings signature, history) and `<base>.npz`
//! (state and best weights), each written atomically.
use super::EpochMetrics;
use crate::error::{Error, Result};
use crate::fsutil::{atomic_write, atomic_write_bytes};
use ndarray::{ArrayD, IxDyn, OwnedRepr};
use ndarray_npy::NpzWriter;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Everything needed to continue a run: written after every epoch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Epochs completed.
    pub epoch: usize,
    pub steps: usize,
    /// Settings that must match for a resume to continue the same run.
    /// (None for a run that keeps no checkpoints: hashing the model and the data costs a pass
    /// over them, which short fine-tunes inside other commands need not pay.)
    pub signature: Option<String>,
    pub history: Vec<EpochMetrics>,
    pub best_epoch: Option<usize>,
    pub best_val: Option<f64>,
    #[serde(skip)]
    pub state: Vec<ArrayD<f32>>,
    #[serde(skip)]
    pub best_params: Option<Vec<ArrayD<f32>>>,
}

impl Checkpoint {
    /// The checkpoint of a run that has not begun: epoch 0 and the starting state.
    pub fn start(signature: Option<String>, state: Vec<ArrayD<f32>>) -> Self {
        Checkpoint {
            epoch: 0,
            steps: 0,
            signature,
            history: vec![],
            best_epoch: None,
            best_val: None,
            state,
            best_params: None,
        }
    }
}

pub fn paths(base: &Path) -> (PathBuf, PathBuf) {
    let s = base.as_os_str().to_string_lossy();
    (
        PathBuf::from(format!("{s}.json")),
        PathBuf::from(format!("{s}.npz")),
    )
}

pub fn save(base: &Path, ck: &Checkpoint) -> Result<()> {
    let (json, npz) = paths(base);
    atomic_write(&npz, |f| {
        let mut w = NpzWriter::new(f);
        let io = |e: ndarray_npy::WriteNpzError| std::io::Error::other(e.to_string());
        // The epoch again, so a json/npz pair from different saves is caught on load.
        w.add_array("epoch", &ndarray::arr1(&[ck.epoch as i64]))
            .map_err(io)?;
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
    atomic_write_bytes(&json, &text)
}

/// Loads a checkpoint, or None when there is none at `base`.
pub fn load(base: &Path) -> Result<Option<Checkpoint>> {
    let (json, npz) = paths(base);
    if !json.exists() {
        return Ok(None);
    }
    let bad = |p: &Path, e: String| Error::data(p, format!("not a usable checkpoint: {e}"));
    let text = crate::fsutil::read_regular(&json)?;
    let mut ck: Checkpoint =
        serde_json::from_slice(&text).map_err(|e| bad(&json, e.to_string()))?;
    // Every array's declared size is checked against the file before anything is read.
    let (mut r, entries) = crate::data::npz::open(&npz)?;
    let total = entries
        .iter()
        .fold(0u64, |sum, e| sum.saturating_add(e.data_bytes));
    crate::memory::reserve(&format!("reading {}", npz.display()), total)?;
    let names: Vec<String> = entries.into_iter().map(|e| e.name).collect();
    let epoch: ndarray::Array1<i64> = r.by_name("epoch").map_err(|e| bad(&npz, e.to_string()))?;
    if epoch.first().copied() != Some(ck.epoch as i64) {
        return Err(bad(
            &npz,
            format!(
                "it is from another epoch than {} (interrupted while saving?)",
                json.display()
            ),
        ));
    }
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
