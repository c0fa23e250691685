//! Every model bean-onnx writes is valid for every ONNX consumer: each model written here by
//! `finetune`, `prune` (ratio and search, with and without `--inputs`, merging or not) and
//! `compress`, from every bundled model and every exporter pattern whose input passes the same
//! check, passes the real `onnx` package's `check_model(full_check=True)` and strict shape
//! inference with data propagation, and runs in onnxruntime with the outputs tract gives for the
//! same file (within 1e-4 of the largest output).
mod common;
use bean_onnx::data::{DataKeys, Dataset};
use bean_onnx::engine::{EngineKind, EngineOptions};
use bean_onnx::{eval, onnx};
use common::oracle::{self, Verdict};
use common::*;
use ndarray::{Array1, ArrayD, Axis, IxDyn};
use ndarray_npy::NpzWriter;
use rand::{RngExt, SeedableRng};
use std::path::{Path, PathBuf};

/// A model to compress, with labelled data to train, calibrate and search on.
struct Subject {
    name: String,
    model: PathBuf,
    train: PathBuf,
    val: PathBuf,
    /// The chain ends in one output (a binary sigmoid head): fine-tuning refuses it by design.
    single_output: bool,
}

fn bundled(dir: &Path) -> Vec<Subject> {
    let digits = |name: &str, file: &str| Subject {
        name: name.into(),
        model: model_dir(name.split('/').next().unwrap()).join(file),
        train: model_dir(name.split('/').next().unwrap()).join("train.npz"),
        val: model_dir(name.split('/').next().unwrap()).join("test.npz"),
        single_output: false,
    };
    // Fashion-MNIST: 2,000 rows of the committed test split keep the runs short.
    let fashion = Dataset::load(
        &model_dir("fashion-lenet").join("test.npz"),
        &DataKeys::default(),
        true,
    )
    .unwrap();
    let rows: Vec<usize> = (0..2000).collect();
    let small = dir.join("fashion-2k.npz");
    save_npz(&small, &fashion.select(&rows));
    vec![
        digits("digits-sklearn", "model.onnx"),
        digits("digits-sklearn/nozipmap", "model-nozipmap.onnx"),
        digits("digits-torch", "model-legacy.onnx"),
        digits("digits-torch/dynamo", "model-dynamo.onnx"),
        Subject {
            name: "fashion-lenet".into(),
            model: model_dir("fashion-lenet").join("model.onnx"),
            train: small.clone(),
            val: small,
            single_output: false,
        },
    ]
}

fn save_npz(path: &Path, data: &Dataset) {
    let mut npz = NpzWriter::new(std::fs::File::create(path).unwrap());
    match &data.x {
        bean_onnx::data::Features::F32(a) => npz.add_array("x", a).unwrap(),
        bean_onnx::data::Features::F64(a) => npz.add_array("x", a).unwrap(),
        x => npz.add_array("x", &x.slice_f32(0, x.rows())).unwrap(),
    }
    if let Some(y) = &data.y {
        npz.add_array("y", &Array1::from(y.clone())).unwrap();
    }
    npz.finish().unwrap();
}

/// Every fixture, with 256 random rows shaped like its recorded input and labelled by the
/// original model's own predictions.
fn patterns(dir: &Path) -> Vec<Subject> {
    let mut names: Vec<String> = std::fs::read_dir(repo().join("tests/fixtures"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_suffix(".onnx").map(str::to_string)
        })
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let model = fixture(&format!("{name}.onnx"));
            let labelled = labelled_random_rows(&model, &name, dir);
            Subject {
                single_output: name.starts_with("binary"),
                name,
                model,
                train: labelled.clone(),
                val: labelled,
            }
        })
        .collect()
}

