//! Pruning, validation and compress end to end. References: the unpruned model run by tract and
//! ONNX Runtime, onnxruntime's recorded accuracies, and data labelled by the original model.
mod common;
use assert_cmd::Command;
use bean_onnx::data::{DataKeys, Dataset};
use bean_onnx::engine::{self, EngineKind, EngineOptions, Value};
use bean_onnx::mlp::MlpView;
use bean_onnx::prune::{self, PruneConfig};
use bean_onnx::{eval, inspect, onnx};
use common::*;
use ndarray::{Array1, Array2, ArrayD};
use ndarray_npy::NpzWriter;
use std::path::{Path, PathBuf};

/// `bean-onnx compress DIR/MODEL --data DIR/train.npz --test DIR/test.npz -o OUT`, for the
/// caller to add options to.
fn compress_in(dir: &Path, model: &str, out: &Path) -> Command {
    let mut cmd = bean();
    cmd.arg("compress")
        .arg(dir.join(model))
        .arg("--data")
        .arg(dir.join("train.npz"))
        .arg("--test")
        .arg(dir.join("test.npz"))
        .arg("-o")
        .arg(out);
    cmd
}

fn run_ok(cmd: &mut Command) -> serde_json::Value {
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn outputs(model: &bean_onnx::ir::Model, x: &ArrayD<f32>, kind: EngineKind) -> ArrayD<f32> {
    let input = model.graph.runtime_inputs().next().unwrap().name.clone();
    let mut s = engine::load(kind, &onnx::to_bytes(model), &EngineOptions::default()).unwrap();
    s.run(&[(&input, Value::F32(x.clone()))])
        .unwrap()
        .remove(0)
        .into_f32()
        .unwrap()
}

/// A fixture with hidden neuron 1 made constant 0, neuron 2 constant 0.7 and neuron 4 an exact
/// multiple (×3) of neuron 0.
fn planted(name: &str) -> bean_onnx::ir::Model {
    let mut m = onnx::load(&fixture(&format!("{name}.onnx"))).unwrap();
    let view = MlpView::find(&m.graph).unwrap();
    let l0 = &view.layers[0];
    let mut w = l0.weight_matrix(&m.graph);
    let mut b = l0.bias_vector(&m.graph);
    w.column_mut(1).fill(0.0);
    b[1] = -1.0; // ReLU(−1) = 0 on every input
                 // Constant 0.7: folds into a next bias exactly; without one it must not count as free.
    w.column_mut(2).fill(0.0);
    b[2] = 0.7;
    let c0 = w.column(0).to_owned();
    w.column_mut(4).assign(&(&c0 * 3.0));
    b[4] = b[0] * 3.0;
    l0.write_back(&mut m.graph, &w, Some(&b)).unwrap();
    m
}

fn calibration(x: &ArrayD<f32>, dir: &Path) -> Dataset {
    let p = dir.join("calib.npz");
    let mut npz = NpzWriter::new(std::fs::File::create(&p).unwrap());
    npz.add_array("x", x).unwrap();
    npz.finish().unwrap();
    Dataset::load(&p, &DataKeys::default(), false).unwrap()
}

#[test]
fn constant_and_duplicate_neurons_are_removed_exactly() {
    let dir = tempfile::tempdir().unwrap();
    // Gemm transB=1, Gemm with alpha/beta, MatMul + Add, and a next layer without bias.
    for (name, removable) in [
        ("gemm_transb1", 3),
        ("gemm_alpha_beta", 3),
        ("matmul_add_left", 3),
        // No next bias: the constant 0.7 neuron cannot be folded and must stay.
        ("gemm_nobias", 2),
    ] {
        let model = planted(name);
        // Many rows so that only the planted neurons are constant or duplicated.
        let mut seed = 5u64;
        let n_in = MlpView::find(&model.graph).unwrap().layers[0].n_in;
        let x = Array2::from_shape_fn((400, n_in), |_| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
        })
        .into_dyn();
        let calib = calibration(&x, dir.path());
        let n = MlpView::find(&model.graph).unwrap().layers[0].n_out;
        let cfg = PruneConfig {
            ratio: removable as f64 / n as f64,
            ..Default::default()
        };
        let (pruned, report) = prune::prune(&model, &calib, &cfg).unwrap();
        let c = &report.layers[0].counts;
        assert_eq!(c.n_after, n - removable, "{name}");
        assert_eq!(c.constant_removed + c.merged, removable, "{name}: {c:?}");
        for kind in [EngineKind::Tract, EngineKind::Ort] {
            if kind == EngineKind::Ort {
                require_ort();
            }
            let before = outputs(&model, &x, kind);
            let after = outputs(&pruned, &x, kind);
            let d = max_abs_diff(&before, &after);
            assert!(d <= 1e-5, "{name} on {kind:?}: max |Δ| {d}");
        }
    }
}

