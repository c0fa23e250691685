//! Candidate against original: same interface, the gate's figures ([`crate::gate`]: accuracy on
//! labels, agreement with the original's predictions without labels, RMSE and max |Δ| of the
//! outputs against float targets), size and measured latency in tract.
use crate::data::Dataset;
use crate::engine::{EngineKind, EngineOptions};
use crate::error::{Error, Result};
use crate::eval::{self, find_target, Target};
use crate::gate::{self, GateMetric, Limits, Measured, Pair};
use crate::inspect;
use crate::ir::{Dim, Model, ValueInfo};
use crate::latency::{self, Compared, Deployment, Latency, Timed};
use crate::runner::ModelRunner;
use ndarray::ArrayD;
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Clone, Serialize)]
pub struct ModelFigures {
    /// Accuracy on the labels (None without labels).
    pub accuracy: Option<f64>,
    pub params: usize,
    pub macs: usize,
    pub file_bytes: u64,
    /// Latency in tract (median ms of one call at batch 1 and at `batch_n` rows).
    pub latency_ms_batch1: f64,
    #[serde(rename = "latency_ms_batchN")]
    pub latency_ms_batch_n: f64,
    /// Latency in ONNX Runtime with one intra-op thread (None when it is not installed).
    pub ort_latency_1_thread: Option<Latency>,
    /// Latency in ONNX Runtime with its default threads (None when it is not installed).
    pub ort_latency_default_threads: Option<Latency>,
    /// RMSE of the outputs against float targets (None without them).
    pub rmse: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Validation {
    pub original: ModelFigures,
    pub candidate: ModelFigures,
    pub samples: usize,
    /// Rows per call for `latency_ms_batchN`.
    pub batch_n: usize,
    /// Original accuracy minus candidate accuracy, in percentage points (None without labels).
    pub accuracy_drop: Option<f64>,
    /// Fraction of rows where both predict the same class.
    pub agreement: f64,
    /// Largest absolute difference between the two models' class scores (or outputs).
    pub max_abs_diff: f64,
    /// Largest difference between the candidate's scores in ONNX Runtime and in tract (None when
    /// no ONNX Runtime library is installed).
    pub ort_max_abs_diff: Option<f64>,
    /// Points of accuracy (labels) or of agreement (no labels) allowed to be lost.
    pub max_accuracy_drop: Option<f64>,
    pub passed: bool,
    /// What the gate measured, chosen from the data.
    pub gate: GateMetric,
    /// Candidate RMSE minus original RMSE (None without float targets).
    pub rmse_increase: Option<f64>,
    pub max_rmse_increase: Option<f64>,
    /// The bound on `max_abs_diff`, when one was asked for.
    pub allowed_max_abs_diff: Option<f64>,
    /// Original over candidate latency in ONNX Runtime, 1 thread, at `batch_n` rows (else in
    /// tract when ONNX Runtime is not installed): what `min_speedup` bounds.
    pub speedup: f64,
    /// Where `speedup` was measured.
    pub speedup_measured_in: String,
    pub min_speedup: Option<f64>,
    pub max_params: Option<usize>,
    /// Why the gate failed, when it did.
    pub reason: Option<String>,
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

/// The runner's scores on every row of `data`, whose labels (if any) must be among the model's
/// classes and whose float targets (if any) must have the output's shape.
fn score(runner: &mut ModelRunner, target: &Target, data: &Dataset) -> Result<Scored> {
    let out = runner.run_all()?.swap_remove(0);
    let p = eval::predictions(target, out)?;
    if let Some(labels) = &data.y {
        eval::check_label_range(data, labels, target, &p)?;
    }
    if let Some(y) = &data.y_values {
        check_regression_target(data, y, target, &p)?;
    }
    let scores = p.scores.unwrap_or_else(|| {
        ndarray::Array1::from_iter(p.labels.iter().map(|&v| v as f64)).into_dyn()
    });
    Ok(Scored {
        scores,
        predictions: p.labels,
    })
}

/// Float targets are compared value by value with a float output of the same width.
fn check_regression_target(
    data: &Dataset,
    y: &ndarray::Array2<f32>,
    target: &Target,
    p: &eval::Predictions,
) -> Result<()> {
    let Some(scores) = &p.scores else {
        return Err(Error::data(
            &data.path,
            format!(
                "holds float targets (regression) but the model's output '{}' gives class labels",
                target.tensor
            ),
        ));
    };
    if scores.shape() != y.shape() {
        return Err(Error::data(
            &data.path,
            format!(
                "targets have shape {:?} but the model's output '{}' has {:?}",
                y.shape(),
                target.tensor,
                scores.shape()
            ),
        ));
    }
    Ok(())
}

/// A model to compare and the bytes its files take on disk.
pub struct Subject<'a> {
    pub model: &'a Model,
    pub file_bytes: u64,
}

/// The two models' targets and scores on the data.
struct Scoring {
    targets: [Target; 2],
    a: Scored,
    b: Scored,
    ort_max_abs_diff: Option<f64>,
}

/// Runs both models in tract on `data` (and the candidate in ONNX Runtime, when installed).
fn score_both(original: &Model, candidate: &Model, data: &Dataset) -> Result<Scoring> {
    let (ta, tb) = (find_target(original)?, find_target(candidate)?);
    let mut runner_a = runner(original, &ta, data, EngineKind::Tract)?;
    let mut runner_b = runner(candidate, &tb, data, EngineKind::Tract)?;
    let a = score(&mut runner_a, &ta, data)?;
    let b = score(&mut runner_b, &tb, data)?;
    // The candidate must also run in ONNX Runtime, giving tract's scores, when ort is installed.
    let ort_max_abs_diff = if crate::engine::ort_engine::available() {
        let mut ort = runner(candidate, &tb, data, EngineKind::Ort)?;
        let o = score(&mut ort, &tb, data)?;
        Some(gate::max_abs_diff(&o.scores, &b.scores))
    } else {
        None
    };
    Ok(Scoring {
        targets: [ta, tb],
        a,
        b,
        ort_max_abs_diff,
    })
}

/// Agreement of predicted classes needs scores of at least 2 classes: with a single output
/// column (a regressor, a sigmoid) every row "agrees" and the gate could not fail.
fn require_classes(data: &Dataset, scored: &Scored) -> Result<()> {
    match scored.scores.shape() {
        [_, c] if *c < 2 => Err(Error::data(
            &data.path,
            "has no y, and the model has a single output column: agreement of predicted classes \
             means nothing there; give float targets y (regression) or bound the output difference",
        )),
        _ => Ok(()),
    }
}

/// What the gate measures of both models on `data`.
fn measure(metric: GateMetric, data: &Dataset, a: &Scored, b: &Scored) -> Measured {
    let pair = |f: &dyn Fn(&Scored) -> f64| Pair {
        original: f(a),
        candidate: f(b),
    };
    let accuracy = data
        .y
        .as_ref()
        .map(|labels| pair(&|s: &Scored| gate::agreement(&s.predictions, labels)));
    let rmse = data
        .y_values
        .as_ref()
        .map(|y| pair(&|s: &Scored| gate::rmse(&s.scores, y)));
    Measured {
        metric,
        accuracy,
        agreement: gate::agreement(&a.predictions, &b.predictions),
        rmse,
        max_abs_diff: gate::max_abs_diff(&a.scores, &b.scores),
    }
}

/// Compares `candidate` with `original` on `data`, gated as its targets say
/// ([`GateMetric::for_data`]: labels, none, or float targets) within `limits`. `scope` names the
/// data in the reason of a failed gate ("test " or "").
pub fn validate(
    original: Subject,
    candidate: Subject,
    data: &Dataset,
    limits: &Limits,
    scope: &str,
) -> Result<Validation> {
    let (original_bytes, candidate_bytes) = (original.file_bytes, candidate.file_bytes);
    let (original, candidate) = (original.model, candidate.model);
    let metric = GateMetric::for_data(data);
    limits.check(metric, &data.path)?;
    check_interface(original, candidate)?;
    let s = score_both(original, candidate, data)?;
    if metric == GateMetric::Agreement && limits.max_drop_points.is_some() {
        require_classes(data, &s.a)?;
    }
    let m = measure(metric, data, &s.a, &s.b);
    let batch_n = data.rows().min(256);
    let timed = Timings::measure([original, candidate], &s.targets, data, batch_n)?;
    let figures = |side: Side, bytes: u64| {
        let r = inspect::report(side.pick(original, candidate))?;
        let at = |d: Deployment| timed.at(d).map(|c| side.pick(c.original, c.candidate));
        let tract = at(Deployment::Tract).expect("tract is always measured");
        Ok::<_, Error>(ModelFigures {
            accuracy: m.accuracy.map(|p| side.of(p)),
            params: r.params_total,
            macs: r.macs_total,
            file_bytes: bytes,
            latency_ms_batch1: tract.batch1_ms,
            latency_ms_batch_n: tract.batch_n_ms,
            ort_latency_1_thread: at(Deployment::OrtOneThread),
            ort_latency_default_threads: at(Deployment::OrtDefaultThreads),
            rmse: m.rmse.map(|p| side.of(p)),
        })
    };
    let original_f = figures(Side::Original, original_bytes)?;
    let candidate_f = figures(Side::Candidate, candidate_bytes)?;
    let (speedup_in, speedup) = timed.gated_speedup();
    let reason = join_reasons([
        gate::verdict(limits, &m, scope),
        gate::cost_verdict(limits, candidate_f.params, (speedup, speedup_in.describe())),
    ]);
    Ok(Validation {
        original: original_f,
        candidate: candidate_f,
        samples: data.rows(),
        batch_n,
        accuracy_drop: m.accuracy.map(|a| (a.original - a.candidate) * 100.0),
        agreement: m.agreement,
        max_abs_diff: m.max_abs_diff,
        ort_max_abs_diff: s.ort_max_abs_diff,
        max_accuracy_drop: limits.max_drop_points,
        passed: reason.is_none(),
        gate: metric,
        rmse_increase: m.rmse_increase(),
        max_rmse_increase: limits.max_rmse_increase,
        allowed_max_abs_diff: limits.max_abs_diff,
        speedup,
        speedup_measured_in: speedup_in.describe().to_string(),
        min_speedup: limits.min_speedup,
        max_params: limits.max_params,
        reason,
    })
}

/// Both models' latency in every deployment (ONNX Runtime's only when it is installed).
struct Timings(Vec<(Deployment, Compared)>);

impl Timings {
    fn measure(
        [original, candidate]: [&Model; 2],
        [ta, tb]: &[Target; 2],
        data: &Dataset,
        batch_n: usize,
    ) -> Result<Timings> {
        let ort = crate::engine::ort_engine::available();
        let a = Timed {
            model: original,
            target: ta,
        };
        let b = Timed {
            model: candidate,
            target: tb,
        };
        Deployment::ALL
            .into_iter()
            .filter(|&d| ort || d == Deployment::Tract)
            .map(|d| Ok((d, latency::compare(d, &a, &b, data, batch_n)?)))
            .collect::<Result<_>>()
            .map(Timings)
    }

