//! Hostile and malformed input: a clear message naming what is wrong, exit code 1, no panic.
mod common;
use bean_onnx::pb;
use common::*;
use ndarray::{Array1, Array2};
use ndarray_npy::NpzWriter;
use prost::Message;
use std::path::{Path, PathBuf};

/// Runs `inspect` on `model` and checks it fails cleanly with `needle` in the message.
fn refuses(model: &Path, needle: &str) {
    let out = bean().arg("inspect").arg(model).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}: {stderr}", model.display());
    assert!(
        stderr.contains(needle),
        "{}: expected '{needle}' in: {stderr}",
        model.display()
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn base_model() -> pb::ModelProto {
    pb::ModelProto::decode(&*std::fs::read(fixture("gemm_transb1.onnx")).unwrap()).unwrap()
}

fn write_model(dir: &Path, name: &str, m: &pb::ModelProto) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, m.encode_to_vec()).unwrap();
    p
}

fn mutate(dir: &Path, name: &str, f: impl FnOnce(&mut pb::GraphProto)) -> PathBuf {
    let mut m = base_model();
    f(m.graph.as_mut().unwrap());
    write_model(dir, name, &m)
}

#[test]
fn broken_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.onnx");
    std::fs::write(&empty, b"").unwrap();
    refuses(&empty, "empty");

    let bytes = std::fs::read(fixture("gemm_transb1.onnx")).unwrap();
    let truncated = dir.path().join("truncated.onnx");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    refuses(&truncated, "not a valid ONNX model");

    // Random bytes from a fixed-seed LCG.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for i in 0..20 {
        let random: Vec<u8> = (0..512)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 56) as u8
            })
            .collect();
        let p = dir.path().join(format!("random{i}.onnx"));
        std::fs::write(&p, random).unwrap();
        refuses(&p, "");
    }
    refuses(&dir.path().join("missing.onnx"), "missing.onnx");
}

#[test]
fn inconsistent_tensors_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = mutate(dir.path(), "dims.onnx", |g| g.initializer[0].dims[0] += 1);
    refuses(&p, "needs");
    let p = mutate(dir.path(), "neg.onnx", |g| g.initializer[0].dims[0] = -3);
    refuses(&p, "negative dimension");
    let p = mutate(dir.path(), "huge.onnx", |g| {
        g.initializer[0].dims = vec![1 << 40, 1 << 40]
    });
    refuses(&p, "too large");
    let p = mutate(dir.path(), "missing_init.onnx", |g| {
        g.initializer.remove(0);
    });
    refuses(&p, "missing initializer");
    // Two value fields: ONNX allows one, and which is meant is unknowable.
    let p = mutate(dir.path(), "two_fields.onnx", |g| {
        let t = &mut g.initializer[0];
        assert!(t.raw_data.is_some() || !t.float_data.is_empty());
        let n = t.dims.iter().product::<i64>() as usize;
        match t.raw_data {
            Some(_) => t.float_data = vec![0.5; n],
            None => t.raw_data = Some(vec![0; 4 * n]),
        }
    });
    refuses(
        &p,
        "holds values in more than one field (raw_data, float_data)",
    );
    let p = mutate(dir.path(), "gemm_attr.onnx", |g| {
        let gemm = g
            .node
            .iter_mut()
            .find(|n| n.op_type.as_deref() == Some("Gemm"))
            .unwrap();
        let a = gemm
            .attribute
            .iter_mut()
            .find(|a| a.name.as_deref() == Some("transB"))
            .unwrap();
        a.i = Some(7);
    });
    refuses(&p, "transB: expected 0 or 1, got 7");
}

/// A copy of the external-data fixture in `dir` whose first external tensor gets `edit`.
fn external_variant(
    dir: &Path,
    name: &str,
    edit: impl FnOnce(&mut Vec<pb::StringStringEntryProto>),
) -> PathBuf {
    std::fs::copy(
        fixture("external_data.onnx.data"),
        dir.join("external_data.onnx.data"),
    )
    .unwrap();
    let mut m =
        pb::ModelProto::decode(&*std::fs::read(fixture("external_data.onnx")).unwrap()).unwrap();
    let t = m
        .graph
        .as_mut()
        .unwrap()
        .initializer
        .iter_mut()
        .find(|t| !t.external_data.is_empty())
        .unwrap();
    edit(&mut t.external_data);
    write_model(dir, name, &m)
}

fn set(entries: &mut [pb::StringStringEntryProto], key: &str, value: &str) {
    match entries.iter_mut().find(|e| e.key.as_deref() == Some(key)) {
        Some(e) => e.value = Some(value.into()),
        None => panic!("no {key}"),
    }
}