#[test]
fn pruning_nothing_gives_the_input_model() {
    let dir = tempfile::tempdir().unwrap();
    for (dir_name, file) in [
        ("digits-torch", "model-legacy.onnx"),
        ("digits-sklearn", "model.onnx"),
    ] {
        let src = model_dir(dir_name).join(file);
        let out = dir.path().join("same.onnx");
        run_ok(
            bean()
                .arg("prune")
                .arg(&src)
                .arg("-o")
                .arg(&out)
                .arg("--data")
                .arg(model_dir(dir_name).join("train.npz"))
                .args(["--ratio", "0", "--json"]),
        );
        assert!(
            std::fs::read(&src).unwrap() == std::fs::read(&out).unwrap(),
            "{file} changed"
        );
    }
}

/// Labels = the original model's own predictions (so the reference is the original model).
fn self_labelled(model: &Path, x: &ArrayD<f32>, dir: &Path) -> PathBuf {
    let m = onnx::load(model).unwrap();
    let target = eval::find_target(&m).unwrap();
    let p = dir.join("labelled.npz");
    let mut npz = NpzWriter::new(std::fs::File::create(&p).unwrap());
    npz.add_array("x", x).unwrap();
    npz.finish().unwrap();
    let data = Dataset::load(&p, &DataKeys::default(), false).unwrap();
    let opts = EngineOptions::default();
    let (predicted, _) = eval::predict(&m, &target, &data, EngineKind::Tract, &opts).unwrap();
    let y = Array1::from(predicted.labels);
    let mut npz = NpzWriter::new(std::fs::File::create(&p).unwrap());
    npz.add_array("x", x).unwrap();
    npz.add_array("y", &y).unwrap();
    npz.finish().unwrap();
    p
}

#[test]
fn every_model_and_pattern_comes_out_smaller_and_runs_in_both_engines() {
    require_ort();
    let dir = tempfile::tempdir().unwrap();
    let mut cases: Vec<(PathBuf, PathBuf, PathBuf)> = vec![
        (
            model_dir("digits-sklearn").join("model.onnx"),
            model_dir("digits-sklearn").join("train.npz"),
            model_dir("digits-sklearn").join("test.npz"),
        ),
        (
            model_dir("digits-torch").join("model-legacy.onnx"),
            model_dir("digits-torch").join("train.npz"),
            model_dir("digits-torch").join("test.npz"),
        ),
        (
            model_dir("digits-torch").join("model-dynamo.onnx"),
            model_dir("digits-torch").join("train.npz"),
            model_dir("digits-torch").join("test.npz"),
        ),
        (
            model_dir("fashion-lenet").join("model.onnx"),
            model_dir("fashion-lenet").join("test.npz"),
            model_dir("fashion-lenet").join("test.npz"),
        ),
    ];
    for name in [
        "gemm_transb1",
        "gemm_alpha_beta",
        "gemm_bias_scalar",
        "matmul_add_right",
        "matmul_nobias",
        "keras_like",
        "act_gelu",
        "act_leakyrelu",
        "prelude_flatten",
        "cnn_head",
        "external_data",
    ] {
        let io = fixture(&format!("{name}.io.npz"));
        let x = npz_f32(&io, "x");
        let sub = dir.path().join(name);
        std::fs::create_dir_all(&sub).unwrap();
        let labelled = self_labelled(&fixture(&format!("{name}.onnx")), &x, &sub);
        cases.push((fixture(&format!("{name}.onnx")), labelled.clone(), labelled));
    }
    for (i, (model, calib, test)) in cases.iter().enumerate() {
        let out = dir.path().join(format!("pruned{i}.onnx"));
        let r = run_ok(
            bean()
                .arg("prune")
                .arg(model)
                .arg("-o")
                .arg(&out)
                .arg("--data")
                .arg(calib)
                .args(["--ratio", "0.5", "--json"]),
        );
        let what = model.display().to_string();
        assert!(
            r["params_after"].as_u64() < r["params_before"].as_u64(),
            "{what}: {r}"
        );
        assert!(
            r["hidden_after"].as_u64() < r["hidden_before"].as_u64(),
            "{what}"
        );
        let pruned = onnx::load(&out).unwrap();
        let data = Dataset::load(test, &DataKeys::default(), true).unwrap();
        let mut accs = Vec::new();
        for kind in [EngineKind::Tract, EngineKind::Ort] {
            accs.push(
                eval::evaluate(&pruned, &data, kind, &EngineOptions::default())
                    .unwrap_or_else(|e| panic!("{what} on {kind:?}: {e}"))
                    .accuracy,
            );
        }
        assert_eq!(accs[0], accs[1], "{what}: engines disagree");
        let v = run_ok(
            bean()
                .arg("validate")
                .arg(model)
                .arg(&out)
                .arg("--data")
                .arg(test)
                .arg("--json"),
        );
        assert!(
            v["candidate"]["file_bytes"].as_u64() < v["original"]["file_bytes"].as_u64(),
            "{what}: not smaller on disk"
        );
        assert!(v["candidate"]["macs"].as_u64() < v["original"]["macs"].as_u64());
        // The candidate also runs in ONNX Runtime with tract's scores.
        assert!(
            v["ort_max_abs_diff"].as_f64().unwrap() < 1e-3,
            "{what}: {}",
            v["ort_max_abs_diff"]
        );
    }
}

