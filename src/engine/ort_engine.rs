//! ONNX Runtime through `ort` with `load-dynamic`: the library is found at run time, never
//! downloaded — `ORT_DYLIB_PATH`, else the `onnxruntime` package of the Python environment this
//! program was installed into (`pip install bean-onnx`), else the one `python3` imports.
use super::step::{check_state, OutputSlots, StepState};
use super::{Device, EngineOptions, Session, StepBatch, StepGraph, StepRunner, StepScalars, Value};
use crate::error::{Error, Result};
use ndarray::ArrayD;
use ort::ep::ExecutionProvider;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorElementType;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub(super) fn err(e: impl std::fmt::Display) -> Error {
    Error::engine("ort", e.to_string())
}

/// Where the ONNX Runtime shared library is, or a message saying how to get one.
pub fn find_library() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(err(format!(
                "ORT_DYLIB_PATH={} does not name a file",
                p.display()
            )))
        };
    }
    if let Some(lib) = beside_installation() {
        return Ok(lib);
    }
    let python = std::env::var("BEAN_ONNX_PYTHON").unwrap_or_else(|_| "python3".into());
    if let Some(lib) = imported_by(&python) {
        return Ok(lib);
    }
    Err(err(format!(
        "no ONNX Runtime library found: set ORT_DYLIB_PATH to libonnxruntime.so, or \
         `pip install onnxruntime` (CPU) / `onnxruntime-gpu` (CUDA) for `{python}`; \
         or use the tract engine"
    )))
}

/// The library in the `onnxruntime` package of the environment this executable was installed
/// into: `<env>/bin/bean-onnx` beside `<env>/lib/python3.*/site-packages/onnxruntime/`.
fn beside_installation() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let env = exe.parent()?.parent()?;
    let mut libs: Vec<PathBuf> = std::fs::read_dir(env.join("lib"))
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
        .filter_map(|e| library_in(&e.path().join("site-packages/onnxruntime")))
        .collect();
    libs.sort();
    libs.pop()
}

/// The library in the `onnxruntime` package that `python` imports.
fn imported_by(python: &str) -> Option<PathBuf> {
    let script = "import importlib.util as u\n\
                  s = u.find_spec('onnxruntime')\n\
                  print(s.submodule_search_locations[0] if s else '')";
    let out = std::process::Command::new(python)
        .args(["-c", script])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let pkg = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!pkg.is_empty())
        .then(|| library_in(Path::new(&pkg)))
        .flatten()
}

/// The newest `libonnxruntime.so*` (or `.dylib`) in an `onnxruntime` package's `capi/`.
fn library_in(package: &Path) -> Option<PathBuf> {
    let mut libs: Vec<PathBuf> = std::fs::read_dir(package.join("capi"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libonnxruntime.so") || n == "libonnxruntime.dylib")
        })
        .collect();
    libs.sort();
    libs.pop()
}

/// The version of the ONNX Runtime library at `lib`, as the library reports it
/// (`OrtGetApiBase()->GetVersionString()`).
pub fn library_version(lib: &Path) -> Result<String> {
    type GetApiBase = unsafe extern "C" fn() -> *const ort::sys::OrtApiBase;
    // SAFETY: loading runs the library's initialisers, as ort's own loading of the same file does;
    // `OrtGetApiBase` has this signature in onnxruntime_c_api.h, returns a pointer to a static
    // table, and `GetVersionString` a static NUL-terminated string, copied before `library` drops.
    unsafe {
        let library = libloading::Library::new(lib).map_err(err)?;
        let get: libloading::Symbol<GetApiBase> = library.get(b"OrtGetApiBase").map_err(err)?;
        let base = get();
        if base.is_null() {
            return Err(err(format!("{} has no API base", lib.display())));
        }
        let version = ((*base).GetVersionString)();
        if version.is_null() {
            return Err(err(format!("{} reports no version", lib.display())));
        }
        Ok(std::ffi::CStr::from_ptr(version)
            .to_string_lossy()
            .into_owned())
    }
}

