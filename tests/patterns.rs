//! Every exporter pattern in tests/fixtures (made by make_patterns.py with onnx.helper, reference
//! outputs from onnxruntime): the dense chain is found as the manifest says, and our re-exported
//! model gives onnxruntime's outputs in both engines.
mod common;
use bean_onnx::engine::{self, EngineKind, EngineOptions, Value};
use bean_onnx::mlp::{Activation, Head, MlpView};
use bean_onnx::onnx;
use common::*;

fn activation_op(a: &Activation) -> Option<&'static str> {
    match a {
        Activation::None => None,
        Activation::Relu => Some("Relu"),
        Activation::LeakyRelu(_) => Some("LeakyRelu"),
        Activation::Sigmoid => Some("Sigmoid"),
        Activation::Tanh => Some("Tanh"),
        Activation::Gelu { .. } => Some("Gelu"),
    }
}

#[test]
fn every_pattern_is_found_and_runs_like_onnxruntime() {
    require_ort();
    let manifest = json(&fixture("manifest.json"));
    let fixtures = manifest["fixtures"].as_object().unwrap();
    assert!(
        fixtures.len() >= 20,
        "manifest lists {} fixtures",
        fixtures.len()
    );
    for (name, spec) in fixtures {
        let path = fixture(&format!("{name}.onnx"));
        let model = onnx::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let view = MlpView::find(&model.graph).unwrap_or_else(|e| panic!("{name}: {e}"));
        let expect = &spec["expect"];
        let layers: Vec<(usize, usize)> = view.layers.iter().map(|l| (l.n_in, l.n_out)).collect();
        let expected: Vec<(usize, usize)> = expect["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p[0].as_u64().unwrap() as usize,
                    p[1].as_u64().unwrap() as usize,
                )
            })
            .collect();
        assert_eq!(layers, expected, "{name}: layer sizes");
        // The manifest lists the hidden layers' activations ("none" for none) and the head.
        let hidden = &view.layers[..view.layers.len() - 1];
        let acts: Vec<&str> = hidden
            .iter()
            .map(|l| activation_op(&l.activation).unwrap_or("none"))
            .collect();
        let expected_acts: Vec<&str> = expect["activations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(acts, expected_acts, "{name}: activations");
        let head = expect["head"].as_str().unwrap();
        match head {
            "Softmax" | "LogSoftmax" | "logits" => {
                let ours = match view.head {
                    Head::Softmax => "Softmax",
                    Head::LogSoftmax => "LogSoftmax",
                    Head::Logits => "logits",
                };
                assert_eq!(ours, head, "{name}: head");
            }
            // scikit-learn's binary tail: the last layer's Sigmoid, then Sub and Concat outside the chain.
            _ => assert_eq!(
                view.layers.last().unwrap().activation,
                Activation::Sigmoid,
                "{name}"
            ),
        }

        let io = fixture(&format!("{name}.io.npz"));
        let reference = npz_f32(&io, "y");
        let input_name = model.graph.runtime_inputs().next().unwrap().name.clone();
        let x = if spec["io"]["x"][0] == "float64" {
            Value::F64(npz_f64(&io, "x"))
        } else {
            Value::F32(npz_f32(&io, "x"))
        };
        // tract runs no local functions (rich_metadata calls one): engines get the inlined graph,
        // as eval and every other engine user do.
        let mut inlined = model.clone();
        onnx::inline_functions(&mut inlined).unwrap();
        assert!(
            inlined.graph.nodes.iter().all(|n| n.domain != "local.test"),
            "{name}: a call is left"
        );
        let bytes = onnx::to_bytes(&inlined);
        let engines = [EngineKind::Tract, EngineKind::Ort];
        for kind in engines {
            let mut s = engine::load(kind, &bytes, &EngineOptions::default())
                .unwrap_or_else(|e| panic!("{name} on {kind:?}: {e}"));
            let out = s
                .run(&[(&input_name, x.clone())])
                .unwrap_or_else(|e| panic!("{name} on {kind:?}: {e}"));
            let y = out.into_iter().next().unwrap().into_f32().unwrap();
            let d = max_abs_diff(&y, &reference);
            assert!(
                d <= 1e-5,
                "{name} on {kind:?}: max |Δ| = {d} against onnxruntime"
            );
        }
    }
}

/// The effective weights and biases MlpView reads (layouts, alpha/beta, bias shapes) give
/// onnxruntime's outputs through a plain ndarray forward pass.
#[test]
fn effective_weights_reproduce_onnxruntime() {
    let manifest = json(&fixture("manifest.json"));
    let mut checked = 0;
    for name in manifest["fixtures"].as_object().unwrap().keys() {
        let model = onnx::load(&fixture(&format!("{name}.onnx"))).unwrap();
        let view = MlpView::find(&model.graph).unwrap();
        let input = model.graph.runtime_inputs().next().unwrap();
        let plain = view.input() == input.name
            && view
                .layers
                .iter()
                .all(|l| !matches!(l.activation, Activation::Gelu { tanh_approx: false }));
        let io = fixture(&format!("{name}.io.npz"));
        if !plain || npz_f32(&io, "y").shape()[1] != view.n_classes() {
            continue; // a prelude or tail the plain pass does not model, or exact Gelu (erf)
        }
        let mut h = npz_f32(&io, "x")
            .into_dimensionality::<ndarray::Ix2>()
            .unwrap()
            .mapv(f64::from);
        for l in &view.layers {
            let w = l.weight_matrix(&model.graph).mapv(f64::from);
            let b = l.bias_vector(&model.graph).mapv(f64::from);
            let z = h.dot(&w) + &b.insert_axis(ndarray::Axis(0));
            h = z.mapv(|v| match l.activation {
                Activation::None => v,
                Activation::Relu => v.max(0.0),
                Activation::LeakyRelu(a) => {
                    if v > 0.0 {
                        v
                    } else {
                        a as f64 * v
                    }
                }
                Activation::Sigmoid => 1.0 / (1.0 + (-v).exp()),
                Activation::Tanh => v.tanh(),
                Activation::Gelu { .. } => {
                    0.5 * v
                        * (1.0
                            + ((2.0 / std::f64::consts::PI).sqrt() * (v + 0.044715 * v.powi(3)))
                                .tanh())
                }
            });
        }
        for mut row in h.rows_mut() {
            let m = row.fold(f64::MIN, |a, &b| a.max(b));
            let log_sum = row.iter().map(|v| (v - m).exp()).sum::<f64>().ln() + m;
            match view.head {
                Head::Logits => {}
                Head::Softmax => row.mapv_inplace(|v| (v - log_sum).exp()),
                Head::LogSoftmax => row.mapv_inplace(|v| v - log_sum),
            }
        }
        let d = max_abs_diff(&h.mapv(|v| v as f32).into_dyn(), &npz_f32(&io, "y"));
        assert!(d <= 1e-4, "{name}: max |Δ| {d} against onnxruntime");
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} fixtures checked");
}