#[test]
fn constant_input_features_are_dropped_behind_a_gather_exactly() {
    require_ort();
    let dir = tempfile::tempdir().unwrap();
    let model = model_dir("digits-sklearn").join("model.onnx");
    let out = dir.path().join("inputs.onnx");
    let r = run_ok(
        bean()
            .arg("prune")
            .arg(&model)
            .arg("-o")
            .arg(&out)
            .arg("--data")
            .arg(model_dir("digits-sklearn").join("train.npz"))
            .args(["--ratio", "0", "--inputs", "--json"]),
    );
    let after = r["inputs"]["after"].as_u64().unwrap();
    assert!(after < 64, "{r}");
    let pruned = onnx::load(&out).unwrap();
    assert!(pruned.graph.nodes.iter().any(|n| n.op_type == "Gather"));
    assert_eq!(
        MlpView::find(&pruned.graph).unwrap().layers[0].n_in as u64,
        after
    );
    // Constant on the training data; the test rows may differ there, so compare on training rows.
    let v = run_ok(
        bean()
            .arg("validate")
            .arg(&model)
            .arg(&out)
            .arg("--data")
            .arg(model_dir("digits-sklearn").join("train.npz"))
            .arg("--json"),
    );
    assert_eq!(v["agreement"], 1.0);
    assert!(v["max_abs_diff"].as_f64().unwrap() < 1e-5, "{v}");
}

/// The test split in two: even rows for the search, odd rows for the gate, so the accuracy checked
/// was not used to choose the cut.
fn split_halves(test: &Path, dir: &Path) -> (PathBuf, PathBuf) {
    let data = Dataset::load(test, &DataKeys::default(), true).unwrap();
    let write = |rows: Vec<usize>, name: &str| {
        let part = data.select(&rows);
        let p = dir.join(name);
        let mut npz = NpzWriter::new(std::fs::File::create(&p).unwrap());
        npz.add_array("x", &part.x.slice_f32(0, part.rows()))
            .unwrap();
        npz.add_array("y", &Array1::from(part.y.clone().unwrap()))
            .unwrap();
        npz.finish().unwrap();
        p
    };
    let n = data.rows();
    (
        write((0..n).step_by(2).collect(), "val.npz"),
        write((1..n).step_by(2).collect(), "gate.npz"),
    )
}

