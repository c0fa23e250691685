//! A step graph loaded into an engine with the state it carries, stepped batch by batch and
//! epoch by epoch: the one training loop of fine-tuning, healing, the tests and the benchmark.
//!
//! Invariants: the state inside the runner is always a good one (a step whose losses are not
//! finite rolls back, see `engine::StepRunner::step`); `steps` counts the accepted steps, and the
//! next step is fed `steps + 1` (Adam's bias correction); an epoch visits every row once, in an
//! order that depends only on the seed and the epoch number, so a resumed run repeats exactly
//! the batches an uninterrupted one would have seen.
use super::chain_input::ChainInput;
use crate::engine::StepScalars;
use crate::engine::{self, EngineKind, EngineOptions, StepBatch, StepGraph, StepRunner};
use crate::error::Result;
use ndarray::{Array2, ArrayD, Axis};
use rand::seq::SliceRandom;
use rand::SeedableRng;

/// Rows to train on: the dense chain's input features and the per-row targets.
pub struct TrainingSet {
    /// `[N, n₀]`, read a batch of rows at a time (a mapped file is never loaded whole).
    pub features: ChainInput,
    /// `[N, C]`
    pub targets: Array2<f32>,
}

impl TrainingSet {
    pub fn rows(&self) -> usize {
        self.features.rows()
    }

    /// The row order of `epoch` under `seed`.
    pub fn shuffled(&self, seed: u64, epoch: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.rows()).collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(
            seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .wrapping_add(epoch as u64),
        );
        order.shuffle(&mut rng);
        order
    }
}

/// What one epoch added up: each scalar summed over rows (losses weighted by batch size).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EpochSums {
    pub task_loss: f64,
    pub bean: f64,
    pub baseline: f64,
    pub correct: f64,
}

impl EpochSums {
    fn add(&mut self, s: &StepScalars, rows: usize) {
        let n = rows as f64;
        self.task_loss += s.task_loss as f64 * n;
        self.bean += s.bean as f64 * n;
        self.baseline += s.baseline as f64 * n;
        self.correct += s.correct as f64;
    }
}

/// How an epoch ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EpochEnd {
    Completed(EpochSums),
    /// `stop` said so before a step.
    Stopped,
    /// The losses of this step of the epoch (from 1) were not finite; the state is the last good.
    Diverged {
        step: usize,
    },
}

pub struct Trainer {
    runner: Box<dyn StepRunner>,
    n_params: usize,
    lr: f32,
    steps: usize,
}

impl Trainer {
    /// Loads `graph` into the engine; its first `n_params` state tensors are the params.
    pub fn new(
        kind: EngineKind,
        graph: &StepGraph,
        n_params: usize,
        opts: &EngineOptions,
        lr: f64,
    ) -> Result<Self> {
        Ok(Trainer {
            runner: engine::load_step_runner(kind, graph, opts)?,
            n_params,
            lr: lr as f32,
            steps: 0,
        })
    }

    /// Sets the state (in state order) and the count of steps already taken.
    pub fn set_state(&mut self, state: &[ArrayD<f32>], steps: usize) -> Result<()> {
        self.runner.set_state(state)?;
        self.steps = steps;
        Ok(())
    }

    /// One step on a batch; the step count advances only when the losses are finite.
    pub fn step(&mut self, x: ArrayD<f32>, target: ArrayD<f32>) -> Result<StepScalars> {
        let batch = StepBatch {
            x,
            target,
            lr: self.lr,
            step: self.steps as u64 + 1,
        };
        let s = self.runner.step(batch)?;
        if s.all_finite() {
            self.steps += 1;
        }
        Ok(s)
    }

    /// One pass over `set` in `order`, `batch_size` rows a step. `stop` is asked before each
    /// step; `after_step` sees each step's scalars and its row count.
    pub fn epoch(
        &mut self,
        set: &TrainingSet,
        order: &[usize],
        batch_size: usize,
        stop: &dyn Fn() -> bool,
        after_step: &mut dyn FnMut(&StepScalars, usize),
    ) -> Result<EpochEnd> {
        let mut sums = EpochSums::default();
        for (b, rows) in order.chunks(batch_size).enumerate() {
            if stop() {
                return Ok(EpochEnd::Stopped);
            }
            let x = set.features.batch(rows)?;
            let t = set.targets.select(Axis(0), rows).into_dyn();
            let s = self.step(x, t)?;
            if !s.all_finite() {
                return Ok(EpochEnd::Diverged { step: b + 1 });
            }
            sums.add(&s, rows.len());
            after_step(&s, rows.len());
        }
        Ok(EpochEnd::Completed(sums))
    }

    /// Accepted steps so far.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// A host copy of the whole state (params, then optimizer slots).
    pub fn state(&self) -> Result<Vec<ArrayD<f32>>> {
        self.runner.state()
    }

    /// A host copy of the params.
    pub fn params(&self) -> Result<Vec<ArrayD<f32>>> {
        let mut s = self.runner.state()?;
        s.truncate(self.n_params);
        Ok(s)
    }

    pub fn describe(&self) -> String {
        self.runner.describe()
    }

    /// See [`StepRunner::state_buffers`].
    pub fn state_buffers(&self) -> Vec<usize> {
        self.runner.state_buffers()
    }
}
