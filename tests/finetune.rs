//! Fine-tuning end to end: accuracy kept, BEAN concentrating the weights, determinism, engines
//! agreeing step for step, resume, divergence, and what the written model keeps.
mod common;
use assert_cmd::Command;
use bean_onnx::data::{DataKeys, Dataset};
use bean_onnx::engine::{EngineKind, EngineOptions};
use bean_onnx::mlp::MlpView;
use bean_onnx::onnx;
use bean_onnx::pb;
use bean_onnx::train::plan::{apply_params, initial_state, plan, Plan};
use bean_onnx::train::{
    self, checkpoint, Checkpoint, EpochMetrics, FinetuneConfig, Observer, StopReason, Trainer,
};
use bean_onnx::{eval, Result};
use common::*;
use ndarray::{Array2, ArrayD, Axis};
use prost::Message;
use std::path::{Path, PathBuf};

fn digits() -> (PathBuf, PathBuf, PathBuf) {
    let d = model_dir("digits-torch");
    (
        d.join("model-legacy.onnx"),
        d.join("train.npz"),
        d.join("test.npz"),
    )
}

/// `bean-onnx finetune MODEL --data DATA -o OUT`, for the caller to add options to.
fn finetune(model: &Path, data: &Path, out: &Path) -> Command {
    let mut cmd = bean();
    cmd.arg("finetune")
        .arg(model)
        .arg("--data")
        .arg(data)
        .arg("-o")
        .arg(out);
    cmd
}

fn load(path: &Path, labels: bool) -> Dataset {
    Dataset::load(path, &DataKeys::default(), labels).unwrap()
}

fn accuracy(model: &Path, data: &Path) -> f64 {
    let m = onnx::load(model).unwrap();
    eval::evaluate(
        &m,
        &load(data, true),
        EngineKind::Ort,
        &EngineOptions::default(),
    )
    .unwrap()
    .accuracy
}