fn labelled_random_rows(model: &Path, name: &str, dir: &Path) -> PathBuf {
    let io = model.with_extension("io.npz");
    let recorded = Dataset::load(&io, &DataKeys::default(), false).unwrap();
    let mut shape = recorded.x.shape().to_vec();
    shape[0] = 256;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let n: usize = shape.iter().product();
    let values: Vec<f64> = (0..n).map(|_| rng.random_range(-2.0..2.0)).collect();
    let unlabelled = dir.join(format!("{name}-x.npz"));
    {
        let mut npz = NpzWriter::new(std::fs::File::create(&unlabelled).unwrap());
        let a = ArrayD::from_shape_vec(IxDyn(&shape), values).unwrap();
        match recorded.x {
            bean_onnx::data::Features::F64(_) => npz.add_array("x", &a).unwrap(),
            _ => npz.add_array("x", &a.mapv(|v| v as f32)).unwrap(),
        }
        npz.finish().unwrap();
    }
    let mut data = Dataset::load(&unlabelled, &DataKeys::default(), false).unwrap();
    let m = onnx::load(model).unwrap();
    let target = eval::find_target(&m).unwrap();
    let scores = eval::tensors_on(
        &m,
        &[&target.tensor],
        &data,
        EngineKind::Tract,
        &EngineOptions::default(),
    )
    .unwrap()
    .remove(0);
    data.y = Some(
        scores
            .axis_iter(Axis(0))
            .map(|r| eval::argmax(r.iter().map(|&v| v as f64)) as i64)
            .collect(),
    );
    let labelled = dir.join(format!("{name}.npz"));
    save_npz(&labelled, &data);
    labelled
}

