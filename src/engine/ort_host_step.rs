//! The training step in ONNX Runtime with the update computed by the host: the engine runs the
//! step graph without its update (forward, loss, regularizers, backward → the scalars and each
//! param's gradient), reading the params straight from host buffers (no copy in), and the host
//! writes the next params and optimizer slots in one fused pass per tensor
//! ([`super::fused_update`]) into the spare of three pre-allocated state sets
//! ([`super::state_sets`]), which also keep the state before the step for the roll-back rule.
//! ONNX Runtime's idle threads do not spin-wait here by default: they would compete with the
//! update's threads for the same cores (on 2 cores the step ran 1.04–1.3× faster without).
use super::fused_update::{self, TensorUpdate, UpdateRule};
use super::ort_engine::{build_session, err};
use super::state_sets::StateSets;
use super::step::{
    check_state, output_positions, scalar_positions, HostUpdate, StepBatch, StepGraph, StepRunner,
    StepScalars,
};
use super::EngineOptions;
use crate::error::{Error, Result};
use ndarray::ArrayD;

pub struct OrtHostStepRunner {
    session: ort::session::Session,
    provider: &'static str,
    graph: StepGraph,
    rule: UpdateRule,
    /// Output positions of the four scalars and of each param's gradient.
    scalar_slots: [usize; 4],
    gradient_slots: Vec<usize>,
    sets: StateSets,
    /// The update's threads; None for one thread: the update then runs on the caller's thread.
    pool: Option<rayon::ThreadPool>,
}

impl OrtHostStepRunner {
    pub fn load(graph: &StepGraph, host: &HostUpdate, opts: &EngineOptions) -> Result<Self> {
        let bytes = crate::onnx::to_bytes(&host.model);
        // The update runs on the host's threads right after each run: ONNX Runtime's idle
        // threads must not spin-wait meanwhile on the same cores (unless asked to).
        let spin_wait = Some(opts.spin_wait.unwrap_or(false));
        let (session, provider) = build_session(&bytes, &EngineOptions { spin_wait, ..*opts })?;
        let gradients: Vec<&str> = host.gradients.iter().map(String::as_str).collect();
        let pool = (opts.threads != 1)
            .then(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(opts.threads)
                    .build()
            })
            .transpose()
            .map_err(|e| Error::Invalid(format!("cannot start the update threads: {e}")))?;
        let shapes: Vec<Vec<usize>> = graph.state.iter().map(|b| b.shape.clone()).collect();
        Ok(OrtHostStepRunner {
            session,
            provider,
            scalar_slots: scalar_positions(&host.model, &graph.scalars)?,
            gradient_slots: output_positions(&host.model, &gradients)?,
            rule: host.rule,
            graph: graph.clone(),
            sets: StateSets::new(&shapes),
            pool,
        })
    }
}

/// Runs the gradient graph on the batch and the current params (read in place, no copy).
fn run_gradients<'s>(
    session: &'s mut ort::session::Session,
    graph: &StepGraph,
    params: &[ArrayD<f32>],
    batch: &StepBatch,
) -> Result<ort::session::SessionOutputs<'s>> {
    let names = &graph.inputs;
    let mut feed: Vec<(String, ort::session::SessionInputValue<'_>)> =
        Vec::with_capacity(2 + params.len());
    for (name, a) in [(&names.x, &batch.x), (&names.target, &batch.target)] {
        let v = ort::value::TensorRef::from_array_view(a.view()).map_err(err)?;
        feed.push((name.clone(), v.into()));
    }
    for (binding, a) in graph.state.iter().zip(params) {
        let v = ort::value::TensorRef::from_array_view(a.view()).map_err(err)?;
        feed.push((binding.input.clone(), v.into()));
    }
    session.run(feed).map_err(err)
}

/// Writes the next state into `next` from `current` and the gradients, tensor by tensor.
/// State order: the params, then each slot of every param (slot by slot).
fn update_all(
    rule: UpdateRule,
    (lr, step): (f32, u64),
    current: &[ArrayD<f32>],
    gradients: &[&[f32]],
    next: &mut [ArrayD<f32>],
    parallel: bool,
) -> Result<()> {
    let n = gradients.len();
    let (next_params, next_slots) = next.split_at_mut(n);
    let mut next_slots: Vec<Option<&mut ArrayD<f32>>> = next_slots.iter_mut().map(Some).collect();
    for (k, next_param) in next_params.iter_mut().enumerate() {
        let slots: Vec<&[f32]> = (0..rule.slots())
            .map(|s| contiguous(&current[n + s * n + k]))
            .collect::<Result<_>>()?;
        let mut outs: Vec<&mut [f32]> = (0..rule.slots())
            .map(|s| next_slots[s * n + k].take().expect("each slot once"))
            .map(|a| {
                a.as_slice_mut()
                    .ok_or_else(|| Error::Invalid("a state buffer is not contiguous".into()))
            })
            .collect::<Result<_>>()?;
        let update = TensorUpdate {
            param: contiguous(&current[k])?,
            grad: gradients[k],
            slots: &slots,
            next_param: next_param
                .as_slice_mut()
                .ok_or_else(|| Error::Invalid("a state buffer is not contiguous".into()))?,
            next_slots: &mut outs,
        };
        fused_update::apply(rule, lr, step, update, parallel);
    }
    Ok(())
}

fn contiguous(a: &ArrayD<f32>) -> Result<&[f32]> {
    a.as_slice()
        .ok_or_else(|| Error::Invalid("a state buffer is not contiguous".into()))
}

impl StepRunner for OrtHostStepRunner {
    fn set_state(&mut self, state: &[ArrayD<f32>]) -> Result<()> {
        check_state(&self.graph.state, state)?;
        self.sets.set(state);
        Ok(())
    }

    fn step(&mut self, batch: StepBatch) -> Result<StepScalars> {
        let OrtHostStepRunner {
            session,
            graph,
            rule,
            scalar_slots,
            gradient_slots,
            sets,
            pool,
            ..
        } = self;
        let n_params = gradient_slots.len();
        let outputs = run_gradients(session, graph, &sets.current()[..n_params], &batch)?;
        let scalar = |i: usize| outputs[i].try_extract_scalar::<f32>().map_err(err);
        let s = *scalar_slots;
        let scalars =
            StepScalars::from_array([scalar(s[0])?, scalar(s[1])?, scalar(s[2])?, scalar(s[3])?]);
        if scalars.all_finite() {
            let gradients: Vec<&[f32]> = gradient_slots
                .iter()
                .map(|&i| {
                    outputs[i]
                        .try_extract_tensor::<f32>()
                        .map(|(_, data)| data)
                        .map_err(err)
                })
                .collect::<Result<_>>()?;
            let (current, next) = sets.current_and_spare();
            let (rule, lr, step) = (*rule, batch.lr, batch.step);
            match pool {
                Some(pool) => {
                    pool.install(|| update_all(rule, (lr, step), current, &gradients, next, true))?
                }
                None => update_all(rule, (lr, step), current, &gradients, next, false)?,
            }
        }
        sets.advance(scalars.all_finite());
        Ok(scalars)
    }

    fn state(&self) -> Result<Vec<ArrayD<f32>>> {
        Ok(self.sets.current().to_vec())
    }

    fn state_buffers(&self) -> Vec<usize> {
        self.sets.addresses(|a| a.as_ptr() as usize)
    }

    fn describe(&self) -> String {
        format!("ort ({}, host update)", self.provider)
    }
}
