//! Samples/s of one fine-tuning step (forward, cross-entropy, optional BEAN-1 on the hidden
//! layers, backward, Adam) through the ort and tract engines. Prints one JSON line per
//! configuration, in the format `bench/report.py` joins with the PyTorch peer's.
//!
//! `cargo bench --bench step -- [--threads N] [--quick] [--models lenet,wide] [--batches 128,512]
//! [--engines ort,ort-graph,tract]` (ort: the host's fused update; ort-graph: the update in the
//! step graph).
use bean_onnx::engine::{EngineKind, EngineOptions};
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
                let (kind, in_graph_update) = match engine {
                    // ort-graph: the optimizer update inside the step graph, as on a device.
                    "ort" => (EngineKind::Ort, false),
                    "ort-graph" => (EngineKind::Ort, true),
                    "tract" => (EngineKind::Tract, false),
                    other => panic!("unknown engine {other}"),
                };
                for (mode, bean) in [("plain", false), ("bean1", true)] {
                    let spec = spec(sizes, bean);
                    let graph = spec.step_graph();
                    let opts = EngineOptions {
                        threads,
                        in_graph_update,
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
                    let step =
                        |runner: &mut Trainer| runner.step(x.clone(), t.clone()).expect("step");
                    for _ in 0..10 {
                        step(&mut runner);
                    }
                    // Steps per block so a block takes about 0.3 s.
                    let t0 = Instant::now();
                    step(&mut runner);
                    let one = t0.elapsed().as_secs_f64();
                    let per_block = ((0.3 / one).ceil() as usize).clamp(3, 2000);
                    let mut times = Vec::new();
                    for _ in 0..repeats {
                        let t0 = Instant::now();
                        for _ in 0..per_block {
                            step(&mut runner);
                        }
                        times.push(t0.elapsed().as_secs_f64() / per_block as f64);
                    }
                    let m = median(times);
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