/// The process-wide ort environment, initialised once from the found library.
fn environment() -> Result<&'static ort::environment::Environment> {
    static ENV: OnceLock<std::result::Result<ort::environment::Environment, String>> =
        OnceLock::new();
    ENV.get_or_init(|| {
        let lib = find_library().map_err(|e| e.to_string())?;
        let builder = ort::init_from(&lib)
            .map_err(|e| format!("engine ort: cannot load {}: {e}", lib.display()))?;
        builder
            .with_name("bean-onnx")
            .with_telemetry(false)
            .build()
            .map_err(|e| {
                format!(
                    "engine ort: cannot start ONNX Runtime from {}: {e}",
                    lib.display()
                )
            })
    })
    .as_ref()
    .map_err(|e| Error::engine("ort", e.trim_start_matches("engine ort: ").to_string()))
}

/// True when an ONNX Runtime library can be found and loaded.
pub fn available() -> bool {
    environment().is_ok()
}

/// Ok when ONNX Runtime can be used; otherwise why not (no library found, a broken
/// `ORT_DYLIB_PATH`, a library that fails to load).
pub fn check_available() -> Result<()> {
    environment().map(|_| ())
}

pub struct OrtSession {
    session: ort::session::Session,
    provider: &'static str,
}

impl OrtSession {
    pub fn load(model: &[u8], opts: &EngineOptions) -> Result<Self> {
        let (session, provider) = build_session(model, opts)?;
        Ok(OrtSession { session, provider })
    }
}

/// A session on the requested device: CUDA or a clear error, never a silent CPU fallback.
pub(super) fn build_session(
    model: &[u8],
    opts: &EngineOptions,
) -> Result<(ort::session::Session, &'static str)> {
    let env = environment()?;
    let b = ort::session::Session::builder(env).map_err(err)?;
    let b = b
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(|e| err(e.to_string()))?;
    let b = if opts.threads > 0 {
        b.with_intra_threads(opts.threads)
            .map_err(|e| err(e.to_string()))?
    } else {
        b
    };
    let b = match opts.spin_wait {
        Some(spin) => b
            .with_intra_op_spinning(spin)
            .map_err(|e| err(e.to_string()))?,
        None => b,
    };
    let (mut b, provider) = match opts.device {
        Device::Cpu => (b, "CPUExecutionProvider"),
        Device::Cuda(id) => {
            // A user who asked for CUDA gets CUDA or this error, never a silent CPU fallback.
            if !ort::ep::CUDA::is_available().unwrap_or(false) {
                return Err(err(format!(
                        "device cuda:{id} needs the CUDA execution provider, but the ONNX Runtime \
                         library at {} was built without it: install `onnxruntime-gpu` (and CUDA 13, \
                         cuDNN 9) or point ORT_DYLIB_PATH at a CUDA build",
                        find_library().map(|p| p.display().to_string()).unwrap_or_default()
                    )));
            }
            let ep = ort::ep::CUDA::default()
                .with_device_id(id)
                .build()
                .error_on_failure();
            let b = b.with_execution_providers([ep]).map_err(|e| {
                    err(format!(
                        "cannot start the CUDA execution provider on cuda:{id}: {e} (are the CUDA 13 \
                         runtime, cuDNN 9, cuBLAS and cuRAND libraries on LD_LIBRARY_PATH, and is a GPU present?)"
                    ))
                })?;
            (b, "CUDAExecutionProvider")
        }
    };
    let session = b.commit_from_memory(model).map_err(err)?;
    Ok((session, provider))
}

fn input_value(v: &Value) -> Result<ort::session::SessionInputValue<'_>> {
    Ok(match v {
        Value::F32(a) => ort::value::TensorRef::from_array_view(a.view())
            .map_err(err)?
            .into(),
        Value::F64(a) => ort::value::TensorRef::from_array_view(a.view())
            .map_err(err)?
            .into(),
        Value::I64(a) => ort::value::TensorRef::from_array_view(a.view())
            .map_err(err)?
            .into(),
    })
}

