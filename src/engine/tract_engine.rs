//! tract: the pure-Rust engine. The graph is optimised once with the batch dimension left
//! symbolic (the model's inputs must declare their shapes, with a named batch dimension).
use super::step::{check_state, OutputSlots, StateBinding, StepState};
use super::{Session, StepBatch, StepGraph, StepRunner, StepScalars, Value};
use crate::error::{Error, Result};
use ndarray::ArrayD;
use tract_onnx::prelude::*;

type Plan = Arc<TypedSimplePlan>;

pub struct TractSession {
    plan: Plan,
    input_names: Vec<String>,
}

fn err(e: impl std::fmt::Display) -> Error {
    Error::engine("tract", format!("{e:#}"))
}

thread_local! {
    /// Set while [`guarded`] runs tract on this thread: a panic there becomes an error.
    static IN_TRACT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` (a call into tract) and turns a panic inside it into an error: tract panics on some
/// malformed graphs (an out-of-range Flatten axis, for one), and a hostile model must get a
/// message, never a crash. The panic's default report is silenced by [`quiet_tract_panics`].
fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    IN_TRACT.with(|c| c.set(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    IN_TRACT.with(|c| c.set(false));
    r.unwrap_or_else(|payload| {
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("no message");
        Err(err(format!(
            "tract failed while {what}: an internal error on this graph ({msg})"
        )))
    })
}

/// Installs a panic hook that keeps the previous one for every panic except those [`guarded`]
/// turns into errors. The binary calls it once at start.
pub fn quiet_tract_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !IN_TRACT.with(|c| c.get()) {
            previous(info);
        }
    }));
}

/// The optimised plan of a model and its input names, in input order.
fn compile(model: &[u8]) -> Result<(Plan, Vec<String>)> {
    guarded("loading the model", || compile_unguarded(model))
}

fn compile_unguarded(model: &[u8]) -> Result<(Plan, Vec<String>)> {
    let inference = tract_onnx::onnx()
        .model_for_read(&mut &model[..])
        .map_err(err)?;
    let input_names = inference
        .input_outlets()
        .map_err(err)?
        .iter()
        .map(|o| inference.node(o.node).name.clone())
        .collect();
    let plan = inference
        .into_optimized()
        .map_err(err)?
        .into_runnable()
        .map_err(err)?;
    Ok((plan, input_names))
}

fn to_tensor(v: &Value) -> Tensor {
    match v {
        Value::F32(a) => a.clone().into(),
        Value::F64(a) => a.clone().into(),
        Value::I64(a) => a.clone().into(),
    }
}

impl TractSession {
    pub fn load(model: &[u8]) -> Result<Self> {
        let (plan, input_names) = compile(model)?;
        Ok(TractSession { plan, input_names })
    }
}

impl Session for TractSession {
    fn run(&mut self, inputs: &[(&str, Value)]) -> Result<Vec<Value>> {
        let mut ordered = TVec::new();
        for name in &self.input_names {
            let (_, v) = inputs
                .iter()
                .find(|(n, _)| n == name)
                .ok_or_else(|| err(format!("no value given for input '{name}'")))?;
            ordered.push(to_tensor(v).into_tvalue());
        }
        let outputs = guarded("running the model", || self.plan.run(ordered).map_err(err))?;
        outputs
            .into_iter()
            .map(|t| {
                let t = t.into_tensor();
                match t.datum_type() {
                    DatumType::F32 => Ok(Value::F32(t.into_plain_array::<f32>().map_err(err)?)),
                    DatumType::F64 => Ok(Value::F64(t.into_plain_array::<f64>().map_err(err)?)),
                    DatumType::I64 => Ok(Value::I64(t.into_plain_array::<i64>().map_err(err)?)),
                    dt => Err(err(format!("output of type {dt:?} is not supported"))),
                }
            })
            .collect()
    }

    fn describe(&self) -> String {
        "tract".into()
    }
}

pub struct TractStepRunner {
    plan: Plan,
    /// For each graph input, in the plan's order: where its value comes from.
    feeds: Vec<Feed>,
    bindings: Vec<StateBinding>,
    slots: OutputSlots,
    state: StepState<TValue>,
}

/// The source of one step-graph input.
enum Feed {
    X,
    Target,
    Lr,
    Step,
    State(usize),
}

impl TractStepRunner {
    pub fn load(graph: &StepGraph) -> Result<Self> {
        let (plan, input_names) = compile(&crate::onnx::to_bytes(&graph.model))?;
        let names = &graph.inputs;
        let feeds =
            input_names
                .iter()
                .map(|n| {
                    Ok(match n {
                        n if *n == names.x => Feed::X,
                        n if *n == names.target => Feed::Target,
                        n if *n == names.lr => Feed::Lr,
                        n if *n == names.step => Feed::Step,
                        n => {
                            Feed::State(graph.state.iter().position(|b| b.input == *n).ok_or_else(
                                || err(format!("step graph input '{n}' is not bound")),
                            )?)
                        }
                    })
                })
                .collect::<Result<_>>()?;
        Ok(TractStepRunner {
            plan,
            feeds,
            bindings: graph.state.clone(),
            slots: OutputSlots::of(graph)?,
            state: StepState::new(),
        })
    }
}

impl StepRunner for TractStepRunner {
    fn set_state(&mut self, state: &[ArrayD<f32>]) -> Result<()> {
        check_state(&self.bindings, state)?;
        self.state.set(
            state
                .iter()
                .map(|a| Tensor::from(a.clone()).into_tvalue())
                .collect(),
        );
        Ok(())
    }

    fn step(&mut self, batch: StepBatch) -> Result<StepScalars> {
        let (lr, step) = batch.scalars();
        let value = |a: ArrayD<f32>| Tensor::from(a).into_tvalue();
        let (mut x, mut target) = (Some(batch.x), Some(batch.target));
        let mut feed: TVec<TValue> = TVec::with_capacity(self.feeds.len());
        for f in &self.feeds {
            feed.push(match f {
                Feed::X => value(x.take().expect("one x input")),
                Feed::Target => value(target.take().expect("one target input")),
                Feed::Lr => value(lr.clone()),
                Feed::Step => value(step.clone()),
                Feed::State(i) => self.state.current[*i].clone(),
            });
        }
        let mut outputs: Vec<Option<TValue>> =
            guarded("running a step", || self.plan.run(feed).map_err(err))?
                .into_iter()
                .map(Some)
                .collect();
        let scalar = |t: &Option<TValue>| -> Result<f32> {
            let t = t
                .as_ref()
                .ok_or_else(|| err("a scalar output is missing"))?
                .cast_to::<f32>()
                .map_err(err)?;
            let view = t.to_plain_array_view::<f32>().map_err(err)?;
            view.iter()
                .next()
                .copied()
                .ok_or_else(|| err("a scalar output is empty"))
        };
        let s = self.slots.scalars;
        let scalars = StepScalars::from_array([
            scalar(&outputs[s[0]])?,
            scalar(&outputs[s[1]])?,
            scalar(&outputs[s[2]])?,
            scalar(&outputs[s[3]])?,
        ]);
        let slots = &self.slots.state;
        self.state.advance(&scalars, || {
            slots
                .iter()
                .map(|&i| outputs[i].take().expect("each state output is read once"))
                .collect()
        });
        Ok(scalars)
    }

    fn state(&self) -> Result<Vec<ArrayD<f32>>> {
        self.state
            .current
            .iter()
            .map(|t| {
                t.to_plain_array_view::<f32>()
                    .map(|a| a.to_owned())
                    .map_err(err)
            })
            .collect()
    }

    fn describe(&self) -> String {
        "tract".into()
    }
}
