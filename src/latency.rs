//! Latency of two models where users deploy them: tract, and ONNX Runtime with one intra-op
//! thread and with its default threads, each at batch 1 and at a large batch.
//!
//! Each figure is the median wall time of one engine call on the same rows, after warm-up calls.
//! The two models are timed in alternating rounds (original, candidate, original, …) so that a
//! noisy neighbour slows both alike; the speed-up is the ratio of the two medians.
use crate::data::Dataset;
use crate::engine::{EngineKind, EngineOptions};
use crate::error::Result;
use crate::eval::Target;
use crate::ir::Model;
use crate::runner::ModelRunner;
use serde::Serialize;

/// Median milliseconds of one call.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Latency {
    pub batch1_ms: f64,
    #[serde(rename = "batchN_ms")]
    pub batch_n_ms: f64,
}

/// Where a latency was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deployment {
    Tract,
    OrtOneThread,
    OrtDefaultThreads,
}

impl Deployment {
    pub const ALL: [Deployment; 3] = [
        Deployment::Tract,
        Deployment::OrtOneThread,
        Deployment::OrtDefaultThreads,
    ];

    fn engine(self) -> (EngineKind, EngineOptions) {
        let threads = match self {
            Deployment::OrtOneThread => 1,
            _ => 0,
        };
        let kind = match self {
            Deployment::Tract => EngineKind::Tract,
            _ => EngineKind::Ort,
        };
        let opts = EngineOptions {
            threads,
            ..Default::default()
        };
        (kind, opts)
    }

    pub fn describe(self) -> &'static str {
        match self {
            Deployment::Tract => "tract",
            Deployment::OrtOneThread => "ONNX Runtime, 1 thread",
            Deployment::OrtDefaultThreads => "ONNX Runtime, default threads",
        }
    }
}

/// Both models' latency in one deployment.
#[derive(Debug, Clone, Copy)]
pub struct Compared {
    pub original: Latency,
    pub candidate: Latency,
}

impl Compared {
    /// Original time over candidate time at the large batch.
    pub fn speedup_batch_n(&self) -> f64 {
        self.original.batch_n_ms / self.candidate.batch_n_ms
    }
}

/// A model cut to its target, to be timed.
pub struct Timed<'a> {
    pub model: &'a Model,
    pub target: &'a Target,
}

/// Rounds of timed calls per figure (alternating models) and calls per round.
const ROUNDS: usize = 5;
const CALLS_BATCH1: usize = 10;
const CALLS_BATCH_N: usize = 3;

/// Both models' latency in `deployment` on the first rows of `data` (batch 1 and `batch_n`).
pub fn compare(
    deployment: Deployment,
    original: &Timed,
    candidate: &Timed,
    data: &Dataset,
    batch_n: usize,
) -> Result<Compared> {
    let (kind, opts) = deployment.engine();
    let load = |t: &Timed| {
        let out = [t.target.tensor.as_str()];
        ModelRunner::new(t.model, &out, t.target.out_type(), data, kind, &opts)
    };
    let mut runners = [load(original)?, load(candidate)?];
    let mut at = |rows: usize, calls: usize| -> Result<[f64; 2]> {
        let mut times = [Vec::new(), Vec::new()];
        for _ in 0..ROUNDS {
            for (runner, t) in runners.iter_mut().zip(times.iter_mut()) {
                t.extend(runner.time_first(rows, 1, calls)?);
            }
        }
        Ok(times.map(median))
    };
    let [a1, b1] = at(1, CALLS_BATCH1)?;
    let [an, bn] = at(batch_n, CALLS_BATCH_N)?;
    Ok(Compared {
        original: Latency {
            batch1_ms: a1,
            batch_n_ms: an,
        },
        candidate: Latency {
            batch1_ms: b1,
            batch_n_ms: bn,
        },
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 3.0);
    }
}
