//! Engines that run an ONNX graph: tract (pure Rust, always there) and ONNX Runtime through `ort`.
//! One small trait so eval, validation and training run the same way on either.
use crate::error::Result;
use ndarray::ArrayD;

pub mod fused_update;
mod ort_bound_step;
pub mod ort_engine;
pub mod ort_fixed_run;
mod ort_host_step;
mod state_sets;
pub mod step;
pub mod tract_engine;

pub use step::{StepBatch, StepGraph, StepRunner, StepScalars};

/// A tensor passed to or returned by an engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    F32(ArrayD<f32>),
    F64(ArrayD<f64>),
    I64(ArrayD<i64>),
}

impl Value {
    pub fn into_f32(self) -> Option<ArrayD<f32>> {
        match self {
            Value::F32(a) => Some(a),
            _ => None,
        }
    }
    pub fn shape(&self) -> &[usize] {
        match self {
            Value::F32(a) => a.shape(),
            Value::F64(a) => a.shape(),
            Value::I64(a) => a.shape(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    Tract,
    Ort,
}

crate::names::named!(EngineKind, "engine", [Tract => "tract", Ort => "ort"]);

/// Where ort runs a graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    #[default]
    Cpu,
    Cuda(i32),
}

impl std::str::FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse::<i32>().ok())
                .filter(|n| *n >= 0)
                .map(Device::Cuda)
                .ok_or_else(|| format!("unknown device '{s}': expected cpu, cuda or cuda:N")),
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EngineOptions {
    /// Intra-op threads; 0 lets the engine choose.
    pub threads: usize,
    pub device: Device,
    /// Where ONNX Runtime's training step computes its update and keeps its state.
    pub step: StepPlacement,
    /// Whether ONNX Runtime's idle intra-op threads spin-wait for work. None: ONNX Runtime's
    /// default (spin), except on the host-update step path, which turns it off.
    pub spin_wait: Option<bool>,
}

/// Where ONNX Runtime's training step computes the optimizer update and keeps the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StepPlacement {
    /// The fastest where the step runs: on the CPU the host's fused update over host buffers;
    /// on a device the graph's update, the state bound in device buffers.
    #[default]
    Auto,
    /// The graph's update, each step's outputs returned as new values (for comparison).
    Graph,
    /// The graph's update, the state in three bound pre-allocated sets (a device's path, also
    /// on the CPU for tests and comparison).
    GraphBound,
}

/// A loaded graph, ready to run many times.
pub trait Session {
    /// Runs the graph on named inputs; returns every graph output, in graph order.
    fn run(&mut self, inputs: &[(&str, Value)]) -> Result<Vec<Value>>;
    /// A description such as `tract` or `ort (CPUExecutionProvider)`.
    fn describe(&self) -> String;
}

/// Loads a step graph into the chosen engine.
pub fn load_step_runner(
    kind: EngineKind,
    graph: &StepGraph,
    opts: &EngineOptions,
) -> Result<Box<dyn StepRunner>> {
    match kind {
        EngineKind::Tract => {
            check_cpu("tract", opts)?;
            Ok(Box::new(tract_engine::TractStepRunner::load(graph)?))
        }
        EngineKind::Ort => match (&graph.host_update, opts.device, opts.step) {
            // On the CPU the host's fused update is faster than the graph's chain of ops; on a
            // device the state stays where the graph computes it.
            (Some(host), Device::Cpu, StepPlacement::Auto) => Ok(Box::new(
                ort_host_step::OrtHostStepRunner::load(graph, host, opts)?,
            )),
            (_, _, StepPlacement::Graph) => {
                Ok(Box::new(ort_engine::OrtStepRunner::load(graph, opts)?))
            }
            _ => Ok(Box::new(ort_bound_step::OrtBoundStepRunner::load(
                graph, opts,
            )?)),
        },
    }
}

fn check_cpu(engine: &str, opts: &EngineOptions) -> Result<()> {
    if opts.device != Device::Cpu {
        return Err(crate::Error::engine(
            engine,
            format!(
                "runs on the CPU only; device {} needs the ort engine",
                opts.device
            ),
        ));
    }
    Ok(())
}

/// Loads a self-contained model (`onnx::to_bytes`) into the chosen engine.
pub fn load(kind: EngineKind, model: &[u8], opts: &EngineOptions) -> Result<Box<dyn Session>> {
    match kind {
        EngineKind::Tract => {
            check_cpu("tract", opts)?;
            Ok(Box::new(tract_engine::TractSession::load(model)?))
        }
        EngineKind::Ort => Ok(Box::new(ort_engine::OrtSession::load(model, opts)?)),
    }
}
