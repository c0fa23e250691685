//! Gates for the models users have: `validate` and `compress` on unlabelled data (agreement with
//! the original's predicted classes) and on a regressor (RMSE against float targets and max |Δ|
//! of the outputs), each passing and failing with exit 3. The references are independent of the
//! code under test: tract loads the written files by path (`tract_run_file`), and the agreement,
//! RMSE and max |Δ| are computed here from its outputs.
mod common;
use bean_onnx::ir::builder::GraphBuilder;
use bean_onnx::tensor::DataType;
use common::*;
use ndarray::{Array2, ArrayD, Axis};
use ndarray_npy::NpzWriter;
use std::path::{Path, PathBuf};

/// A seeded uniform stream in [-1, 1) (64-bit LCG, top bits).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
    fn values(&mut self, n: usize, scale: f64) -> Vec<f64> {
        (0..n).map(|_| self.next() * scale).collect()
    }
}

const INPUTS: usize = 8;
const UNIQUE: usize = 12;
const OUTPUTS: usize = 2;

/// A regressor 8 → 24 (Relu) → 12 (Relu) → 2 (linear), written as ONNX with the library's graph
/// builder: Gemm layers with initializer weights `[in, out]` and biases. Hidden neurons 12..24
/// of the first layer duplicate neurons 0..12 (same weights and bias), so that a cut removing
/// only them changes the outputs by rounding alone.
fn regressor(path: &Path, outputs: usize) {
    let mut rng = Lcg(7);
    let mut b = GraphBuilder::new("regressor", DataType::Float);
    let x = b.input("x", &[None, Some(INPUTS)]);
    let half = rng.values(INPUTS * UNIQUE, 0.6);
    let mut w1 = Vec::new();
    for i in 0..INPUTS {
        let row = &half[i * UNIQUE..(i + 1) * UNIQUE];
        w1.extend_from_slice(row);
        w1.extend_from_slice(row);
    }
    let b1_half = rng.values(UNIQUE, 0.2);
    let b1: Vec<f64> = b1_half.iter().chain(&b1_half).copied().collect();
    let layers = [
        (w1, b1, 2 * UNIQUE, true),
        (
            rng.values(2 * UNIQUE * UNIQUE, 0.4),
            rng.values(UNIQUE, 0.2),
            UNIQUE,
            true,
        ),
        (
            rng.values(UNIQUE * outputs, 0.5),
            rng.values(outputs, 0.1),
            outputs,
            false,
        ),
    ];
    let mut h = x;
    let mut n_in = INPUTS;
    for (w, bias, n_out, relu) in layers {
        let w = b.constant(&w, &[n_in as i64, n_out as i64]);
        let bias = b.constant(&bias, &[n_out as i64]);
        h = b.op("Gemm", &[&h, &w, &bias], vec![]);
        if relu {
            h = b.op("Relu", &[&h], vec![]);
        }
        n_in = n_out;
    }
    b.output(&h, "y");
    bean_onnx::onnx::save(&b.into_model(), path, &Default::default()).unwrap();
}

/// `rows` rows of features and float targets: the regressor's own outputs (run by tract from
/// the file) plus noise of about 0.05, so the original's RMSE is about the noise's.
fn regression_data(
    model: &Path,
    path: &Path,
    rows: usize,
    seed: u64,
) -> (ArrayD<f32>, Array2<f32>) {
    let mut rng = Lcg(seed);
    let x = ArrayD::from_shape_vec(
        vec![rows, INPUTS],
        rng.values(rows * INPUTS, 1.5)
            .iter()
            .map(|&v| v as f32)
            .collect(),
    )
    .unwrap();
    let clean = tract_run_file(model, &x);
    let y = Array2::from_shape_fn((rows, clean.shape()[1]), |(r, c)| {
        clean[[r, c]] + (rng.next() * 0.087) as f32
    });
    let mut npz = NpzWriter::new(std::fs::File::create(path).unwrap());
    npz.add_array("x", &x).unwrap();
    npz.add_array("y", &y).unwrap();
    npz.finish().unwrap();
    (x, y)
}