#[test]
fn external_data_cannot_escape_or_overrun() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    refuses(
        &external_variant(d, "abs.onnx", |e| set(e, "location", "/etc/hostname")),
        "absolute path",
    );
    refuses(
        &external_variant(d, "dotdot.onnx", |e| set(e, "location", "../secret.data")),
        "leaves the model's folder",
    );
    refuses(
        &external_variant(d, "offset.onnx", |e| set(e, "offset", "1000000")),
        "past the end",
    );
    refuses(
        &external_variant(d, "length.onnx", |e| set(e, "length", "4")),
        "does not match",
    );
    refuses(
        &external_variant(d, "nofile.onnx", |e| set(e, "location", "nothere.data")),
        "nothere.data",
    );
    // A link inside the folder that points outside it.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("x.data"), vec![0u8; 4096]).unwrap();
    std::os::unix::fs::symlink(outside.path().join("x.data"), d.join("link.data")).unwrap();
    refuses(
        &external_variant(d, "link.onnx", |e| set(e, "location", "link.data")),
        "links outside",
    );
}

fn write_npz(path: &Path, x: &Array2<f32>, y: &Array1<i64>) {
    let mut npz = NpzWriter::new(std::fs::File::create(path).unwrap());
    npz.add_array("x", x).unwrap();
    npz.add_array("y", y).unwrap();
    npz.finish().unwrap();
}

fn eval_refuses(data: &Path, needle: &str) {
    let model = model_dir("digits-torch").join("model-legacy.onnx");
    let out = bean()
        .arg("eval")
        .arg(&model)
        .arg("--data")
        .arg(data)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(needle), "expected '{needle}' in: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bad_data_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = d.join("text.npz");
    std::fs::write(&text, "x,y\n1,2\n").unwrap();
    eval_refuses(&text, "not a readable .npz");

    let narrow = d.join("narrow.npz");
    write_npz(&narrow, &Array2::zeros((4, 63)), &Array1::zeros(4));
    eval_refuses(&narrow, "rows of x have 63 values");

    let rows = d.join("rows.npz");
    write_npz(&rows, &Array2::zeros((4, 64)), &Array1::zeros(3));
    eval_refuses(&rows, "has 4 rows but 'y' has 3 labels");

    let mut x = Array2::zeros((4, 64));
    x[[2, 5]] = f32::NAN;
    let nan = d.join("nan.npz");
    write_npz(&nan, &x, &Array1::zeros(4));
    eval_refuses(&nan, "NaN or infinity in row 2");

    let labels = d.join("labels.npz");
    write_npz(
        &labels,
        &Array2::zeros((4, 64)),
        &Array1::from_vec(vec![0, 1, 10, 2]),
    );
    eval_refuses(&labels, "label 10 in row 2");

    // A header that claims 25 GB over a few bytes of data: refused before any allocation.
    let huge = d.join("huge.npz");
    {
        use std::io::Write;
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&huge).unwrap());
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        zip.start_file("x.npy", opts).unwrap();
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (100000000, 64), }";
        let mut header = format!("{dict:<117}\n").into_bytes();
        header.truncate(118);
        let mut npy = b"\x93NUMPY\x01\x00".to_vec();
        npy.extend_from_slice(&(header.len() as u16).to_le_bytes());
        npy.extend_from_slice(&header);
        npy.extend_from_slice(&[0u8; 256]);
        zip.write_all(&npy).unwrap();
        zip.finish().unwrap();
    }
    eval_refuses(&huge, "declares shape [100000000, 64]");

    let empty = d.join("empty.npz");
    write_npz(&empty, &Array2::zeros((0, 64)), &Array1::zeros(0));
    eval_refuses(&empty, "has no rows");

    let nokey = d.join("nokey.npz");
    let mut npz = NpzWriter::new(std::fs::File::create(&nokey).unwrap());
    npz.add_array("features", &Array2::<f32>::zeros((2, 64)))
        .unwrap();
    npz.finish().unwrap();
    eval_refuses(&nokey, "no array 'x'");
}

#[test]
fn unknown_option_values_are_usage_errors() {
    let model = model_dir("digits-torch").join("model-legacy.onnx");
    let out = bean()
        .args([
            "eval",
            model.to_str().unwrap(),
            "--data",
            "x.npz",
            "--engine",
            "warp",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = bean()
        .args([
            "eval",
            model.to_str().unwrap(),
            "--data",
            "x.npz",
            "--device",
            "tpu",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
