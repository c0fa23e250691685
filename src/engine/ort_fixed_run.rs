//! A graph run in ONNX Runtime with every input and output in host buffers allocated once and
//! bound once (I/O binding): each run is the engine's compute and nothing else — no tensor
//! created, copied in or copied out. What the step benchmark times as its roofline (the step's
//! matrix products alone on the same engine and threads).
use super::ort_engine::{build_session, err};
use super::EngineOptions;
use crate::error::Result;
use ndarray::ArrayD;
use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
use ort::value::Tensor;

/// The session and its binding, which holds the bound buffers (ort keeps every bound input and
/// output alive with the binding).
pub struct OrtFixedRun {
    session: ort::session::Session,
    binding: ort::session::IoBinding,
}

impl OrtFixedRun {
    /// Binds `inputs` (copied once) and an output buffer of each given shape (the graph's output
    /// shapes must match them) to `model`'s session on the host.
    pub fn load(
        model: &[u8],
        inputs: &[(&str, ArrayD<f32>)],
        outputs: &[(&str, Vec<usize>)],
        opts: &EngineOptions,
    ) -> Result<Self> {
        let (session, _) = build_session(model, opts)?;
        let memory = MemoryInfo::new(
            AllocationDevice::CPU,
            0,
            AllocatorType::Device,
            MemoryType::Default,
        )
        .map_err(err)?;
        let allocator = Allocator::new(&session, memory).map_err(err)?;
        let mut binding = session.create_binding().map_err(err)?;
        for (name, a) in inputs {
            let t = Tensor::from_array(a.as_standard_layout().into_owned()).map_err(err)?;
            binding.bind_input(*name, &t).map_err(err)?;
        }
        for (name, shape) in outputs {
            let mut t = Tensor::<f32>::new(&allocator, shape.clone()).map_err(err)?;
            binding.bind_output(*name, &mut t).map_err(err)?;
        }
        Ok(OrtFixedRun { session, binding })
    }

    pub fn run(&mut self) -> Result<()> {
        self.session.run_binding(&self.binding).map_err(err)?;
        Ok(())
    }
}