#[test]
fn compress_fashion_lenet_removes_most_neurons_within_a_point() {
    require_ort();
    let data = std::env::var("BEAN_ONNX_FASHION_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join("target/data/fashion"));
    let dir = tempfile::tempdir().unwrap();
    let model = model_dir("fashion-lenet").join("model.onnx");
    let (val, gate) = split_halves(&model_dir("fashion-lenet").join("test.npz"), dir.path());
    let out = dir.path().join("small.onnx");
    let report = dir.path().join("report.json");
    let r = run_ok(
        bean()
            .arg("compress")
            .arg(&model)
            .arg("--data")
            .arg(data.join("train.npz"))
            .arg("--val")
            .arg(&val)
            .arg("--test")
            .arg(&gate)
            .arg("-o")
            .arg(&out)
            .arg("--report")
            .arg(&report)
            .args(["--max-accuracy-drop", "1", "--json"]),
    );
    let p = &r["report"]["prune"];
    let removed = 1.0 - p["hidden_after"].as_f64().unwrap() / p["hidden_before"].as_f64().unwrap();
    assert!(removed >= 0.6, "only {:.0}% removed", removed * 100.0);
    // Independent check on the held-out half: both models in ONNX Runtime.
    let gate_data = Dataset::load(&gate, &DataKeys::default(), true).unwrap();
    let acc = |m: &bean_onnx::ir::Model| {
        eval::evaluate(m, &gate_data, EngineKind::Ort, &EngineOptions::default())
            .unwrap()
            .accuracy
    };
    let (before, after) = (
        acc(&onnx::load(&model).unwrap()),
        acc(&onnx::load(&out).unwrap()),
    );
    assert!(
        before - after <= 0.01,
        "held-out accuracy {after} vs {before}"
    );
    // The search held the written cut to its paired margin on the validation half: recomputed
    // from the two models' per-row verdicts (b: only the original right, c: only the cut right).
    let val_data = Dataset::load(&val, &DataKeys::default(), true).unwrap();
    let verdicts = |m: &Path| {
        let m = onnx::load(m).unwrap();
        eval::verdicts(&m, &val_data, EngineKind::Ort, &EngineOptions::default())
            .unwrap()
            .0
    };
    let (o, c) = (verdicts(&model), verdicts(&out));
    let n = o.len() as f64;
    let only = |x: &[bool], y: &[bool]| x.iter().zip(y).filter(|(a, b)| **a && !**b).count() as f64;
    let (b, cc) = (only(&o, &c), only(&c, &o));
    let sd = ((b + cc - (cc - b).powi(2) / n) / (n - 1.0)).sqrt();
    let gate_rows = gate_data.rows() as f64;
    let margin = 100.0 * 1.645 * sd * (1.0 / n + 1.0 / gate_rows).sqrt();
    let s = &r["report"]["search"];
    let chosen = s["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["ratio"] == s["chosen_ratio"])
        .unwrap();
    let reported = chosen["margin"].as_f64().unwrap();
    assert!(
        (reported - margin).abs() < 1e-9,
        "margin {reported} vs {margin}"
    );
    let right = |v: &[bool]| v.iter().filter(|&&r| r).count() as f64;
    assert_eq!(s["baseline_accuracy"].as_f64(), Some(right(&o) / n));
    let drop = 100.0 * (right(&o) - right(&c)) / n;
    // The final choice also allowed for its own optimism ω (selection.rs), and every search's
    // reported choice is the largest cut within the budget under that rule.
    let omega = s["optimism"].as_f64().expect("ω with a paired margin");
    assert!(omega >= 0.0, "ω {omega}");
    assert!(
        drop + margin + omega <= 1.0 + 1e-9,
        "drop {drop} + margin {margin} + ω {omega} > 1"
    );
    let baseline = right(&o) / n;
    for run in r["report"]["searches"].as_array().unwrap() {
        let within = |k: &serde_json::Value| {
            100.0 * (baseline - k["accuracy"].as_f64().unwrap())
                + k["margin"].as_f64().unwrap()
                + omega
                <= 1.0 + 1e-9
        };
        let candidates = run["candidates"].as_array().unwrap();
        let largest = candidates
            .iter()
            .filter(|k| within(k))
            .map(|k| k["ratio"].as_f64().unwrap())
            .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))));
        assert_eq!(run["chosen_ratio"].as_f64(), largest, "{run}");
    }
    assert!(
        inspect::report(&onnx::load(&out).unwrap())
            .unwrap()
            .params_total
            < 266_610 / 2
    );
    assert!(report.exists());
}

fn fails(cmd: &mut Command, code: i32, needle: &str, out: &Path) {
    let o = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "{err}");
    assert!(err.contains(needle), "expected '{needle}' in {err}");
    assert!(!out.exists(), "{} was written", out.display());
}

