//! The training step in ONNX Runtime with its state in engine-owned buffers, through I/O binding:
//! three pre-allocated sets of state tensors ([`super::state_sets`]) allocated by the session's
//! allocator on its device (CUDA memory with `--device cuda`, host memory on the CPU). Each step
//! binds the current set as the state inputs and the spare set as the state outputs, so the
//! graph's update writes the next state in place; only the batch (in) and the four scalars (out)
//! cross between host and device. Weights come back to the host only when asked for
//! ([`StepRunner::state`]: checkpoints, validation, the final write).
//!
//! The CPU binding runs in the tests (same bytes as the unbound in-graph step, fixed buffer
//! addresses); the CUDA binding is the same code with the CUDA allocator, and has not been run on
//! a GPU.
use super::ort_engine::{build_session, err};
use super::state_sets::StateSets;
use super::step::{check_state, StepBatch, StepGraph, StepRunner, StepScalars};
use super::{Device, EngineOptions};
use crate::error::Result;
use ndarray::ArrayD;
use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
use ort::value::Tensor;

pub struct OrtBoundStepRunner {
    session: ort::session::Session,
    provider: &'static str,
    graph: StepGraph,
    sets: StateSets<Tensor<f32>>,
    /// Created once; each step rebinds every input and output under the same names.
    binding: ort::session::IoBinding,
    /// Host memory, where the scalars are bound.
    host: MemoryInfo<'static>,
}

impl OrtBoundStepRunner {
    pub fn load(graph: &StepGraph, opts: &EngineOptions) -> Result<Self> {
        let bytes = crate::onnx::to_bytes(&graph.model);
        let (session, provider) = build_session(&bytes, opts)?;
        let (device, id) = match opts.device {
            Device::Cpu => (AllocationDevice::CPU, 0),
            Device::Cuda(id) => (AllocationDevice::CUDA, id),
        };
        let memory =
            MemoryInfo::new(device, id, AllocatorType::Device, MemoryType::Default).map_err(err)?;
        let allocator = Allocator::new(&session, memory).map_err(err)?;
        let set = || -> Result<Vec<Tensor<f32>>> {
            graph
                .state
                .iter()
                .map(|b| Tensor::<f32>::new(&allocator, b.shape.clone()).map_err(err))
                .collect()
        };
        let sets = StateSets::from_sets([set()?, set()?, set()?]);
        let binding = session.create_binding().map_err(err)?;
        Ok(OrtBoundStepRunner {
            binding,
            session,
            provider,
            graph: graph.clone(),
            sets,
            host: MemoryInfo::default(),
        })
    }
}

impl StepRunner for OrtBoundStepRunner {
    fn set_state(&mut self, state: &[ArrayD<f32>]) -> Result<()> {
        check_state(&self.graph.state, state)?;
        for (buffer, value) in self.sets.current_mut().iter_mut().zip(state) {
            // An owned host tensor: ort 2.0.0-rc.15 deadlocks copying from a borrowed one.
            let host = Tensor::from_array(value.as_standard_layout().into_owned()).map_err(err)?;
            host.copy_into(buffer).map_err(err)?;
        }
        Ok(())
    }

    fn step(&mut self, batch: StepBatch) -> Result<StepScalars> {
        let OrtBoundStepRunner {
            session,
            graph,
            sets,
            binding,
            host,
            ..
        } = self;
        let names = &graph.inputs;
        let (lr, step) = batch.scalars();
        let per_step = [
            (&names.x, batch.x),
            (&names.target, batch.target),
            (&names.lr, lr),
            (&names.step, step),
        ];
        for (name, a) in per_step {
            let v = Tensor::from_array(a).map_err(err)?;
            binding.bind_input(name.as_str(), &v).map_err(err)?;
        }
        let (current, spare) = sets.current_and_spare();
        for ((b, input), output) in graph.state.iter().zip(current).zip(spare.iter_mut()) {
            binding.bind_input(b.input.as_str(), input).map_err(err)?;
            binding
                .bind_output(b.output.as_str(), output)
                .map_err(err)?;
        }
        for name in graph.scalars.names() {
            binding.bind_output_to_device(name, host).map_err(err)?;
        }
        let outputs = session.run_binding(binding).map_err(err)?;
        let scalar =
            |name: &str| -> Result<f32> { outputs[name].try_extract_scalar::<f32>().map_err(err) };
        let [a, b, c, d] = graph.scalars.names();
        let scalars = StepScalars::from_array([scalar(a)?, scalar(b)?, scalar(c)?, scalar(d)?]);
        drop(outputs);
        sets.advance(scalars.all_finite());
        Ok(scalars)
    }

    fn state(&self) -> Result<Vec<ArrayD<f32>>> {
        self.sets
            .current()
            .iter()
            .map(|t| {
                let host = t.to(AllocationDevice::CPU, 0).map_err(err)?;
                let a = host.try_extract_array::<f32>().map_err(err)?;
                Ok(a.to_owned())
            })
            .collect()
    }

    fn state_buffers(&self) -> Vec<usize> {
        self.sets.addresses(|t| t.data_ptr() as usize)
    }

    fn describe(&self) -> String {
        format!("ort ({}, state bound in place)", self.provider)
    }
}
