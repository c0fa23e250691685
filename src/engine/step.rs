//! The training-step protocol between the graph generator (`train::step`) and the engines.
//!
//! A step graph takes per-step inputs — the batch `x` [B, n₀], its `target` [B, C], the learning
//! rate and the step count (from 1) — and the state: every trainable tensor and optimizer slot.
//! It gives four scalars (task loss, BEAN term, baseline term, correct predictions) and the next
//! state. A [`StepGraph`] carries the model with the names of all of these, so no caller spells a
//! tensor name; a [`StepRunner`] looks them up once at load and feeds each step's next state back
//! as the following step's state, inside the engine.
use crate::error::{Error, Result};
use crate::ir::Model;
use ndarray::ArrayD;

/// A training-step graph and the names of what goes in and comes out.
#[derive(Debug, Clone)]
pub struct StepGraph {
    pub model: Model,
    pub inputs: StepInputs,
    pub scalars: ScalarOutputs,
    /// The state, in state order: each tensor's input, the output holding its next value, and
    /// its shape.
    pub state: Vec<StateBinding>,
    /// The same step without its update, for a runner whose host computes the update.
    pub host_update: Option<HostUpdate>,
}

/// A step graph's forward and backward without the update: inputs `x`, `target` and the params
/// (the first `gradients.len()` state tensors, same input names); outputs the four scalars
/// (same names) and each param's gradient. The host applies `rule` to get the next state.
#[derive(Debug, Clone)]
pub struct HostUpdate {
    pub model: Model,
    /// Output names of the gradients, in state order.
    pub gradients: Vec<String>,
    pub rule: super::fused_update::UpdateRule,
}

/// Names of the per-step inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepInputs {
    pub x: String,
    pub target: String,
    pub lr: String,
    pub step: String,
}

/// Names of the scalar outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalarOutputs {
    pub task_loss: String,
    pub bean: String,
    pub baseline: String,
    pub correct: String,
}

impl ScalarOutputs {
    /// In the order of [`StepScalars::from_array`].
    pub fn names(&self) -> [&str; 4] {
        [&self.task_loss, &self.bean, &self.baseline, &self.correct]
    }
}

/// One state tensor: fed as `input`, its next value read from `output`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateBinding {
    pub input: String,
    pub output: String,
    pub shape: Vec<usize>,
}

/// The scalars of one step. The losses are those of the state that went into the step.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepScalars {
    /// Mean task loss over the batch.
    pub task_loss: f32,
    /// BEAN term (summed over regularized layers).
    pub bean: f32,
    /// Baseline regularizer term.
    pub baseline: f32,
    /// Rows whose predicted class is the target's.
    pub correct: f32,
}

impl StepScalars {
    pub fn from_array([task_loss, bean, baseline, correct]: [f32; 4]) -> Self {
        StepScalars {
            task_loss,
            bean,
            baseline,
            correct,
        }
    }

    pub fn all_finite(&self) -> bool {
        [self.task_loss, self.bean, self.baseline, self.correct]
            .iter()
            .all(|v| v.is_finite())
    }
}

/// The per-step inputs of one step.
pub struct StepBatch {
    /// `[B, n₀]`
    pub x: ArrayD<f32>,
    /// `[B, C]`
    pub target: ArrayD<f32>,
    pub lr: f32,
    /// Counts from 1 (Adam's bias correction uses it).
    pub step: u64,
}

impl StepBatch {
    /// The learning rate and step count as the graph takes them: f32 scalars.
    pub fn scalars(&self) -> (ArrayD<f32>, ArrayD<f32>) {
        (
            ndarray::arr0(self.lr).into_dyn(),
            ndarray::arr0(self.step as f32).into_dyn(),
        )
    }
}

/// Where each output of a step graph is, in the engine's output order (the graph's).
#[derive(Debug, Clone)]
pub(crate) struct OutputSlots {
    pub scalars: [usize; 4],
    pub state: Vec<usize>,
}

impl OutputSlots {
    pub fn of(graph: &StepGraph) -> Result<Self> {
        let state: Vec<&str> = graph.state.iter().map(|b| b.output.as_str()).collect();
        Ok(OutputSlots {
            scalars: scalar_positions(&graph.model, &graph.scalars)?,
            state: output_positions(&graph.model, &state)?,
        })
    }
}

/// Where each named output is in `model`'s output order.
pub(crate) fn output_positions(model: &Model, names: &[&str]) -> Result<Vec<usize>> {
    let outputs = &model.graph.outputs;
    names
        .iter()
        .map(|name| {
            outputs
                .iter()
                .position(|o| o.name == *name)
                .ok_or_else(|| Error::Invalid(format!("the step graph has no output '{name}'")))
        })
        .collect()
}

/// Where the four scalars are in `model`'s output order.
pub(crate) fn scalar_positions(model: &Model, scalars: &ScalarOutputs) -> Result<[usize; 4]> {
    let p = output_positions(model, &scalars.names())?;
    Ok([p[0], p[1], p[2], p[3]])
}

/// Runs a step graph again and again, keeping its state inside the engine between steps.
pub trait StepRunner {
    /// Replaces the state with host arrays (in state order, shapes as bound).
    fn set_state(&mut self, state: &[ArrayD<f32>]) -> Result<()>;
    /// Runs one step. The losses are those of the state that went in, so when one is not finite
    /// that state is bad too: the runner goes back to the state before it (the last good
    /// weights); otherwise it keeps the updated state.
    /// The batch is given by value so an engine that takes ownership of its inputs (tract) does
    /// not copy it.
    fn step(&mut self, batch: StepBatch) -> Result<StepScalars>;
    /// A host copy of the state.
    fn state(&self) -> Result<Vec<ArrayD<f32>>>;
    /// Where every buffer the state may occupy lives, when the runner keeps it in buffers
    /// allocated once (the same for its whole life); empty when the engine allocates new values
    /// each step.
    fn state_buffers(&self) -> Vec<usize> {
        Vec::new()
    }
    fn describe(&self) -> String;
}

/// Checks host arrays against the bound shapes before they become the state.
pub(crate) fn check_state(graph: &[StateBinding], state: &[ArrayD<f32>]) -> Result<()> {
    if state.len() != graph.len() {
        return Err(Error::Invalid(format!(
            "expected {} state tensors, got {}",
            graph.len(),
            state.len()
        )));
    }
    for (b, a) in graph.iter().zip(state) {
        if a.shape() != b.shape.as_slice() {
            return Err(Error::Invalid(format!(
                "state tensor '{}' has shape {:?}, expected {:?}",
                b.input,
                a.shape(),
                b.shape
            )));
        }
    }
    Ok(())
}

/// A step runner's state as engine values, and the state before it: the accept / roll-back rule
/// of [`StepRunner::step`] in one place for every engine.
pub(crate) struct StepState<T> {
    pub current: Vec<T>,
    previous: Vec<T>,
}

impl<T> StepState<T> {
    pub fn new() -> Self {
        StepState {
            current: Vec::new(),
            previous: Vec::new(),
        }
    }

    pub fn set(&mut self, state: Vec<T>) {
        self.current = state;
        self.previous.clear();
    }

    /// After a step: keep `next` when every loss is finite; otherwise the state that went in is
    /// bad too (the losses are its losses), so go back to the one before it.
    pub fn advance(&mut self, scalars: &StepScalars, next: impl FnOnce() -> Vec<T>) {
        if scalars.all_finite() {
            self.previous = std::mem::replace(&mut self.current, next());
        } else if !self.previous.is_empty() {
            self.current = std::mem::take(&mut self.previous);
        }
    }
}