/// The features of `src` alone, without labels.
fn unlabelled(src: &Path, path: &Path) -> ArrayD<f32> {
    let x = npz_f32(src, "x");
    let mut npz = NpzWriter::new(std::fs::File::create(path).unwrap());
    npz.add_array("x", &x).unwrap();
    npz.finish().unwrap();
    x
}

fn rmse(pred: &ArrayD<f32>, y: &Array2<f32>) -> f64 {
    assert_eq!(pred.shape(), y.shape());
    let sum: f64 = pred
        .iter()
        .zip(y.iter())
        .map(|(p, t)| (f64::from(*p) - f64::from(*t)).powi(2))
        .sum();
    (sum / y.len() as f64).sqrt()
}

fn argmax_rows(scores: &ArrayD<f32>) -> Vec<usize> {
    scores
        .axis_iter(Axis(0))
        .map(|r| {
            r.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
                    if v > best.1 {
                        (i, v)
                    } else {
                        best
                    }
                })
                .0
        })
        .collect()
}

fn agreement(a: &ArrayD<f32>, b: &ArrayD<f32>) -> f64 {
    let (pa, pb) = (argmax_rows(a), argmax_rows(b));
    pa.iter().zip(&pb).filter(|(x, y)| x == y).count() as f64 / pa.len() as f64
}

/// Runs bean-onnx, asserts the exit code, and parses stdout as JSON.
fn run_json(args: &[&dyn AsRef<std::ffi::OsStr>], code: i32) -> serde_json::Value {
    let o = bean().args(args).output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(code),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// A short compress (1 epoch, 1 heal epoch, tract) of `model` on `train`, gated on `test` with
/// `limits` (flag, value, …), expecting exit `code`; its `--json`.
fn compress_json(
    model: &Path,
    (train, test): (&Path, &Path),
    out: &Path,
    limits: &[&str],
    code: i32,
) -> serde_json::Value {
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
        &"compress",
        &model,
        &"--data",
        &train,
        &"--test",
        &test,
        &"-o",
        &out,
    ];
    for l in limits {
        args.push(l);
    }
    const SHORT_RUN: [&str; 7] = [
        "--epochs",
        "1",
        "--heal-epochs",
        "1",
        "--engine",
        "tract",
        "--json",
    ];
    for a in &SHORT_RUN {
        args.push(a);
    }
    run_json(&args, code)
}

fn prune(model: &Path, data: &Path, out: &Path, extra: &[&str]) {
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
        &"prune",
        &model,
        &"--data",
        &data,
        &"-o",
        &out,
        &"--engine",
        &"tract",
    ];
    args.extend(extra.iter().map(|s| s as &dyn AsRef<std::ffi::OsStr>));
    let o = bean().args(args).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

struct Unlabelled {
    _dir: tempfile::TempDir,
    model: PathBuf,
    train: PathBuf,
    test: PathBuf,
    x_test: ArrayD<f32>,
    dir: PathBuf,
}

fn unlabelled_setup() -> Unlabelled {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let digits = model_dir("digits-torch");
    let (train, test) = (d.join("train-x.npz"), d.join("test-x.npz"));
    unlabelled(&digits.join("train.npz"), &train);
    let x_test = unlabelled(&digits.join("test.npz"), &test);
    Unlabelled {
        _dir: dir,
        model: digits.join("model-legacy.onnx"),
        train,
        test,
        x_test,
        dir: d,
    }
}

