//! Shared test helpers. References used here are independent of the code under test: outputs
//! computed by onnxruntime in Python (fixtures' `.io.npz`), accuracies recorded by the scripts
//! that made the models, and tract loading the original files directly by path.
#![allow(dead_code)]
pub mod crafted;
pub mod oracle;

use ndarray::{ArrayD, IxDyn, OwnedRepr};
use ndarray_npy::NpzReader;
use std::path::{Path, PathBuf};

/// The bean-onnx binary under test.
pub fn bean() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("bean-onnx").unwrap()
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures").join(name)
}

pub fn model_dir(name: &str) -> PathBuf {
    repo().join("models").join(name)
}

pub fn npz_f32(path: &Path, key: &str) -> ArrayD<f32> {
    let mut npz = NpzReader::new(std::fs::File::open(path).unwrap()).unwrap();
    npz.by_name::<OwnedRepr<f32>, IxDyn>(key).unwrap()
}

pub fn npz_f64(path: &Path, key: &str) -> ArrayD<f64> {
    let mut npz = NpzReader::new(std::fs::File::open(path).unwrap()).unwrap();
    npz.by_name::<OwnedRepr<f64>, IxDyn>(key).unwrap()
}

pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Runs an ONNX file with tract, loaded by tract's own reader (not ours), on one f32 input. The
/// file must declare its input shape (with a symbolic batch).
pub fn tract_run_file(path: &Path, x: &ArrayD<f32>) -> ArrayD<f32> {
    use tract_onnx::prelude::*;
    let model = tract_onnx::onnx()
        .model_for_path(path)
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let out = model.run(tvec!(Tensor::from(x.clone()).into())).unwrap();
    out[0].to_plain_array_view::<f32>().unwrap().to_owned()
}

pub fn max_abs_diff(a: &ArrayD<f32>, b: &ArrayD<f32>) -> f32 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Asserts the ONNX Runtime library is configured: the suite's script always provides it, so a
/// missing library is a failure, not a skip.
pub fn require_ort() {
    if let Err(e) = bean_onnx::engine::ort_engine::find_library() {
        panic!("{e}\nRun the suite with scripts/test.sh, which installs ONNX Runtime.");
    }
}
