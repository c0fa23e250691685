//! Samples/s of one fine-tuning step (forward, cross-entropy, optional BEAN-1 on the hidden
//! layers, backward, Adam) through the ort and tract engines, and of the step's matrix products
//! alone (mode `gemm-only`: the roofline on the same engine and threads). Prints one JSON line per
//! configuration, in the format `bench/report.py` joins with the PyTorch peer's.
//!
//! `cargo bench --bench step -- [--threads N] [--quick] [--models lenet,wide] [--batches 128,512]
//! [--engines ort,ort-graph,ort-bound,tract]` (ort: the host's fused update; ort-graph: the update in the
//! step graph).
use bean_onnx::engine::{EngineKind, EngineOptions, StepPlacement};
use bean_onnx::mlp::Activation;
use bean_onnx::train::step::*;
use bean_onnx::train::Trainer;
use ndarray::{Array2, ArrayD};
use std::time::Instant;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Deterministic pseudo-random normal-ish values (sum of uniforms).
fn random(rows: usize, cols: usize, scale: f32, seed: &mut u64) -> Array2<f32> {
    Array2::from_shape_fn((rows, cols), |_| {
        let mut s = 0.0f32;
        for _ in 0..4 {
            *seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            s += (*seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
        }
        s * scale
    })
}

fn spec(sizes: &[usize], bean: bool) -> StepSpec {
    let n = sizes.len() - 1;
    StepSpec {
        layers: (0..n)
            .map(|l| LayerSpec {
                n_in: sizes[l],
                n_out: sizes[l + 1],
                activation: if l + 1 < n {
                    Activation::Relu
                } else {
                    Activation::None
                },
                has_bias: true,
                bean: (bean && l > 0).then_some(Bean {
                    variant: BeanVariant::One,
                    alpha: 0.05,
                    gamma: 1.0,
                }),
                baseline: None,
            })
            .collect(),
        loss: LossKind::CrossEntropy,
        optimizer: Optimizer::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        },
    }
}

/// The matrix products of one plain step and nothing else — forward h_l·W_l, backward
/// h_lᵀ·g_l and g_l·W_lᵀ (l ≥ 1) — with the step's shapes, fed with fixed inputs: the GEMM-only
/// time a step cannot beat on the same engine and threads.
fn gemm_graph(sizes: &[usize]) -> (bean_onnx::ir::Model, Vec<(String, Vec<usize>)>) {
    use bean_onnx::ir::builder::GraphBuilder;
    use bean_onnx::tensor::DataType;
    let mut g = GraphBuilder::new("gemms", DataType::Float);
    let mut inputs = Vec::new();
    for l in 0..sizes.len() - 1 {
        let (n_in, n_out) = (sizes[l], sizes[l + 1]);
        let h = g.input(&format!("h{l}"), &[None, Some(n_in)]);
        let w = g.input(&format!("w{l}"), &[Some(n_in), Some(n_out)]);
        let grad = g.input(&format!("g{l}"), &[None, Some(n_out)]);
        inputs.push((format!("h{l}"), vec![0, n_in]));
        inputs.push((format!("w{l}"), vec![n_in, n_out]));
        inputs.push((format!("g{l}"), vec![0, n_out]));
        let z = g.matmul(&h, &w);
        g.output(&z, &format!("z{l}"));
        let d_w = g.gemm(&h, &grad, true, false);
        g.output(&d_w, &format!("dw{l}"));
        if l > 0 {
            let d_h = g.gemm(&grad, &w, false, true);
            g.output(&d_h, &format!("dh{l}"));
        }
    }
    (g.into_model(), inputs)
}

/// Median ms of the GEMM-only graph of `sizes` at `batch` rows.
fn gemm_ms(
    kind: EngineKind,
    opts: &EngineOptions,
    sizes: &[usize],
    batch: usize,
    repeats: usize,
) -> f64 {
    use bean_onnx::engine::Value;
    let (model, shapes) = gemm_graph(sizes);
    let mut session = bean_onnx::engine::load(kind, &bean_onnx::onnx::to_bytes(&model), opts)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut seed = 5u64;
    let feed: Vec<(String, Value)> = shapes
        .into_iter()
        .map(|(name, shape)| {
            let rows = if shape[0] == 0 { batch } else { shape[0] };
            (
                name,
                Value::F32(random(rows, shape[1], 0.1, &mut seed).into_dyn()),
            )
        })
        .collect();
    let refs: Vec<(&str, Value)> = feed.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
    time_blocks(repeats, || {
        session.run(&refs).expect("gemms");
    })
}