#[test]
fn validate_unlabelled_gates_on_agreement_with_the_original() {
    let u = unlabelled_setup();
    let (light, heavy) = (u.dir.join("light.onnx"), u.dir.join("heavy.onnx"));
    prune(&u.model, &u.train, &light, &["--ratio", "0.1"]);
    prune(&u.model, &u.train, &heavy, &["--ratio", "0.95"]);
    let original = tract_run_file(&u.model, &u.x_test);
    let expect_light = agreement(&original, &tract_run_file(&light, &u.x_test));
    let expect_heavy = agreement(&original, &tract_run_file(&heavy, &u.x_test));
    assert!(
        expect_light >= 0.97 && expect_heavy < 0.9,
        "{expect_light} {expect_heavy}"
    );
    let n = u.x_test.shape()[0] as f64;
    let check = |v: &serde_json::Value, expect: f64| {
        assert_eq!(v["gate"], "agreement");
        assert!(v["original"]["accuracy"].is_null() && v["accuracy_drop"].is_null());
        // tract in both; a tie between two scores may break either way, one row at most.
        assert!(
            (f(&v["agreement"]) - expect).abs() <= 1.0 / n + 1e-12,
            "{v}"
        );
    };
    let pass = run_json(
        &[
            &"validate",
            &u.model,
            &light,
            &"--data",
            &u.test,
            &"--max-accuracy-drop",
            &"3",
            &"--json",
        ],
        0,
    );
    check(&pass, expect_light);
    assert_eq!(pass["passed"], true);
    assert!(pass["reason"].is_null());
    let fail = run_json(
        &[
            &"validate",
            &u.model,
            &heavy,
            &"--data",
            &u.test,
            &"--max-accuracy-drop",
            &"3",
            &"--json",
        ],
        3,
    );
    check(&fail, expect_heavy);
    assert_eq!(fail["passed"], false);
    assert!(fail["reason"]
        .as_str()
        .unwrap()
        .contains("differs from the original's"));
    // The text report says the same, and an RMSE budget without float targets is refused.
    let o = bean()
        .args([
            &"validate" as &dyn AsRef<std::ffi::OsStr>,
            &u.model,
            &heavy,
            &"--data",
            &u.test,
            &"--max-accuracy-drop",
            &"3",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stdout).contains("FAILED"));
    let o = bean()
        .args([
            &"validate" as &dyn AsRef<std::ffi::OsStr>,
            &u.model,
            &light,
            &"--data",
            &u.test,
            &"--max-rmse-increase",
            &"0.1",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--max-rmse-increase") && err.contains("test-x.npz"),
        "{err}"
    );
}

struct Regression {
    _dir: tempfile::TempDir,
    model: PathBuf,
    train: PathBuf,
    test: PathBuf,
    x_test: ArrayD<f32>,
    y_test: Array2<f32>,
    dir: PathBuf,
}

fn regression_setup() -> Regression {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let model = d.join("regressor.onnx");
    regressor(&model, OUTPUTS);
    let (train, test) = (d.join("train.npz"), d.join("test.npz"));
    regression_data(&model, &train, 800, 11);
    let (x_test, y_test) = regression_data(&model, &test, 400, 12);
    Regression {
        _dir: dir,
        model,
        train,
        test,
        x_test,
        y_test,
        dir: d,
    }
}

#[test]
fn validate_regression_gates_on_rmse_and_max_abs_diff() {
    let r = regression_setup();
    let (dupes, heavy) = (r.dir.join("dupes.onnx"), r.dir.join("heavy.onnx"));
    // Global allocation removes the 12 exact duplicates first (cost 0): 10 of 36 hidden neurons.
    prune(
        &r.model,
        &r.train,
        &dupes,
        &["--ratio", "0.28", "--allocation", "global"],
    );
    prune(&r.model, &r.train, &heavy, &["--ratio", "0.9"]);
    let original = tract_run_file(&r.model, &r.x_test);
    let rmse_original = rmse(&original, &r.y_test);
    assert!((0.03..0.07).contains(&rmse_original), "{rmse_original}");
    let check = |v: &serde_json::Value, candidate: &Path| {
        let out = tract_run_file(candidate, &r.x_test);
        let expect = rmse(&out, &r.y_test);
        assert_eq!(v["gate"], "regression");
        assert!(v["original"]["accuracy"].is_null());
        assert!(
            (f(&v["original"]["rmse"]) - rmse_original).abs() < 1e-6,
            "{v}"
        );
        assert!((f(&v["candidate"]["rmse"]) - expect).abs() < 1e-6, "{v}");
        assert!((f(&v["rmse_increase"]) - (expect - rmse_original)).abs() < 1e-6);
        let diff = max_abs_diff(&original, &out) as f64;
        assert!((f(&v["max_abs_diff"]) - diff).abs() < 1e-5, "{v} vs {diff}");
        expect - rmse_original
    };
    let limits = [
        &"--max-rmse-increase" as &dyn AsRef<std::ffi::OsStr>,
        &"0.001",
        &"--max-abs-diff",
        &"0.001",
        &"--json",
    ];
    let mut pass_args: Vec<&dyn AsRef<std::ffi::OsStr>> =
        vec![&"validate", &r.model, &dupes, &"--data", &r.test];
    pass_args.extend(limits);
    let pass = run_json(&pass_args, 0);
    assert!(check(&pass, &dupes).abs() < 1e-4);
    assert_eq!(pass["passed"], true);
    assert_eq!(f(&pass["max_rmse_increase"]), 0.001);
    assert_eq!(f(&pass["allowed_max_abs_diff"]), 0.001);
    let mut fail_args: Vec<&dyn AsRef<std::ffi::OsStr>> =
        vec![&"validate", &r.model, &heavy, &"--data", &r.test];
    fail_args.extend(limits);
    let fail = run_json(&fail_args, 3);
    assert!(check(&fail, &heavy) > 0.001);
    assert_eq!(fail["passed"], false);
    let reason = fail["reason"].as_str().unwrap();
    assert!(
        reason.contains("RMSE rose") && reason.contains("differs"),
        "{reason}"
    );
    // max |Δ| alone gates too.
    let only_diff = run_json(
        &[
            &"validate",
            &r.model,
            &heavy,
            &"--data",
            &r.test,
            &"--max-abs-diff",
            &"0.001",
            &"--json",
        ],
        3,
    );
    assert!(only_diff["reason"].as_str().unwrap().contains("differs"));
    // An accuracy budget means nothing on float targets: refused, naming the flag and the file.
    let o = bean()
        .args([
            &"validate" as &dyn AsRef<std::ffi::OsStr>,
            &r.model,
            &dupes,
            &"--data",
            &r.test,
            &"--max-accuracy-drop",
            &"1",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--max-accuracy-drop") && err.contains("test.npz"),
        "{err}"
    );
}

#[test]
fn validate_refuses_targets_of_another_width_than_the_output() {
    let r = regression_setup();
    let wide = r.dir.join("wide.npz");
    let mut npz = NpzWriter::new(std::fs::File::create(&wide).unwrap());
    npz.add_array("x", &r.x_test).unwrap();
    npz.add_array("y", &Array2::<f32>::zeros((r.x_test.shape()[0], 3)))
        .unwrap();
    npz.finish().unwrap();
    let o = bean()
        .args([
            &"validate" as &dyn AsRef<std::ffi::OsStr>,
            &r.model,
            &r.model,
            &"--data",
            &wide,
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("wide.npz") && err.contains("shape"), "{err}");
}

/// compress on the regressor: the search bounds the RMSE increase, the gate passes and the
/// written model's RMSE is within the budget; a bound on max |Δ| no healed cut meets fails
/// with exit 3 and writes nothing.
#[test]
fn compress_a_regressor() {
    let r = regression_setup();
    let out = r.dir.join("small.onnx");
    let v = compress_json(
        &r.model,
        (&r.train, &r.test),
        &out,
        &["--max-rmse-increase", "0.01"],
        0,
    );
    let report = &v["report"];
    assert_eq!(report["validation"]["gate"], "regression");
    assert_eq!(report["search"]["metric"], "regression");
    assert!(report["search"]["chosen_accuracy"].is_null());
    let before = report["prune"]["hidden_before"].as_u64().unwrap();
    assert!(report["prune"]["hidden_after"].as_u64().unwrap() < before);
    let expect = rmse(&tract_run_file(&out, &r.x_test), &r.y_test);
    let original = rmse(&tract_run_file(&r.model, &r.x_test), &r.y_test);
    assert!((f(&report["validation"]["candidate"]["rmse"]) - expect).abs() < 1e-6);
    assert!(expect - original <= 0.01 + 1e-9, "{expect} vs {original}");
    let never = r.dir.join("never.onnx");
    let failed = compress_json(
        &r.model,
        (&r.train, &r.test),
        &never,
        &["--max-rmse-increase", "0.01", "--max-abs-diff", "1e-9"],
        3,
    );
    assert!(failed["report"]["reason"]
        .as_str()
        .unwrap()
        .contains("on the test data"));
    assert!(!never.exists());
    // Float targets without an RMSE budget cannot be gated.
    let o = bean()
        .args([
            &"compress" as &dyn AsRef<std::ffi::OsStr>,
            &r.model,
            &"--data",
            &r.train,
            &"-o",
            &never,
            &"--engine",
            &"tract",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--max-rmse-increase"));
}

/// compress on unlabelled data: distilled from the original, searched and gated on agreement
/// with its predicted classes.
#[test]
fn compress_on_unlabelled_data() {
    let u = unlabelled_setup();
    let out = u.dir.join("small.onnx");
    let v = compress_json(
        &u.model,
        (&u.train, &u.test),
        &out,
        &["--max-accuracy-drop", "3"],
        0,
    );
    let report = &v["report"];
    assert_eq!(report["validation"]["gate"], "agreement");
    assert_eq!(report["search"]["metric"], "agreement");
    assert!(report["validation"]["accuracy_drop"].is_null());
    let before = report["prune"]["hidden_before"].as_u64().unwrap();
    assert!(report["prune"]["hidden_after"].as_u64().unwrap() < before);
    let expect = agreement(
        &tract_run_file(&u.model, &u.x_test),
        &tract_run_file(&out, &u.x_test),
    );
    let n = u.x_test.shape()[0] as f64;
    assert!((f(&report["validation"]["agreement"]) - expect).abs() <= 1.0 / n + 1e-12);
    assert!(expect >= 0.97 - 1.0 / n, "{expect}");
}

/// A regressor with one output on data without y: agreement of arg-maxes would always be 1, so
/// an agreement budget is refused; the output difference gates it.
#[test]
fn an_unlabelled_single_output_regressor_is_gated_by_max_abs_diff() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = d.join("one.onnx");
    regressor(&model, 1);
    let labelled = d.join("with-y.npz");
    let (x, _) = regression_data(&model, &labelled, 300, 5);
    let data = d.join("x.npz");
    unlabelled(&labelled, &data);
    let heavy = d.join("heavy.onnx");
    prune(&model, &data, &heavy, &["--ratio", "0.9"]);
    let o = bean()
        .args([
            &"validate" as &dyn AsRef<std::ffi::OsStr>,
            &model,
            &heavy,
            &"--data",
            &data,
            &"--max-accuracy-drop",
            &"1",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("single output column") && err.contains("x.npz"),
        "{err}"
    );
    let same = run_json(
        &[
            &"validate",
            &model,
            &model,
            &"--data",
            &data,
            &"--max-abs-diff",
            &"0",
            &"--json",
        ],
        0,
    );
    assert_eq!(f(&same["max_abs_diff"]), 0.0);
    let diff = max_abs_diff(&tract_run_file(&model, &x), &tract_run_file(&heavy, &x)) as f64;
    assert!(diff > 1e-3, "{diff}");
    let fail = run_json(
        &[
            &"validate",
            &model,
            &heavy,
            &"--data",
            &data,
            &"--max-abs-diff",
            &"1e-3",
            &"--json",
        ],
        3,
    );
    assert!((f(&fail["max_abs_diff"]) - diff).abs() < 1e-5);
    assert_eq!(fail["gate"], "agreement");
}