    fn at(&self, deployment: Deployment) -> Option<Compared> {
        self.0
            .iter()
            .find(|(d, _)| *d == deployment)
            .map(|&(_, c)| c)
    }

    /// The speed-up a minimum is set on: ONNX Runtime with 1 thread at the large batch (the
    /// steadiest figure), in tract when ONNX Runtime is not installed.
    fn gated_speedup(&self) -> (Deployment, f64) {
        let d = match self.at(Deployment::OrtOneThread) {
            Some(_) => Deployment::OrtOneThread,
            None => Deployment::Tract,
        };
        (d, self.at(d).expect("measured").speedup_batch_n())
    }
}

/// Each failed check's reason, joined; None when all passed.
fn join_reasons<const N: usize>(reasons: [Option<String>; N]) -> Option<String> {
    let failed: Vec<String> = reasons.into_iter().flatten().collect();
    (!failed.is_empty()).then(|| failed.join("; "))
}

#[derive(Clone, Copy)]
enum Side {
    Original,
    Candidate,
}

impl Side {
    fn of(self, p: Pair) -> f64 {
        self.pick(p.original, p.candidate)
    }

    fn pick<T>(self, original: T, candidate: T) -> T {
        match self {
            Side::Original => original,
            Side::Candidate => candidate,
        }
    }
}