#[test]
fn bad_requests_are_refused_without_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never.onnx");
    let model = model_dir("digits-torch").join("model-legacy.onnx");
    let train = model_dir("digits-torch").join("train.npz");
    let test = model_dir("digits-torch").join("test.npz");
    let prune = |extra: &[&str]| {
        let mut c = bean();
        c.arg("prune")
            .arg(&model)
            .arg("-o")
            .arg(&out)
            .arg("--data")
            .arg(&train)
            .args(extra);
        c
    };
    fails(
        &mut prune(&["--ratio", "1"]),
        2,
        "'--ratio <RATIO>': expected a number in [0, 1), got 1",
        &out,
    );
    fails(
        &mut prune(&["--ratio=-0.2"]),
        2,
        "'--ratio <RATIO>': expected a number in [0, 1), got -0.2",
        &out,
    );
    fails(&mut prune(&[]), 2, "--ratio", &out);
    fails(&mut prune(&["--max-accuracy-drop", "1"]), 2, "--val", &out);

    // Nothing can meet a zero budget on data labelled by the model itself when every cut is
    // large (widths in multiples of 64) and uncompensated.
    let x = npz_f32(&test, "x");
    let labelled = self_labelled(&model, &x, dir.path());
    let mut c = prune(&[
        "--max-accuracy-drop",
        "0",
        "--method",
        "magnitude",
        "--round-to",
        "64",
        "--val",
    ]);
    c.arg(&labelled);
    fails(&mut c, 1, "no cut keeps accuracy within 0 points", &out);

    // A candidate with another interface.
    let other = model_dir("digits-sklearn").join("model.onnx");
    fails(
        bean()
            .arg("validate")
            .arg(&model)
            .arg(&other)
            .arg("--data")
            .arg(&test),
        1,
        "interface differs",
        &out,
    );

    // A model without a dense chain.
    let mut m = onnx::load(&fixture("head_logits.onnx")).unwrap();
    let input = m.graph.inputs[0].name.clone();
    let output = m.graph.outputs[0].name.clone();
    m.graph.nodes = vec![bean_onnx::ir::Node::new("Relu", vec![input], vec![output])];
    m.graph.initializers.clear();
    let plain = dir.path().join("plain.onnx");
    std::fs::write(&plain, onnx::to_bytes(&m)).unwrap();
    let calib = dir.path().join("c.npz");
    let mut npz = NpzWriter::new(std::fs::File::create(&calib).unwrap());
    npz.add_array("x", &Array2::<f32>::zeros((3, 8))).unwrap();
    npz.finish().unwrap();
    fails(
        bean()
            .arg("prune")
            .arg(&plain)
            .arg("-o")
            .arg(&out)
            .arg("--data")
            .arg(&calib)
            .args(["--ratio", "0.5"]),
        1,
        "no dense",
        &out,
    );
}