/// Runs bean-onnx with `args`, asserting it succeeds.
fn run(args: &[&std::ffi::OsStr], what: &str) {
    let out = bean().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{what}: bean-onnx {}\n{}",
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Accuracy budget of the searches, in points: what matters here is that a cut is written, and
/// the random 5-to-8-neuron patterns lose several points with their first neuron.
const BUDGET: &str = "30";

/// Writes the subject's model with every command; returns the written files.
fn write_all(s: &Subject, dir: &Path, with_compress: bool) -> Vec<PathBuf> {
    let out = |tag: &str| dir.join(format!("{}-{tag}.onnx", s.name.replace('/', "-")));
    let os = |v: &[&str]| -> Vec<std::ffi::OsString> { v.iter().map(|a| a.into()).collect() };
    let (model, train, val) = (&s.model, &s.train, &s.val);
    let mut jobs: Vec<(String, Vec<std::ffi::OsString>)> = vec![
        ("prune-ratio".into(), os(&["prune", "--ratio", "0.5"])),
        (
            "prune-inputs-nomerge".into(),
            os(&["prune", "--ratio", "0.5", "--inputs", "--no-merge"]),
        ),
        (
            "prune-search".into(),
            os(&["prune", "--max-accuracy-drop", BUDGET, "--inputs", "--val"]),
        ),
    ];
    if let Some((_, args)) = jobs.last_mut() {
        args.push(val.into());
    }
    if !s.single_output {
        jobs.push(("finetune".into(), os(&["finetune", "--epochs", "1"])));
        if with_compress {
            let mut args = os(&[
                "compress",
                "--epochs",
                "1",
                "--heal-epochs",
                "1",
                "--max-accuracy-drop",
                BUDGET,
                "--search-budget",
                BUDGET,
                "--inputs",
                "--val",
            ]);
            args.push(val.into());
            jobs.push(("compress".into(), args));
        }
    }
    let mut written = Vec::new();
    for (tag, mut args) in jobs {
        let o = out(&tag);
        args.insert(1, model.into());
        args.extend(os(&["--data"]));
        args.push(train.into());
        args.extend(os(&["-o"]));
        args.push(o.clone().into());
        let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        run(&refs, &format!("{} {tag}", s.name));
        written.push(o);
    }
    written
}

/// tract's value of `verdict`'s outputs on `x` (the written file, run by our engine layer with
/// tract) against onnxruntime's.
fn tract_agrees(v: &Verdict, x: &Path) {
    let model = onnx::load(&v.model).unwrap();
    let data = Dataset::load(x, &DataKeys::default(), false).unwrap();
    assert!(
        !v.outputs.is_empty(),
        "{}: no float output",
        v.model.display()
    );
    let names: Vec<&str> = v.outputs.keys().map(String::as_str).collect();
    // tract runs no ZipMap: take the probabilities that go into it.
    let computed: Vec<&str> = names
        .iter()
        .map(|&name| {
            let zipmap = model
                .graph
                .nodes
                .iter()
                .find(|n| n.op_type == "ZipMap" && n.outputs.iter().any(|o| o == name));
            zipmap.and_then(|n| n.input(0)).unwrap_or(name)
        })
        .collect();
    let tract = eval::tensors_on(
        &model,
        &computed,
        &data,
        EngineKind::Tract,
        &EngineOptions::default(),
    )
    .unwrap();
    assert_eq!(tract.len(), names.len(), "{}", v.model.display());
    for (name, t) in names.iter().zip(tract) {
        let o = &v.outputs[*name];
        let scale = o.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
        let diff = t
            .iter()
            .zip(o.iter())
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert_eq!(t.len(), o.len(), "{} '{name}'", v.model.display());
        assert!(
            diff <= 1e-4 * scale,
            "{} '{name}': tract and onnxruntime differ by {diff} (largest output {scale})",
            v.model.display()
        );
    }
}

/// The first 64 rows of `data`, as an .npz with `x` only (the oracle's input).
fn first_rows(data: &Path, dir: &Path, name: &str) -> PathBuf {
    let d = Dataset::load(data, &DataKeys::default(), false).unwrap();
    let rows: Vec<usize> = (0..d.rows().min(64)).collect();
    let mut part = d.select(&rows);
    part.y = None;
    let p = dir.join(format!("{}-probe.npz", name.replace('/', "-")));
    save_npz(&p, &part);
    p
}

/// Writes every subject's outputs and has the oracle check them. Subjects whose input the
/// checker itself refuses are skipped: exactly `invalid_inputs`, so that none drops out unseen.
fn check_subjects(
    subjects: Vec<Subject>,
    dir: &Path,
    invalid_inputs: &[&str],
    with_compress: impl Fn(&Subject) -> bool,
) {
    let inputs: Vec<(PathBuf, Option<PathBuf>)> =
        subjects.iter().map(|s| (s.model.clone(), None)).collect();
    let mut written = Vec::new();
    let mut skipped = Vec::new();
    for (s, verdict) in subjects.iter().zip(oracle::check(&inputs)) {
        if let Some(e) = verdict.error {
            eprintln!("skipped {}: the input model itself is invalid: {e}", s.name);
            skipped.push(s.name.as_str());
            continue;
        }
        let probe = first_rows(&s.val, dir, &s.name);
        for w in write_all(s, dir, with_compress(s)) {
            written.push((w, Some(probe.clone())));
        }
    }
    assert_eq!(skipped, invalid_inputs, "inputs the checker refuses");
    assert!(!written.is_empty());
    let verdicts = oracle::check(&written);
    let invalid: Vec<String> = verdicts
        .iter()
        .filter_map(|v| {
            v.error
                .as_ref()
                .map(|e| format!("{}: {e}", v.model.display()))
        })
        .collect();
    assert!(
        invalid.is_empty(),
        "invalid models:\n{}",
        invalid.join("\n")
    );
    for (v, (_, probe)) in verdicts.iter().zip(&written) {
        tract_agrees(v, probe.as_deref().unwrap());
    }
    eprintln!("{} written models valid", verdicts.len());
}

#[test]
fn models_written_from_bundled_models_are_valid() {
    let dir = tempfile::tempdir().unwrap();
    let subjects = bundled(dir.path());
    assert_eq!(subjects.len(), 5);
    check_subjects(subjects, dir.path(), &[], |_| true);
}

/// Digits models whose chain runs through an Identity, a Constant-node weight (inline and in an
/// external file), and Dropout, Reshape, Cast and Flatten between layers: taken in whole, trained
/// and pruned through.
fn crafted(dir: &Path) -> Vec<Subject> {
    use common::crafted::*;
    let d = model_dir("digits-torch");
    [
        ("identity", identity_before_last_gemm(dir)),
        ("constant-weight", constant_node_weight(dir)),
        (
            "constant-external-weight",
            constant_node_external_weight(dir),
        ),
        ("pass-through", pass_through_ops(dir)),
    ]
    .into_iter()
    .map(|(name, model)| Subject {
        name: name.into(),
        model,
        train: d.join("train.npz"),
        val: d.join("test.npz"),
        single_output: false,
    })
    .collect()
}

#[test]
fn models_written_from_chains_through_pass_through_ops_are_valid() {
    let dir = tempfile::tempdir().unwrap();
    let subjects = crafted(dir.path());
    check_subjects(subjects, dir.path(), &[], |_| true);
}

#[test]
fn models_written_from_every_exporter_pattern_are_valid() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let subjects = patterns(dir);
    assert!(subjects.len() >= 27, "{} fixtures", subjects.len());
    // compress on a sample of the patterns (every layout and storage kind), the rest prune and
    // fine-tune only, to keep the suite short.
    let compressed = [
        "gemm_transb1",
        "matmul_add_left_row",
        "external_data",
        "cnn_head",
    ];
    check_subjects(subjects, dir, &[], |s| {
        compressed.contains(&s.name.as_str())
    });
}