fn summary(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The bean term falls, validation accuracy stays within a point, and assemblies sharpen.
fn check_bean_run(s: &serde_json::Value, output: &Path, test: &Path, reference: f64) {
    let history = s["history"].as_array().unwrap();
    let first = history.first().unwrap()["bean"].as_f64().unwrap();
    let last = history.last().unwrap()["bean"].as_f64().unwrap();
    assert!(last < first, "BEAN term did not fall: {first} → {last}");
    let acc = accuracy(output, test);
    assert!(
        (acc - reference).abs() <= 0.01,
        "test accuracy {acc} vs original {reference}"
    );
    for l in s["layers"].as_array().unwrap() {
        let (b, a) = (
            l["modularity_before"].as_f64().unwrap(),
            l["modularity_after"].as_f64().unwrap(),
        );
        assert!(a > b, "layer {}: modularity {b} → {a}", l["layer"]);
    }
}

#[test]
fn digits_bean_keeps_accuracy_and_forms_assemblies() {
    require_ort();
    let (model, train, test) = digits();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tuned.onnx");
    let metrics = dir.path().join("m.jsonl");
    let o = finetune(&model, &train, &out)
        .args([
            "--epochs",
            "5",
            "--alpha",
            "0.02",
            "--engine",
            "ort",
            "--json",
            "--metrics",
        ])
        .arg(&metrics)
        .output()
        .unwrap();
    let s = summary(&o);
    assert_eq!(s["engine"], "ort (CPUExecutionProvider, host update)");
    assert_eq!(s["epochs"], 5);
    assert!(s["samples_per_second"].as_f64().unwrap() > 0.0);
    let reference = json(&model_dir("digits-torch").join("model.json"))["ort_accuracy"]
        .as_f64()
        .unwrap();
    check_bean_run(&s, &out, &test, reference);
    let lines = std::fs::read_to_string(&metrics).unwrap();
    let epochs: Vec<EpochMetrics> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(epochs.len(), 5);
    assert!(
        !out.with_extension("onnx.ckpt.json").exists(),
        "checkpoint left behind"
    );
}

/// Fashion-MNIST (full 60k training split, built by scripts/test.sh from Debian's package).
#[test]
fn fashion_lenet_bean_keeps_accuracy_and_forms_assemblies() {
    require_ort();
    let data = std::env::var("BEAN_ONNX_FASHION_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join("target/data/fashion"));
    let train = data.join("train.npz");
    assert!(
        train.exists(),
        "{} is missing: run scripts/test.sh (it builds it)",
        train.display()
    );
    let model = model_dir("fashion-lenet").join("model.onnx");
    let test = model_dir("fashion-lenet").join("test.npz");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tuned.onnx");
    let o = finetune(&model, &train, &out)
        .args(["--epochs", "2", "--engine", "ort", "--json"])
        .output()
        .unwrap();
    let s = summary(&o);
    let reference = json(&model_dir("fashion-lenet").join("model.json"))["ort_accuracy"]
        .as_f64()
        .unwrap();
    check_bean_run(&s, &out, &test, reference);
}

fn run_finetune(engine: &str, out: &Path, seed: &str, extra: &[&str]) -> std::process::Output {
    let (model, train, _) = digits();
    finetune(&model, &train, out)
        .args([
            "--epochs", "2", "--json", "--engine", engine, "--seed", seed,
        ])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn the_same_seed_and_engine_give_the_same_model() {
    require_ort();
    let dir = tempfile::tempdir().unwrap();
    for engine in ["tract", "ort"] {
        let a = dir.path().join(format!("{engine}-a.onnx"));
        let b = dir.path().join(format!("{engine}-b.onnx"));
        summary(&run_finetune(engine, &a, "7", &[]));
        summary(&run_finetune(engine, &b, "7", &[]));
        assert!(
            std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
            "{engine}: outputs differ"
        );
    }
    // A different seed shuffles differently.
    let c = dir.path().join("c.onnx");
    summary(&run_finetune("tract", &c, "8", &[]));
    assert!(std::fs::read(&c).unwrap() != std::fs::read(dir.path().join("tract-a.onnx")).unwrap());
}

#[test]
fn ort_and_tract_agree_step_for_step() {
    require_ort();
    let (model_path, train, _) = digits();
    let model = onnx::load(&model_path).unwrap();
    let cfg = FinetuneConfig {
        baseline: Some((bean_onnx::train::step::Baseline::GroupLasso, 1e-3)),
        ..Default::default()
    };
    let plan = plan(&model, &cfg, false).unwrap();
    let graph = plan.spec.step_graph();
    let names: Vec<String> = graph.state.iter().map(|b| b.input.clone()).collect();
    let n_params = plan.spec.params().len();
    let state = initial_state(&model, &plan);
    let data = load(&train, true);
    let x = data.x.slice_f32(0, data.rows());
    let x: Array2<f32> = x.into_dimensionality().unwrap();
    let mut runners: Vec<Trainer> = [EngineKind::Ort, EngineKind::Tract]
        .into_iter()
        .map(|k| {
            let opts = EngineOptions::default();
            let mut r = Trainer::new(k, &graph, n_params, &opts, 1e-3).unwrap();
            r.set_state(&state, 0).unwrap();
            r
        })
        .collect();
    for step in 0..30 {
        let rows: Vec<usize> = (0..64).map(|i| (step * 64 + i) % data.rows()).collect();
        let xb = x.select(Axis(0), &rows).into_dyn();
        let mut t = ArrayD::<f32>::zeros(vec![rows.len(), 10]);
        for (i, &r) in rows.iter().enumerate() {
            t[[i, data.y.as_ref().unwrap()[r] as usize]] = 1.0;
        }
        let a = runners[0].step(xb.clone(), t.clone()).unwrap();
        let b = runners[1].step(xb, t).unwrap();
        let (va, vb) = (
            [a.task_loss, a.bean, a.baseline, a.correct],
            [b.task_loss, b.bean, b.baseline, b.correct],
        );
        for (x, y) in va.iter().zip(&vb) {
            assert!(
                (x - y).abs() <= 1e-4 * (1.0 + x.abs()),
                "step {step}: scalars {a:?} vs {b:?}"
            );
        }
    }
    let (sa, sb) = (runners[0].state().unwrap(), runners[1].state().unwrap());
    for (i, (a, b)) in sa.iter().zip(&sb).enumerate() {
        let scale = a.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
        let d = max_abs_diff(a, b);
        assert!(
            d <= 1e-3 * scale,
            "state {} ({}) differs by {d} (scale {scale})",
            i,
            names[i]
        );
    }
}

#[test]
fn written_model_is_the_input_with_new_weights_and_nothing_else() {
    require_ort();
    let dir = tempfile::tempdir().unwrap();
    // float_data weights and a ZipMap tail (skl2onnx), and raw_data Gemm transB=1 (torch).
    for (model, data) in [
        (
            model_dir("digits-sklearn").join("model.onnx"),
            model_dir("digits-sklearn").join("train.npz"),
        ),
        (
            model_dir("digits-torch").join("model-legacy.onnx"),
            model_dir("digits-torch").join("train.npz"),
        ),
    ] {
        let out = dir.path().join("out.onnx");
        let o = finetune(&model, &data, &out)
            .args(["--epochs", "1", "--json"])
            .output()
            .unwrap();
        summary(&o);
        let strip = |p: &Path| {
            let mut m = pb::ModelProto::decode(&*std::fs::read(p).unwrap()).unwrap();
            let mut data = Vec::new();
            for t in &mut m.graph.as_mut().unwrap().initializer {
                data.push((
                    std::mem::take(&mut t.raw_data),
                    std::mem::take(&mut t.float_data),
                ));
            }
            (m, data)
        };
        let (a, da) = strip(&model);
        let (b, db) = strip(&out);
        assert_eq!(
            a,
            b,
            "{}: something besides weight values changed",
            model.display()
        );
        let changed = da.iter().zip(&db).filter(|(x, y)| x != y).count();
        assert!(
            changed >= 2,
            "{}: only {changed} tensors changed",
            model.display()
        );
        for ((ra, fa), (rb, fb)) in da.iter().zip(&db) {
            assert_eq!(ra.is_some(), rb.is_some(), "storage changed");
            assert_eq!(fa.is_empty(), fb.is_empty(), "storage changed");
        }
    }
}

#[test]
fn writing_back_weights_round_trips_every_layout() {
    // Gemm transB=0/1 with alpha/beta, scalar and row biases, MatMul+Add on either side, no bias.
    for name in [
        "gemm_transb1",
        "gemm_alpha_beta",
        "gemm_nobias",
        "gemm_bias_scalar",
        "gemm_bias_row",
        "matmul_add_left",
        "matmul_add_right_row",
        "matmul_nobias",
        "keras_like",
        "cnn_head",
    ] {
        let model = onnx::load(&fixture(&format!("{name}.onnx"))).unwrap();
        let cfg = FinetuneConfig::default();
        let plan = plan(&model, &cfg, false).unwrap();
        let n = plan.spec.params().len();
        let mut seed = 1u64;
        let params: Vec<ArrayD<f32>> = initial_state(&model, &plan)[..n]
            .iter()
            .map(|a| {
                a.mapv(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                })
            })
            .collect();
        let written = apply_params(&model, &plan, &params).unwrap();
        let again = onnx::from_bytes(&onnx::to_bytes(&written), None).unwrap();
        let view = MlpView::find(&again.graph).unwrap();
        let back = initial_state(
            &again,
            &Plan {
                view,
                spec: plan.spec.clone(),
                gammas: plan.gammas.clone(),
            },
        );
        for (i, (a, b)) in params.iter().zip(&back).enumerate() {
            assert!(
                max_abs_diff(a, b) <= 1e-6 * (1.0 + a.iter().fold(0f32, |m, v| m.max(v.abs()))),
                "{name}: param {i}"
            );
        }
    }
}

/// Stops after `stop_after` epochs, saving checkpoints like the CLI does.
struct Stopper {
    base: PathBuf,
    epochs_seen: usize,
    stop_after: usize,
}

impl Observer for Stopper {
    fn epoch_end(&mut self, _: &EpochMetrics, ck: &Checkpoint) -> Result<()> {
        self.epochs_seen += 1;
        checkpoint::save(&self.base, ck)
    }
    fn interrupted(&self) -> bool {
        self.epochs_seen >= self.stop_after
    }
    fn keeps_checkpoints(&self) -> bool {
        true
    }
}

#[test]
fn an_interrupted_run_resumes_to_the_same_model() {
    let (model_path, train, test) = digits();
    let model = onnx::load(&model_path).unwrap();
    let train = load(&train, true);
    let val = load(&test, true);
    let cfg = FinetuneConfig {
        epochs: 3,
        seed: 3,
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("ck");
    let mut straight = Stopper {
        base: dir.path().join("other"),
        epochs_seen: 0,
        stop_after: usize::MAX,
    };
    let full = train::finetune(&model, &train, Some(&val), &cfg, None, &mut straight).unwrap();
    assert_eq!(full.stop, StopReason::Completed);

    let mut first = Stopper {
        base: base.clone(),
        epochs_seen: 0,
        stop_after: 1,
    };
    let part = train::finetune(&model, &train, Some(&val), &cfg, None, &mut first).unwrap();
    assert_eq!(part.stop, StopReason::Interrupted);
    let ck = checkpoint::load(&base)
        .unwrap()
        .expect("checkpoint written");
    assert_eq!(ck.epoch, 1);
    // The validation data picks the best epoch: other validation data is another run.
    let other_val = val.select(&(0..val.rows() / 2).collect::<Vec<_>>());
    let mut refused = Stopper {
        base: base.clone(),
        epochs_seen: 0,
        stop_after: usize::MAX,
    };
    let err = train::finetune(
        &model,
        &train,
        Some(&other_val),
        &cfg,
        Some(ck.clone()),
        &mut refused,
    )
    .err()
    .expect("other validation data refused");
    assert!(err.to_string().contains("other settings"), "{err}");
    let mut rest = Stopper {
        base,
        epochs_seen: 0,
        stop_after: usize::MAX,
    };
    let resumed = train::finetune(&model, &train, Some(&val), &cfg, Some(ck), &mut rest).unwrap();
    assert_eq!(resumed.stop, StopReason::Completed);
    assert_eq!(rest.epochs_seen, 2);
    assert_eq!(resumed.best_epoch, full.best_epoch);
    assert!(
        onnx::to_bytes(&resumed.model) == onnx::to_bytes(&full.model),
        "resumed run differs"
    );
}

#[test]
fn a_diverging_loss_stops_and_keeps_the_last_good_weights() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("nan.onnx");
    let o = run_finetune("tract", &out, "7", &["--optimizer", "sgd", "--lr", "1e30"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("NaN or infinite") && err.contains("last good weights"),
        "{err}"
    );
    // The first step's update already blows the weights up (its loss, of the original weights, is
    // finite); the second step's loss is not, so the last good weights are the original ones.
    let written = onnx::load(&out).unwrap();
    let original = onnx::load(&digits().0).unwrap();
    let test = load(&digits().2, true);
    let acc = |m| {
        eval::evaluate(m, &test, EngineKind::Tract, &EngineOptions::default())
            .unwrap()
            .accuracy
    };
    assert_eq!(acc(&written), acc(&original));
    for (a, b) in written
        .graph
        .initializers
        .iter()
        .zip(&original.graph.initializers)
    {
        assert_eq!(a.data, b.data, "{} changed", a.name);
    }
}

#[test]
fn distillation_without_labels_keeps_the_model_close() {
    let (model, train, test) = digits();
    let dir = tempfile::tempdir().unwrap();
    // The training features without their labels.
    let unlabeled = dir.path().join("x.npz");
    let x = load(&train, true).x.slice_f32(0, 1257);
    let mut npz = ndarray_npy::NpzWriter::new(std::fs::File::create(&unlabeled).unwrap());
    npz.add_array("x", &x).unwrap();
    npz.finish().unwrap();
    let out = dir.path().join("distilled.onnx");
    let o = finetune(&model, &unlabeled, &out)
        .args(["--epochs", "3", "--engine", "tract", "--json"])
        .output()
        .unwrap();
    summary(&o);
    let before = onnx::load(&model).unwrap();
    let after = onnx::load(&out).unwrap();
    let data = load(&test, true);
    let acc = |m| {
        eval::evaluate(m, &data, EngineKind::Tract, &EngineOptions::default())
            .unwrap()
            .accuracy
    };
    assert!((acc(&before) - acc(&after)).abs() <= 0.02);
}

fn refuses(args: &[&str], code: i32, needle: &str) {
    refuses_data(&digits().1, args, code, needle)
}

fn refuses_data(data: &Path, args: &[&str], code: i32, needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never.onnx");
    let mut cmd = finetune(&digits().0, data, &out);
    cmd.args(args);
    let o = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
    assert!(
        err.contains(needle),
        "{args:?}: expected '{needle}' in {err}"
    );
    assert!(!out.exists(), "{args:?}: an output was written");
}

#[test]
fn bad_options_and_data_are_refused_without_output() {
    refuses(&["--bean", "3"], 2, "invalid value");
    refuses(&["--optimizer", "rmsprop"], 2, "invalid value");
    refuses(
        &["--gamma=-1"],
        2,
        "'--gamma <GAMMA>': expected a positive number or auto",
    );
    refuses(
        &["--layers", "1,x"],
        2,
        "'--layers <LAYERS>': expected hidden, all or indices like 1,2; got '1,x'",
    );
    refuses(&["--layers", "7"], 1, "layer 7 does not exist");
    refuses(
        &["--lr", "0"],
        2,
        "'--lr <LR>': expected a positive number, got 0",
    );
    refuses(&["--device", "cuda", "--engine", "tract"], 1, "CPU only");
    refuses(&["--engine", "ort", "--device", "cuda:0"], 1, "CUDA");

    let dir = tempfile::tempdir().unwrap();
    let narrow = dir.path().join("narrow.npz");
    let mut npz = ndarray_npy::NpzWriter::new(std::fs::File::create(&narrow).unwrap());
    npz.add_array("x", &Array2::<f32>::zeros((4, 63))).unwrap();
    npz.add_array("y", &ndarray::Array1::<i64>::zeros(4))
        .unwrap();
    npz.finish().unwrap();
    refuses_data(&narrow, &[], 1, "rows of x have 63 values");

    let labels = dir.path().join("labels.npz");
    let mut npz = ndarray_npy::NpzWriter::new(std::fs::File::create(&labels).unwrap());
    npz.add_array("x", &Array2::<f32>::zeros((4, 64))).unwrap();
    npz.add_array("y", &ndarray::Array1::from_vec(vec![0i64, 3, 10, 1]))
        .unwrap();
    npz.finish().unwrap();
    refuses_data(&labels, &[], 1, "label 10 in row 2");

    // A model with no dense layer at all.
    let mut m =
        pb::ModelProto::decode(&*std::fs::read(fixture("head_logits.onnx")).unwrap()).unwrap();
    let g = m.graph.as_mut().unwrap();
    let input = g.input[0].name.clone().unwrap();
    let output = g.output[0].name.clone().unwrap();
    g.node = vec![pb::NodeProto {
        op_type: Some("Relu".into()),
        input: vec![input],
        output: vec![output],
        ..Default::default()
    }];
    g.initializer.clear();
    let plain = dir.path().join("plain.onnx");
    std::fs::write(&plain, m.encode_to_vec()).unwrap();
    let o = bean()
        .args(["finetune", plain.to_str().unwrap(), "--data"])
        .arg(digits().1)
        .args(["-o", dir.path().join("x.onnx").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no dense layer"));
    assert!(!dir.path().join("x.onnx").exists());

    // Never over the input.
    let copy = dir.path().join("in.onnx");
    std::fs::copy(digits().0, &copy).unwrap();
    let before = std::fs::read(&copy).unwrap();
    let o = bean()
        .args(["finetune", copy.to_str().unwrap(), "--data"])
        .arg(digits().1)
        .args(["-o", copy.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(std::fs::read(&copy).unwrap(), before);
}

/// A chain through an Identity (or a Constant-node weight, or pass-through ops between layers) is
/// fine-tuned whole: the last layer stays the classifier (taking the chain only up to the
/// Identity once trained the last hidden layer as one: test accuracy 0.976 → 0.35).
#[test]
fn chains_through_pass_through_ops_are_fine_tuned_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (_, train, test) = digits();
    let reference = accuracy(&digits().0, &test);
    for model in [
        common::crafted::identity_before_last_gemm(dir.path()),
        common::crafted::constant_node_weight(dir.path()),
        common::crafted::pass_through_ops(dir.path()),
    ] {
        let out = dir.path().join("tuned.onnx");
        let o = finetune(&model, &train, &out)
            .args(["--epochs", "2", "--engine", "tract", "--json"])
            .output()
            .unwrap();
        summary(&o);
        let acc = accuracy(&out, &test);
        assert!(
            acc >= reference - 0.02,
            "{}: accuracy {acc} after fine-tuning, {reference} before",
            model.display()
        );
        let written = onnx::load(&out).unwrap();
        let view = MlpView::find(&written.graph).unwrap();
        assert_eq!(view.layers.len(), 3, "{}: the whole chain", model.display());
        // Both trained layers (the default: all but the first) moved, the classifier included.
        let original = onnx::load(&model).unwrap();
        let before = MlpView::find(&original.graph).unwrap();
        for k in [1, 2] {
            assert_ne!(
                view.layers[k].weight_matrix(&written.graph),
                before.layers[k].weight_matrix(&original.graph),
                "{}: layer {k} was not trained",
                model.display()
            );
        }
    }
}

/// Rows prepared once for many heals give the same model as rows prepared per heal, and serve
/// only models with the same prelude: a changed scale in front of the chain is not served.
#[test]
fn prepared_rows_heal_alike_and_serve_only_the_same_prelude() {
    let model = onnx::load(&model_dir("fashion-lenet").join("model.onnx")).unwrap();
    let data = load(&model_dir("fashion-lenet").join("test.npz"), true).evenly_spaced(2000);
    let cfg = FinetuneConfig::default();
    let prepared = train::PreparedRows::new(&model, &data, &cfg)
        .unwrap()
        .unwrap();
    assert!(prepared.serves(&model, &data).unwrap());
    let heal = |p| train::heal(model.clone(), &data, p, &cfg, (1, 1e-3)).unwrap();
    let (once, afresh) = (heal(Some(&prepared)), heal(None));
    assert_eq!(onnx::to_bytes(&once), onnx::to_bytes(&afresh));
    assert_ne!(
        onnx::to_bytes(&once),
        onnx::to_bytes(&model),
        "healing changed it"
    );
    let mut rescaled = model.clone();
    let constant = rescaled
        .graph
        .nodes
        .iter_mut()
        .find(|n| n.op_type == "Constant")
        .expect("the prelude's divisor");
    let value = constant.attributes.iter_mut().find(|a| a.name == "value");
    let Some(bean_onnx::ir::AttrValue::Tensor(t)) = value.map(|a| &mut a.value) else {
        panic!("a tensor constant");
    };
    let dims = t.dims.clone();
    let halved: Vec<f32> = t.as_f32().unwrap().iter().map(|v| v / 2.0).collect();
    t.set_f32(dims, halved);
    assert!(!prepared.serves(&rescaled, &data).unwrap());
}

/// `--alpha auto` (the default) starts the BEAN term at 0.3 × ln C on every bundled model. The
/// reference is the step graph's own first epoch over every row in shuffled batches, at a
/// learning rate too small to move the weights — not the loss graph on the evenly spaced rows
/// that set α.
#[test]
fn alpha_auto_starts_the_bean_term_at_the_documented_share_on_every_bundled_model() {
    let cases = [
        ("fashion-lenet", "model.onnx", "test.npz"),
        ("digits-sklearn", "model.onnx", "train.npz"),
        ("digits-torch", "model-legacy.onnx", "train.npz"),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (name, model, data) in cases {
        let d = model_dir(name);
        let out = dir.path().join(format!("{name}.onnx"));
        let o = finetune(&d.join(model), &d.join(data), &out)
            .args(["--epochs", "1", "--lr", "1e-12", "--json"])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let auto = &j["alpha_auto"];
        let l0 = auto["uninformed_loss"].as_f64().unwrap();
        assert!((l0 - 10f64.ln()).abs() < 1e-9, "{name}: L₀ = {l0}");
        assert_eq!(auto["fraction"].as_f64(), Some(0.3), "{name}");
        assert_eq!(j["alpha"], auto["alpha"], "{name}: BEAN ran with the α set");
        let first_epoch_bean = j["history"][0]["bean"].as_f64().unwrap();
        let share = first_epoch_bean / l0;
        assert!(
            (share - 0.3).abs() < 0.03,
            "{name}: the BEAN term started at {share:.4} × L₀, not 0.3"
        );
    }
}
