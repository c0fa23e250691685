//! Candidate against original: same interface, accuracy, agreement, output difference, size and
//! measured latency in tract.
use crate::data::Dataset;
use crate::engine::{EngineKind, EngineOptions};
use crate::error::{Error, Result};
use crate::eval::{self, find_target, Target};
use crate::inspect;
use crate::ir::{Dim, Model, ValueInfo};
use crate::runner::ModelRunner;
use ndarray::ArrayD;
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Clone, Serialize)]
pub struct ModelFigures {
    pub accuracy: f64,
    pub params: usize,
    pub macs: usize,
    pub file_bytes: u64,
    pub latency_ms_batch1: f64,
    #[serde(rename = "latency_ms_batchN")]
    pub latency_ms_batch_n: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Validation {
    pub original: ModelFigures,
    pub candidate: ModelFigures,
    pub samples: usize,
    /// Rows per call for `latency_ms_batchN`.
    pub batch_n: usize,
    /// Original accuracy minus candidate accuracy, in percentage points.
    pub accuracy_drop: f64,
    /// Fraction of rows where both predict the same class.
    pub agreement: f64,
    /// Largest absolute difference between the two models' class scores.
    pub max_abs_diff: f64,
    /// Largest difference between the candidate's scores in ONNX Runtime and in tract (None when
    /// no ONNX Runtime library is installed).
    pub ort_max_abs_diff: Option<f64>,
    pub max_accuracy_drop: Option<f64>,
    pub passed: bool,
}

/// Total bytes of the files `paths` (as returned by `onnx::save`: a model and its data file).
pub fn written_bytes(paths: &[std::path::PathBuf]) -> u64 {
    paths
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum()
}

/// Bytes of a model file read from `path` and of the external data files it references.
pub fn file_bytes(model: &Model, path: &Path) -> u64 {
    let base = crate::fsutil::folder(path);
    let locations = model.graph.external_locations();
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    size(path) + locations.iter().map(|l| size(&base.join(l))).sum::<u64>()
}

fn same_tensor_interface(a: &ValueInfo, b: &ValueInfo, batch_free: bool) -> bool {
    match (a.tensor_shape(), b.tensor_shape()) {
        (Some((ta, sa)), Some((tb, sb))) => {
            let dims = |s: Option<&[Dim]>| -> Option<Vec<Option<i64>>> {
                s.map(|s| {
                    s.iter()
                        .skip(batch_free as usize)
                        .map(|d| match d {
                            Dim::Value(v) => Some(*v),
                            _ => None,
                        })
                        .collect()
                })
            };
            ta == tb && (sa.is_none() || sb.is_none() || dims(sa) == dims(sb))
        }
        _ => a.type_string() == b.type_string(),
    }
}

/// The candidate must be a drop-in replacement: same inputs and outputs, names and types.
pub fn check_interface(original: &Model, candidate: &Model) -> Result<()> {
    let describe = |m: &Model| -> (Vec<String>, Vec<String>) {
        (
            m.graph
                .runtime_inputs()
                .map(|v| format!("{}: {}", v.name, v.type_string()))
                .collect(),
            m.graph
                .outputs
                .iter()
                .map(|v| format!("{}: {}", v.name, v.type_string()))
                .collect(),
        )
    };
    let ai: Vec<&ValueInfo> = original.graph.runtime_inputs().collect();
    let bi: Vec<&ValueInfo> = candidate.graph.runtime_inputs().collect();
    let ao = &original.graph.outputs;
    let bo = &candidate.graph.outputs;
    let same = ai.len() == bi.len()
        && ao.len() == bo.len()
        && ai
            .iter()
            .zip(&bi)
            .all(|(a, b)| a.name == b.name && same_tensor_interface(a, b, true))
        && ao
            .iter()
            .zip(bo)
            .all(|(a, b)| a.name == b.name && same_tensor_interface(a, b, true));
    if !same {
        let (a, b) = (describe(original), describe(candidate));
        return Err(Error::Invalid(format!(
            "the candidate's interface differs from the original's: inputs {:?} vs {:?}, outputs {:?} vs {:?}",
            a.0, b.0, a.1, b.1
        )));
    }
    Ok(())
}

/// A model's scores on the data (its labels, as numbers, for a label output) and its predicted
/// classes.
struct Scored {
    scores: ArrayD<f64>,
    predictions: Vec<i64>,
}

/// `model` cut to `target` and loaded once, for both its scores and its latency.
fn runner(model: &Model, target: &Target, data: &Dataset, kind: EngineKind) -> Result<ModelRunner> {
    let out = [target.tensor.as_str()];
    let opts = EngineOptions::default();
    ModelRunner::new(model, &out, target.out_type(), data, kind, &opts)
}

/// The runner's scores on every row of `data`, whose `labels` must be among the model's classes.
fn score(
    runner: &mut ModelRunner,
    target: &Target,
    data: &Dataset,
    labels: &[i64],
) -> Result<Scored> {
    let out = runner.run_all()?.swap_remove(0);
    let p = eval::predictions(target, out)?;
    eval::check_label_range(data, labels, target, &p)?;
    let scores = p.scores.unwrap_or_else(|| {
        ndarray::Array1::from_iter(p.labels.iter().map(|&v| v as f64)).into_dyn()
    });
    Ok(Scored {
        scores,
        predictions: p.labels,
    })
}

fn max_diff(a: &ArrayD<f64>, b: &ArrayD<f64>) -> f64 {
    if a.shape() != b.shape() {
        return f64::INFINITY;
    }
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Median wall time of one call of `runner` on `rows` rows, in milliseconds, after warm-up.
fn latency(runner: &mut ModelRunner, rows: usize, runs: usize) -> Result<f64> {
    let mut times = runner.time_first(rows, 3, runs)?;
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// A model to compare and the bytes its files take on disk.
pub struct Subject<'a> {
    pub model: &'a Model,
    pub file_bytes: u64,
}

/// Compares `candidate` with `original` on labelled `data`.
pub fn validate(
    original: Subject,
    candidate: Subject,
    data: &Dataset,
    max_drop: Option<f64>,
) -> Result<Validation> {
    let (original_bytes, candidate_bytes) = (original.file_bytes, candidate.file_bytes);
    let (original, candidate) = (original.model, candidate.model);
    if let Some(p) = max_drop {
        if !(p >= 0.0 && p.is_finite()) {
            return Err(Error::Invalid(format!(
                "the accuracy budget must be a non-negative number of points, got {p}"
            )));
        }
    }
    check_interface(original, candidate)?;
    let labels = data
        .y
        .as_ref()
        .ok_or_else(|| Error::data(&data.path, "has no labels to validate against"))?;
    let (ta, tb) = (find_target(original)?, find_target(candidate)?);
    let mut runner_a = runner(original, &ta, data, EngineKind::Tract)?;
    let mut runner_b = runner(candidate, &tb, data, EngineKind::Tract)?;
    let a = score(&mut runner_a, &ta, data, labels)?;
    let b = score(&mut runner_b, &tb, data, labels)?;
    // The candidate must also run in ONNX Runtime, giving tract's scores, when ort is installed.
    let ort_max_abs_diff = if crate::engine::ort_engine::available() {
        let mut ort = runner(candidate, &tb, data, EngineKind::Ort)?;
        let o = score(&mut ort, &tb, data, labels)?;
        Some(max_diff(&o.scores, &b.scores))
    } else {
        None
    };
    let n = labels.len().max(1) as f64;
    let acc = |p: &[i64]| p.iter().zip(labels).filter(|(p, y)| p == y).count() as f64 / n;
    let agreement = a
        .predictions
        .iter()
        .zip(&b.predictions)
        .filter(|(x, y)| x == y)
        .count() as f64
        / n;
    let max_abs_diff = max_diff(&a.scores, &b.scores);
    let batch_n = data.rows().min(256);
    // Latency in tract, on the runners that scored.
    let figures = |m: &Model, bytes: u64, runner: &mut ModelRunner, accuracy: f64| {
        let r = inspect::report(m)?;
        Ok::<_, Error>(ModelFigures {
            accuracy,
            params: r.params_total,
            macs: r.macs_total,
            file_bytes: bytes,
            latency_ms_batch1: latency(runner, 1, 50)?,
            latency_ms_batch_n: latency(runner, batch_n, 15)?,
        })
    };
    let original_f = figures(original, original_bytes, &mut runner_a, acc(&a.predictions))?;
    let candidate_f = figures(
        candidate,
        candidate_bytes,
        &mut runner_b,
        acc(&b.predictions),
    )?;
    let accuracy_drop = (original_f.accuracy - candidate_f.accuracy) * 100.0;
    let passed = max_drop.is_none_or(|p| accuracy_drop <= p + 1e-9);
    Ok(Validation {
        original: original_f,
        candidate: candidate_f,
        samples: labels.len(),
        batch_n,
        accuracy_drop,
        agreement,
        max_abs_diff,
        ort_max_abs_diff,
        max_accuracy_drop: max_drop,
        passed,
    })
}
