//! Data as users have it: the same data as an `.npz` file, a folder of `.npy` files and a CSV
//! file (written with round-trip precision) give the same `eval` and `finetune` results, byte for
//! byte in the written model; and a memory-mapped `.npy` larger than the process's heap limit is
//! evaluated and fine-tuned.
mod common;
use common::*;
use ndarray::{Array1, Array2, ArrayD, Ix2, IxDyn, OwnedRepr};
use ndarray_npy::{NpzReader, WriteNpyExt};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The digits training data as bundled: features `[N, 64]` float32 in [0, 1], labels int64.
fn digits_data(name: &str) -> (Array2<f32>, Vec<i64>) {
    let path = model_dir(name).join("train.npz");
    let mut npz = NpzReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let x: ArrayD<f32> = npz.by_name::<OwnedRepr<f32>, IxDyn>("x").unwrap();
    let y: ArrayD<i64> = npz.by_name::<OwnedRepr<i64>, IxDyn>("y").unwrap();
    (
        x.into_dimensionality::<Ix2>().unwrap(),
        y.iter().copied().collect(),
    )
}

/// The digits features moved by a deterministic offset in [-0.01, 0.01), so that they are
/// arbitrary float32 values (the bundled ones are multiples of 1/16, exact in any format).
fn perturbed(x: &Array2<f32>) -> Array2<f32> {
    let mut i = 0u32;
    x.mapv(|v| {
        i += 1;
        v + ((i as f32 * 0.618_034).fract() * 0.02 - 0.01)
    })
}

/// An `.npz` file holding `x` and `y`.
fn write_npz(dir: &Path, x: &Array2<f32>, y: &[i64]) -> PathBuf {
    let p = dir.join("data.npz");
    let mut npz = ndarray_npy::NpzWriter::new(std::fs::File::create(&p).unwrap());
    npz.add_array("x", x).unwrap();
    npz.add_array("y", &Array1::from(y.to_vec())).unwrap();
    npz.finish().unwrap();
    p
}

/// A folder holding `x.npy` and `y.npy`.
fn write_folder(dir: &Path, x: &Array2<f32>, y: &[i64]) -> PathBuf {
    let folder = dir.join("npy");
    std::fs::create_dir_all(&folder).unwrap();
    x.write_npy(std::fs::File::create(folder.join("x.npy")).unwrap())
        .unwrap();
    Array1::from(y.to_vec())
        .write_npy(std::fs::File::create(folder.join("y.npy")).unwrap())
        .unwrap();
    folder
}

/// A CSV file with the label column first, each value written shortest-round-trip.
fn write_csv(dir: &Path, x: &Array2<f32>, y: &[i64]) -> PathBuf {
    let mut text = String::from("y");
    for j in 0..x.ncols() {
        write!(text, ",pixel{j}").unwrap();
    }
    text.push('\n');
    for (row, label) in x.rows().into_iter().zip(y) {
        write!(text, "{label}").unwrap();
        for v in row {
            write!(text, ",{v}").unwrap();
        }
        text.push('\n');
    }
    let p = dir.join("data.csv");
    std::fs::write(&p, text).unwrap();
    p
}

fn run(args: &[&dyn AsRef<std::ffi::OsStr>]) -> serde_json::Value {
    let out = bean().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// What a fine-tune computed: every epoch's losses and accuracy (not its timings).
fn learning(summary: &serde_json::Value) -> Vec<serde_json::Value> {
    summary["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            serde_json::json!([
                e["task_loss"],
                e["bean"],
                e["train_accuracy"],
                e["val_accuracy"]
            ])
        })
        .collect()
}

#[test]
fn npz_npy_folder_and_csv_give_identical_results() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_dir("digits-sklearn").join("model.onnx");
    let (x, y) = digits_data("digits-sklearn");
    let x = perturbed(&x);
    let short = |v: &f32| format!("{v:.6}").parse::<f32>().unwrap() != *v;
    assert!(
        x.iter().filter(|v| short(v)).count() > x.len() / 2,
        "the values must need full precision"
    );
    let sources = [
        write_npz(dir.path(), &x, &y),
        write_folder(dir.path(), &x, &y),
        write_csv(dir.path(), &x, &y),
    ];
    let mut results = Vec::new();
    for (i, data) in sources.iter().enumerate() {
        let eval = run(&[
            &"eval",
            &model,
            &"--data",
            data,
            &"--engine",
            &"tract",
            &"--json",
        ]);
        let out = dir.path().join(format!("out{i}.onnx"));
        let tune = run(&[
            &"finetune",
            &model,
            &"--data",
            data,
            &"--val",
            data,
            &"-o",
            &out,
            &"--epochs",
            &"1",
            &"--seed",
            &"7",
            &"--engine",
            &"tract",
            &"--json",
        ]);
        results.push((eval, learning(&tune), std::fs::read(&out).unwrap()));
    }
    let (eval, history, bytes) = &results[0];
    assert_eq!(eval["samples"], x.nrows());
    assert!(eval["accuracy"].as_f64().unwrap() > 0.9, "{eval}");
    assert_eq!(history.len(), 1);
    for (i, (e, h, b)) in results.iter().enumerate().skip(1) {
        assert_eq!(e, eval, "eval on {}", sources[i].display());
        assert_eq!(h, history, "finetune on {}", sources[i].display());
        assert!(
            b == bytes,
            "the model tuned on {} differs",
            sources[i].display()
        );
    }
}

