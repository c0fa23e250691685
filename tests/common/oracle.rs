//! The independent validity oracle: the real `onnx` package (checker with full_check, strict
//! shape inference with data propagation) and onnxruntime, run by `tests/oracle/check_models.py`
//! with the suite's Python (`BEAN_ONNX_ORACLE_PYTHON`, else the repository's `.venv`).
use super::repo;
use ndarray::ArrayD;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The Python that has `onnx` and `onnxruntime`; its absence is a failure, not a skip.
pub fn python() -> PathBuf {
    let p = std::env::var_os("BEAN_ONNX_ORACLE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/python"));
    let ok = std::process::Command::new(&p)
        .args(["-c", "import onnx, onnxruntime"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{} cannot import onnx and onnxruntime: run the suite with scripts/test.sh",
        p.display()
    );
    p
}

/// What the oracle says about one model.
#[derive(Debug)]
pub struct Verdict {
    pub model: PathBuf,
    /// None when valid, else the checker's or onnxruntime's message.
    pub error: Option<String>,
    /// onnxruntime's value of every float tensor output on the given inputs.
    pub outputs: BTreeMap<String, ArrayD<f32>>,
}

/// Checks every model; `x` (an .npz with array `x`) is run by onnxruntime when given.
pub fn check(models: &[(PathBuf, Option<PathBuf>)]) -> Vec<Verdict> {
    let dir = tempfile::tempdir().unwrap();
    let entries: Vec<serde_json::Value> = models
        .iter()
        .enumerate()
        .map(|(i, (m, x))| {
            serde_json::json!({
                "model": m,
                "x": x,
                "out": x.as_ref().map(|_| dir.path().join(format!("out{i}.npz"))),
            })
        })
        .collect();
    let manifest = dir.path().join("manifest.json");
    std::fs::write(&manifest, serde_json::to_vec(&entries).unwrap()).unwrap();
    let out = std::process::Command::new(python())
        .arg(repo().join("tests/oracle/check_models.py"))
        .arg(&manifest)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), models.len(), "one verdict per model");
    lines
        .into_iter()
        .zip(&entries)
        .map(|(v, e)| {
            let error = v["error"].as_str().map(str::to_string);
            let outputs = match (&error, e["out"].as_str()) {
                (None, Some(p)) => read_all_f32(Path::new(p)),
                _ => BTreeMap::new(),
            };
            Verdict {
                model: PathBuf::from(e["model"].as_str().unwrap()),
                error,
                outputs,
            }
        })
        .collect()
}

fn read_all_f32(path: &Path) -> BTreeMap<String, ArrayD<f32>> {
    let mut npz = ndarray_npy::NpzReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let names = npz.names().unwrap();
    names
        .into_iter()
        .map(|n| {
            let a: ArrayD<f32> = match npz.by_name::<ndarray::OwnedRepr<f32>, ndarray::IxDyn>(&n) {
                Ok(a) => a,
                Err(_) => npz
                    .by_name::<ndarray::OwnedRepr<f64>, ndarray::IxDyn>(&n)
                    .unwrap()
                    .mapv(|v| v as f32),
            };
            (n.trim_end_matches(".npy").to_string(), a)
        })
        .collect()
}
