//! The bundled real models (models/*: skl2onnx, torch legacy and dynamo exporters): they import,
//! inspect, evaluate to exactly the accuracy onnxruntime gave when they were made (recorded in
//! model.json), and write back without change.
mod common;
use bean_onnx::data::{DataKeys, Dataset};
use bean_onnx::engine::{EngineKind, EngineOptions};
use bean_onnx::onnx::{self, ExternalDataMode, SaveOptions};
use bean_onnx::{eval, inspect};
use common::*;

struct Case {
    dir: &'static str,
    file: &'static str,
    layers: &'static [(usize, usize)],
}

const CASES: &[Case] = &[
    Case {
        dir: "digits-sklearn",
        file: "model.onnx",
        layers: &[
            (64, 32),
            (32, 32),
            (32, 32),
            (32, 32),
            (32, 32),
            (32, 32),
            (32, 32),
            (32, 32),
            (32, 10),
        ],
    },
    Case {
        dir: "digits-sklearn",
        file: "model-nozipmap.onnx",
        layers: &[
            (64, 32),
            (32, 32),
            (32, 32),
            (32, 32),
            (32, 32),
            (32, 32),
            (32, 32),
            (32, 32),
            (32, 10),
        ],
    },
    Case {
        dir: "digits-torch",
        file: "model-legacy.onnx",
        layers: &[(64, 128), (128, 64), (64, 10)],
    },
    Case {
        dir: "digits-torch",
        file: "model-dynamo.onnx",
        layers: &[(64, 128), (128, 64), (64, 10)],
    },
    Case {
        dir: "fashion-lenet",
        file: "model.onnx",
        layers: &[(784, 300), (300, 100), (100, 10)],
    },
];

fn recorded_accuracy(case: &Case) -> f64 {
    let record = json(&model_dir(case.dir).join("model.json"));
    record["files"][case.file]["ort_accuracy"]
        .as_f64()
        .or_else(|| record["ort_accuracy"].as_f64())
        .unwrap()
}

#[test]
fn real_models_import_and_inspect() {
    for case in CASES {
        let path = model_dir(case.dir).join(case.file);
        let model = onnx::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let r = inspect::report(&model).unwrap();
        let dims: Vec<(usize, usize)> = r.dense_layers.iter().map(|l| (l.n_in, l.n_out)).collect();
        assert_eq!(dims, case.layers, "{}", path.display());
        let macs: usize = case.layers.iter().map(|(i, o)| i * o).sum();
        assert_eq!(r.macs_total, macs);
        assert!(
            model.warnings.is_empty(),
            "{}: {:?}",
            path.display(),
            model.warnings
        );
    }
}

#[test]
fn eval_matches_onnxruntime_accuracy_in_both_engines() {
    require_ort();
    for case in CASES {
        let path = model_dir(case.dir).join(case.file);
        let model = onnx::load(&path).unwrap();
        let data = Dataset::load(
            &model_dir(case.dir).join("test.npz"),
            &DataKeys::default(),
            true,
        )
        .unwrap();
        let expected = recorded_accuracy(case);
        for kind in [EngineKind::Tract, EngineKind::Ort] {
            let r = eval::evaluate(&model, &data, kind, &EngineOptions::default())
                .unwrap_or_else(|e| panic!("{} on {kind:?}: {e}", path.display()));
            assert_eq!(r.samples, data.rows());
            assert!(
                (r.accuracy - expected).abs() < 1e-9,
                "{} on {kind:?}: accuracy {} but onnxruntime gave {expected}",
                path.display(),
                r.accuracy
            );
        }
    }
}

#[test]
fn inline_models_write_back_byte_for_byte() {
    for case in CASES.iter().filter(|c| !c.file.contains("dynamo")) {
        let path = model_dir(case.dir).join(case.file);
        let original = std::fs::read(&path).unwrap();
        let model = onnx::load(&path).unwrap();
        assert!(
            onnx::to_bytes(&model) == original,
            "{}: bytes differ after a round trip",
            path.display()
        );
    }
}

#[test]
fn external_data_model_writes_back_external_or_inline_with_identical_outputs() {
    let src = model_dir("digits-torch").join("model-dynamo.onnx");
    let x = npz_f32(&model_dir("digits-torch").join("test.npz"), "x");
    let reference = tract_run_file(&src, &x);
    let model = onnx::load(&src).unwrap();
    let dir = tempfile::tempdir().unwrap();

    let external = dir.path().join("external.onnx");
    let written = onnx::save(&model, &external, &SaveOptions::default()).unwrap();
    assert_eq!(written.len(), 2, "model and data file: {written:?}");
    assert!(dir.path().join("external.onnx.data").is_file());
    assert!(
        tract_run_file(&external, &x) == reference,
        "external copy: outputs differ"
    );

    let inline = dir.path().join("inline.onnx");
    let opts = SaveOptions {
        external: ExternalDataMode::Inline,
        ..Default::default()
    };
    assert_eq!(onnx::save(&model, &inline, &opts).unwrap().len(), 1);
    assert!(!dir.path().join("inline.onnx.data").exists());
    assert!(
        tract_run_file(&inline, &x) == reference,
        "inline copy: outputs differ"
    );

    // Reading the written model again gives the same tensors.
    let again = onnx::load(&external).unwrap();
    for (a, b) in model
        .graph
        .initializers
        .iter()
        .zip(&again.graph.initializers)
    {
        assert_eq!(a.data, b.data, "tensor {}", a.name);
    }
}