impl Session for OrtSession {
    fn run(&mut self, inputs: &[(&str, Value)]) -> Result<Vec<Value>> {
        let mut feed: Vec<(String, ort::session::SessionInputValue<'_>)> =
            Vec::with_capacity(inputs.len());
        for (name, v) in inputs {
            feed.push((name.to_string(), input_value(v)?));
        }
        let outputs = self.session.run(feed).map_err(err)?;
        let mut result = Vec::with_capacity(outputs.len());
        for (name, v) in outputs.iter() {
            let ty = v.dtype().tensor_type();
            result.push(match ty {
                Some(TensorElementType::Float32) => {
                    Value::F32(v.try_extract_array::<f32>().map_err(err)?.to_owned())
                }
                Some(TensorElementType::Float64) => {
                    Value::F64(v.try_extract_array::<f64>().map_err(err)?.to_owned())
                }
                Some(TensorElementType::Int64) => {
                    Value::I64(v.try_extract_array::<i64>().map_err(err)?.to_owned())
                }
                other => {
                    return Err(err(format!(
                        "output '{name}' of type {other:?} is not supported"
                    )))
                }
            });
        }
        Ok(result)
    }

    fn describe(&self) -> String {
        format!("ort ({})", self.provider)
    }
}

pub struct OrtStepRunner {
    session: ort::session::Session,
    provider: &'static str,
    graph: StepGraph,
    slots: OutputSlots,
    state: StepState<ort::value::DynValue>,
}

impl OrtStepRunner {
    pub fn load(graph: &StepGraph, opts: &EngineOptions) -> Result<Self> {
        let bytes = crate::onnx::to_bytes(&graph.model);
        let (session, provider) = build_session(&bytes, opts)?;
        Ok(OrtStepRunner {
            session,
            provider,
            slots: OutputSlots::of(graph)?,
            graph: graph.clone(),
            state: StepState::new(),
        })
    }
}

impl StepRunner for OrtStepRunner {
    fn set_state(&mut self, state: &[ArrayD<f32>]) -> Result<()> {
        check_state(&self.graph.state, state)?;
        let values = state
            .iter()
            .map(|a| {
                ort::value::Tensor::from_array(a.as_standard_layout().into_owned())
                    .map(|t| t.into_dyn())
                    .map_err(err)
            })
            .collect::<Result<_>>()?;
        self.state.set(values);
        Ok(())
    }

    fn step(&mut self, batch: StepBatch) -> Result<StepScalars> {
        let names = &self.graph.inputs;
        let (lr, step) = batch.scalars();
        let per_step = [
            (&names.x, &batch.x),
            (&names.target, &batch.target),
            (&names.lr, &lr),
            (&names.step, &step),
        ];
        let mut feed: Vec<(String, ort::session::SessionInputValue<'_>)> =
            Vec::with_capacity(per_step.len() + self.graph.state.len());
        for (name, a) in per_step {
            let v = ort::value::TensorRef::from_array_view(a.view()).map_err(err)?;
            feed.push((name.clone(), v.into()));
        }
        for (binding, v) in self.graph.state.iter().zip(&self.state.current) {
            feed.push((binding.input.clone(), v.into()));
        }
        let outputs = self.session.run(feed).map_err(err)?;
        let mut values: Vec<Option<ort::value::DynValue>> =
            outputs.into_iter().map(|(_, v)| Some(v)).collect();
        let scalar = |i: usize| -> Result<f32> {
            values[i]
                .as_ref()
                .ok_or_else(|| err("a scalar output is missing"))?
                .try_extract_scalar::<f32>()
                .map_err(err)
        };
        let s = self.slots.scalars;
        let scalars =
            StepScalars::from_array([scalar(s[0])?, scalar(s[1])?, scalar(s[2])?, scalar(s[3])?]);
        let slots = &self.slots.state;
        self.state.advance(&scalars, || {
            slots
                .iter()
                .map(|&i| values[i].take().expect("each state output is read once"))
                .collect()
        });
        Ok(scalars)
    }

    fn state(&self) -> Result<Vec<ArrayD<f32>>> {
        self.state
            .current
            .iter()
            .map(|v| {
                v.try_extract_array::<f32>()
                    .map(|a| a.to_owned())
                    .map_err(err)
            })
            .collect()
    }

    fn describe(&self) -> String {
        format!("ort ({})", self.provider)
    }
}