/// Median seconds per call of `f`, over `repeats` blocks of about 0.3 s after 10 warm-up calls.
fn time_blocks(repeats: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..10 {
        f();
    }
    let t0 = Instant::now();
    f();
    let per_block = ((0.3 / t0.elapsed().as_secs_f64()).ceil() as usize).clamp(3, 2000);
    let times = (0..repeats)
        .map(|_| {
            let t0 = Instant::now();
            for _ in 0..per_block {
                f();
            }
            t0.elapsed().as_secs_f64() / per_block as f64
        })
        .collect();
    median(times)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threads: usize = arg(&args, "--threads")
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let quick = args.iter().any(|a| a == "--quick");
    let models = arg(&args, "--models").unwrap_or_else(|| "lenet,wide".into());
    let batches = arg(&args, "--batches").unwrap_or_else(|| "128,512".into());
    let engines = arg(&args, "--engines").unwrap_or_else(|| "ort,ort-graph,tract".into());
    let repeats = if quick { 3 } else { 7 };
    for model in models.split(',') {
        let sizes: &[usize] = match model {
            "lenet" => &[784, 300, 100, 10],
            "wide" => &[784, 1024, 1024, 10],
            other => panic!("unknown model {other}"),
        };
        for batch in batches
            .split(',')
            .map(|b| b.parse::<usize>().expect("batch size"))
        {
            for engine in engines.split(',') {
                let (kind, step) = match engine {
                    // ort-graph: the optimizer update inside the step graph; ort-bound: the same
                    // with the state bound in place, as on a device.
                    "ort" => (EngineKind::Ort, StepPlacement::Auto),
                    "ort-graph" => (EngineKind::Ort, StepPlacement::Graph),
                    "ort-bound" => (EngineKind::Ort, StepPlacement::GraphBound),
                    "tract" => (EngineKind::Tract, StepPlacement::Auto),
                    other => panic!("unknown engine {other}"),
                };
                if matches!(engine, "ort" | "tract") {
                    let opts = EngineOptions {
                        threads,
                        ..Default::default()
                    };
                    let m = gemm_ms(kind, &opts, sizes, batch, repeats);
                    println!(
                        "{{\"peer\": \"bean-onnx-{engine}\", \"model\": \"{model}\", \"batch\": {batch}, \"mode\": \"gemm-only\", \
                         \"threads\": {threads}, \"step_ms_median\": {:.4}, \"samples_per_second\": {:.1}, \"repeats\": {repeats}}}",
                        m * 1e3,
                        batch as f64 / m
                    );
                }
                for (mode, bean) in [("plain", false), ("bean1", true)] {
                    let spec = spec(sizes, bean);
                    let graph = spec.step_graph();
                    let opts = EngineOptions {
                        threads,
                        step,
                        ..Default::default()
                    };
                    let n_params = spec.params().len();
                    let mut runner = Trainer::new(kind, &graph, n_params, &opts, 1e-3)
                        .unwrap_or_else(|e| panic!("{e}"));
                    let mut seed = 42u64;
                    let state: Vec<ArrayD<f32>> = graph
                        .state
                        .iter()
                        .enumerate()
                        .map(|(i, b)| {
                            let shape = &b.shape;
                            if i < n_params && shape.len() == 2 {
                                let scale = (2.0 / shape[0] as f32).sqrt();
                                random(shape[0], shape[1], scale, &mut seed).into_dyn()
                            } else {
                                ArrayD::zeros(shape.clone())
                            }
                        })
                        .collect();
                    runner.set_state(&state, 0).expect("state");
                    let x = random(batch, 784, 1.0, &mut seed).into_dyn();
                    let mut t = ArrayD::<f32>::zeros(vec![batch, 10]);
                    for b in 0..batch {
                        t[[b, (b * 7) % 10]] = 1.0;
                    }
                    let m = time_blocks(repeats, || {
                        runner.step(x.clone(), t.clone()).expect("step");
                    });
                    println!(
                        "{{\"peer\": \"bean-onnx-{engine}\", \"model\": \"{model}\", \"batch\": {batch}, \"mode\": \"{mode}\", \
                         \"threads\": {threads}, \"step_ms_median\": {:.4}, \"samples_per_second\": {:.1}, \"repeats\": {repeats}}}",
                        m * 1e3,
                        batch as f64 / m
                    );
                }
            }
        }
    }
}