#[test]
fn a_failed_gate_exits_3_with_the_reason_and_writes_no_model() {
    require_ort();
    let dir = tempfile::tempdir().unwrap();
    let model = model_dir("digits-torch").join("model-legacy.onnx");
    let test = model_dir("digits-torch").join("test.npz");
    // Gate on the model's own predictions, after a search allowed to lose 5 points on VAL: the
    // cut it picks changes more predictions than the gate's half point allows.
    let strict = self_labelled(&model, &npz_f32(&test, "x"), dir.path());
    let out = dir.path().join("gated.onnx");
    let report = dir.path().join("report.json");
    let o = bean()
        .arg("compress")
        .arg(&model)
        .arg("--data")
        .arg(model_dir("digits-torch").join("train.npz"))
        .arg("--val")
        .arg(&test)
        .arg("--test")
        .arg(&strict)
        .arg("-o")
        .arg(&out)
        .arg("--report")
        .arg(&report)
        .args([
            "--max-accuracy-drop",
            "0.5",
            "--search-budget",
            "5",
            "--epochs",
            "1",
            "--heal-epochs",
            "1",
        ])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!out.exists());
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["report"]["passed"], false);
    assert!(r["report"]["reason"].as_str().unwrap().contains("dropped"));
    // validate alone gives the same verdict with exit 3.
    let tuned = dir.path().join("other.onnx");
    run_ok(
        bean()
            .arg("prune")
            .arg(&model)
            .arg("-o")
            .arg(&tuned)
            .arg("--data")
            .arg(model_dir("digits-torch").join("train.npz"))
            .args(["--ratio", "0.9", "--method", "magnitude", "--json"]),
    );
    let o = bean()
        .arg("validate")
        .arg(&model)
        .arg(&tuned)
        .arg("--data")
        .arg(&strict)
        .args(["--max-accuracy-drop", "0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
}

#[test]
fn compress_digits_with_a_zero_budget_removes_a_third_of_the_parameters() {
    require_ort();
    let dir = tempfile::tempdir().unwrap();
    let d = model_dir("digits-sklearn");
    let out = dir.path().join("digits.onnx");
    let r =
        run_ok(compress_in(&d, "model.onnx", &out).args(["--max-accuracy-drop", "0", "--json"]));
    let m = onnx::load(&out).unwrap();
    let params = inspect::report(&m).unwrap().params_total as f64;
    assert!(
        params <= 0.7 * 9813.0,
        "{params} params left: {}",
        r["report"]["allocation"]
    );
    let acc = eval::evaluate(
        &m,
        &Dataset::load(&d.join("test.npz"), &DataKeys::default(), true).unwrap(),
        EngineKind::Ort,
        &EngineOptions::default(),
    )
    .unwrap()
    .accuracy;
    let reference = json(&d.join("model.json"))["ort_accuracy"]
        .as_f64()
        .unwrap();
    assert!(acc >= reference, "{acc} < {reference}");
}

#[test]
fn the_compress_report_describes_the_files_written() {
    // A model with external data: the report's candidate bytes are those of OUT and OUT.data.
    let dir = tempfile::tempdir().unwrap();
    let d = model_dir("digits-torch");
    let out = dir.path().join("small.onnx");
    let r = run_ok(
        compress_in(&d, "model-dynamo.onnx", &out)
            .args([
                "--epochs",
                "1",
                "--heal-epochs",
                "0",
                "--max-accuracy-drop",
                "2",
            ])
            .args(["--engine", "tract", "--json"]),
    );
    let data = dir.path().join("small.onnx.data");
    assert!(data.exists(), "the external data file was not written");
    let size = |p: &Path| std::fs::metadata(p).unwrap().len();
    assert_eq!(
        r["report"]["validation"]["candidate"]["file_bytes"].as_u64(),
        Some(size(&out) + size(&data)),
        "{}",
        r["report"]["validation"]
    );
    let original = size(&d.join("model-dynamo.onnx")) + size(&d.join("model-dynamo.onnx.data"));
    assert_eq!(
        r["report"]["validation"]["original"]["file_bytes"].as_u64(),
        Some(original)
    );
}

/// compress's text output names every search (source × allocation) with its cut, and says by how
/// many parameters each kept more than the chosen one; the numbers are the report's.
#[test]
fn compress_says_which_source_and_allocation_won_and_by_how_much() {
    require_ort();
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let o = compress_in(
        &model_dir("digits-torch"),
        "model-legacy.onnx",
        &dir.path().join("small.onnx"),
    )
    .arg("--report")
    .arg(&report)
    .args([
        "--max-accuracy-drop",
        "0",
        "--epochs",
        "1",
        "--heal-epochs",
        "1",
    ])
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let r = &r["report"];
    let chosen_params = r["validation"]["candidate"]["params"].as_u64().unwrap();
    let runs = r["searches"].as_array().unwrap();
    assert_eq!(runs.len(), 4, "two sources × two allocations");
    for run in runs {
        let (source, allocation) = (
            run["source"].as_str().unwrap(),
            run["allocation"].as_str().unwrap(),
        );
        let prefix = format!("  {source} model, {allocation} allocation:");
        let line = text
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no line for {prefix} in\n{text}"));
        let Some(ratio) = run["chosen_ratio"].as_f64() else {
            assert!(line.contains("no cut within the budget"), "{line}");
            continue;
        };
        let params = run["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["ratio"].as_f64() == Some(ratio))
            .unwrap()["params"]
            .as_u64()
            .unwrap();
        let won = r["source"] == run["source"] && r["allocation"] == run["allocation"];
        let tail = if won {
            assert_eq!(
                params, chosen_params,
                "the winner's cut is the written model"
            );
            "(chosen)".to_string()
        } else {
            format!("({} more than the chosen)", params - chosen_params)
        };
        assert!(line.ends_with(&format!("{params} params {tail}")), "{line}");
    }
    assert_eq!(text.matches("(chosen)").count(), 1, "{text}");
}