/// `x.npy` of 300 MiB (float64, the legacy digits model's 64 features a row) and its labels.
fn large_folder(dir: &Path) -> PathBuf {
    use std::io::Write;
    let (x, y) = digits_data("digits-torch");
    let rows = (300usize << 20) / (64 * 8);
    let folder = dir.join("large");
    std::fs::create_dir_all(&folder).unwrap();
    let header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({rows}, 64), }}");
    let mut f = std::io::BufWriter::new(std::fs::File::create(folder.join("x.npy")).unwrap());
    f.write_all(&npy_prefix(&header)).unwrap();
    for r in 0..rows {
        for v in x.row(r % x.nrows()) {
            f.write_all(&f64::from(*v).to_le_bytes()).unwrap();
        }
    }
    f.flush().unwrap();
    let labels: Vec<i64> = (0..rows).map(|r| y[r % y.len()]).collect();
    Array1::from(labels)
        .write_npy(std::fs::File::create(folder.join("y.npy")).unwrap())
        .unwrap();
    folder
}

/// An `.npy` version 1.0 prefix and header, padded to 64 bytes.
fn npy_prefix(dict: &str) -> Vec<u8> {
    let mut header = dict.to_string();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out
}

/// The folder's two arrays stored (not compressed) in an `.npz` file, which is read whole.
fn npz_of(folder: &Path) -> PathBuf {
    let p = folder.with_extension("npz");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&p).unwrap());
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    for name in ["x.npy", "y.npy"] {
        zip.start_file(name, options).unwrap();
        std::io::copy(
            &mut std::fs::File::open(folder.join(name)).unwrap(),
            &mut zip,
        )
        .unwrap();
    }
    zip.finish().unwrap();
    p
}

/// Runs bean-onnx under `ulimit -d` (heap and other private memory, not file maps) of `kib`.
fn under_heap_limit(kib: u64, args: &[&dyn AsRef<std::ffi::OsStr>]) -> std::process::Output {
    let bin = assert_cmd::cargo::cargo_bin("bean-onnx");
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -d {kib} && exec \"$0\" \"$@\""))
        .arg(bin)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_mapped_npy_larger_than_the_heap_limit_is_evaluated_and_fine_tuned() {
    let dir = tempfile::tempdir().unwrap();
    let data = large_folder(dir.path());
    let size = std::fs::metadata(data.join("x.npy")).unwrap().len();
    let limit_kib = 256 * 1024;
    assert!(
        size > limit_kib * 1024,
        "x.npy must be larger than the limit"
    );
    let model = model_dir("digits-torch").join("model-legacy.onnx");
    let out = under_heap_limit(
        limit_kib,
        &[
            &"eval",
            &model,
            &"--data",
            &data,
            &"--engine",
            &"tract",
            &"--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let eval: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(eval["samples"], size / (64 * 8));
    assert!(eval["accuracy"].as_f64().unwrap() > 0.9, "{eval}");
    let tuned = dir.path().join("tuned.onnx");
    let out = under_heap_limit(
        limit_kib,
        &[
            &"finetune",
            &model,
            &"--data",
            &data,
            &"-o",
            &tuned,
            &"--epochs",
            &"1",
            &"--batch-size",
            &"1024",
            &"--engine",
            &"tract",
            &"--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        s["history"][0]["train_accuracy"].as_f64().unwrap() > 0.9,
        "{s}"
    );
    // A model with a prelude in front of its dense chain (scikit-learn's Cast): its output does
    // not fit under the limit, so the prelude runs on each batch; without the limit it is
    // computed once and held. Both give the same model, byte for byte.
    let sk = model_dir("digits-sklearn").join("model.onnx");
    let sk_args = |out: &Path| -> Vec<std::ffi::OsString> {
        let args: [&dyn AsRef<std::ffi::OsStr>; 12] = [
            &"finetune",
            &sk,
            &"--data",
            &data,
            &"-o",
            &out,
            &"--epochs",
            &"1",
            &"--batch-size",
            &"1024",
            &"--engine",
            &"tract",
        ];
        args.iter().map(|a| a.as_ref().to_os_string()).collect()
    };
    let streamed = dir.path().join("streamed.onnx");
    let args = sk_args(&streamed);
    let refs: Vec<&dyn AsRef<std::ffi::OsStr>> = args.iter().map(|a| a as _).collect();
    let out = under_heap_limit(limit_kib, &refs);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let held = dir.path().join("held.onnx");
    let out = bean().args(sk_args(&held)).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read(&streamed).unwrap() == std::fs::read(&held).unwrap());
    // The same data loaded whole does not fit under the limit: the limit is real.
    let out = under_heap_limit(
        limit_kib,
        &[
            &"eval",
            &model,
            &"--data",
            &npz_of(&data),
            &"--engine",
            &"tract",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs") && err.contains("available"), "{err}");
}
