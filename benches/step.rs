//! Samples/s of one fine-tuning step (forward, cross-entropy, optional BEAN-1 on the hidden
//! layers, backward, Adam) through the ort and tract engines, and of the step's matrix products
//! alone (mode `gemm-only`: the roofline on the same engine and threads).
//!
//! `cargo bench --bench step -- [--threads N] [--quick] [--models lenet,wide] [--batches 128,512]
//! [--engines ort,ort-graph,ort-bound,tract]` prints one JSON line per configuration (ort: the
//! host's fused update; ort-graph: the update in the step graph; ort-bound: the same with the
//! state bound in place, as on a device; any ort engine with `-spin` or `-nospin` forces ONNX
//! Runtime's spin-waiting on or off).
//!
//! `cargo bench --bench step -- --serve [--threads N]` times one block per request instead, for
//! `bench/paired.py`, which alternates blocks of every peer so that each ratio compares blocks
//! run seconds apart: requests are lines `<engine> <model> <batch> <mode> <seconds>` on stdin,
//! each answered by one JSON line `{"samples_per_second": …, "steps": …}` on stdout. The work of
//! the latest (model, batch) is kept between requests; the first request of each is a warm-up.
use bean_onnx::engine::ort_fixed_run::OrtFixedRun;
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

/// One unit of timed work: a step of a runner, or one run of the GEMM-only graph.
type Work = Box<dyn FnMut()>;

/// The layer sizes of a benchmark model.
fn sizes(model: &str) -> Result<&'static [usize], String> {
    match model {
        "lenet" => Ok(&[784, 300, 100, 10]),
        "wide" => Ok(&[784, 1024, 1024, 10]),
        other => Err(format!("unknown model {other} (lenet, wide)")),
    }
}

/// The engine and where its update runs.
fn engine(name: &str) -> Result<(EngineKind, StepPlacement), String> {
    match name.trim_end_matches("-nospin").trim_end_matches("-spin") {
        "ort" => Ok((EngineKind::Ort, StepPlacement::Auto)),
        "ort-graph" => Ok((EngineKind::Ort, StepPlacement::Graph)),
        "ort-bound" => Ok((EngineKind::Ort, StepPlacement::GraphBound)),
        "tract" => Ok((EngineKind::Tract, StepPlacement::Auto)),
        other => Err(format!(
            "unknown engine {other} (ort, ort-graph, ort-bound, tract)"
        )),
    }
}

/// ONNX Runtime's spin-waiting as an engine name's suffix asks: `-spin`, `-nospin`, or the default.
fn spin_wait(engine_name: &str) -> Option<bool> {
    if engine_name.ends_with("-nospin") {
        Some(false)
    } else if engine_name.ends_with("-spin") {
        Some(true)
    } else {
        None
    }
}

/// The work of `mode` (`plain`, `bean1` or `gemm-only`) on `engine` at `batch` rows.
fn work(
    engine_name: &str,
    model: &str,
    batch: usize,
    mode: &str,
    threads: usize,
) -> Result<Work, String> {
    let sizes = sizes(model)?;
    let (kind, step) = engine(engine_name)?;
    let opts = EngineOptions {
        threads,
        step,
        spin_wait: spin_wait(engine_name),
        ..Default::default()
    };
    match mode {
        "gemm-only" => gemm_work(kind, &opts, sizes, batch),
        "plain" => step_work(kind, &opts, sizes, batch, false),
        "bean1" => step_work(kind, &opts, sizes, batch, true),
        other => Err(format!("unknown mode {other} (plain, bean1, gemm-only)")),
    }
}

/// Runs of the GEMM-only graph of `sizes` at `batch` rows. On ort every input and output is
/// bound once ([`OrtFixedRun`]), so a run is the products alone; tract's runs also pass the
/// inputs in and the outputs out.
fn gemm_work(
    kind: EngineKind,
    opts: &EngineOptions,
    sizes: &[usize],
    batch: usize,
) -> Result<Work, String> {
    use bean_onnx::engine::Value;
    let (model, shapes) = gemm_graph(sizes);
    let bytes = bean_onnx::onnx::to_bytes(&model);
    let mut seed = 5u64;
    let arrays: Vec<ArrayD<f32>> = shapes
        .iter()
        .map(|(_, shape)| {
            let rows = if shape[0] == 0 { batch } else { shape[0] };
            random(rows, shape[1], 0.1, &mut seed).into_dyn()
        })
        .collect();
    if kind == EngineKind::Ort {
        let inputs: Vec<(&str, ArrayD<f32>)> =
            shapes.iter().map(|(n, _)| n.as_str()).zip(arrays).collect();
        let outputs = gemm_outputs(sizes, batch);
        let outputs: Vec<(&str, Vec<usize>)> = outputs
            .iter()
            .map(|(n, s)| (n.as_str(), s.clone()))
            .collect();
        let mut run =
            OrtFixedRun::load(&bytes, &inputs, &outputs, opts).map_err(|e| e.to_string())?;
        return Ok(Box::new(move || run.run().expect("gemms")));
    }
    let mut session = bean_onnx::engine::load(kind, &bytes, opts).map_err(|e| e.to_string())?;
    let feed: Vec<(String, Value)> = shapes
        .into_iter()
        .map(|(n, _)| n)
        .zip(arrays.into_iter().map(Value::F32))
        .collect();
    Ok(Box::new(move || {
        let refs: Vec<(&str, Value)> = feed.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
        session.run(&refs).expect("gemms");
    }))
}

/// The outputs of [`gemm_graph`] and their shapes at `batch` rows.
fn gemm_outputs(sizes: &[usize], batch: usize) -> Vec<(String, Vec<usize>)> {
    let mut v = Vec::new();
    for l in 0..sizes.len() - 1 {
        let (n_in, n_out) = (sizes[l], sizes[l + 1]);
        v.push((format!("z{l}"), vec![batch, n_out]));
        v.push((format!("dw{l}"), vec![n_in, n_out]));
        if l > 0 {
            v.push((format!("dh{l}"), vec![batch, n_in]));
        }
    }
    v
}

/// Adam steps (with BEAN-1 on the hidden layers when `bean`) at `batch` rows.
fn step_work(
    kind: EngineKind,
    opts: &EngineOptions,
    sizes: &[usize],
    batch: usize,
    bean: bool,
) -> Result<Work, String> {
    let spec = spec(sizes, bean);
    let graph = spec.step_graph();
    let n_params = spec.params().len();
    let mut runner = Trainer::new(kind, &graph, n_params, opts, 1e-3).map_err(|e| e.to_string())?;
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
    runner.set_state(&state, 0).map_err(|e| e.to_string())?;
    let x = random(batch, sizes[0], 1.0, &mut seed).into_dyn();
    let classes = sizes[sizes.len() - 1];
    let mut t = ArrayD::<f32>::zeros(vec![batch, classes]);
    for b in 0..batch {
        t[[b, (b * 7) % classes]] = 1.0;
    }
    Ok(Box::new(move || {
        runner.step(x.clone(), t.clone()).expect("step");
    }))
}

/// Median seconds per call of `f` over `repeats` blocks of at least 0.3 s, after one such block
/// of warm-up.
fn time_blocks(repeats: usize, f: &mut Work) -> f64 {
    time_block(0.3, f);
    let times = (0..repeats)
        .map(|_| {
            let (calls, seconds) = time_block(0.3, f);
            seconds / calls as f64
        })
        .collect();
    median(times)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    v[v.len() / 2]
}

/// Calls `f` until at least `seconds` have passed; returns (calls, seconds taken).
fn time_block(seconds: f64, f: &mut Work) -> (usize, f64) {
    let t0 = Instant::now();
    let mut calls = 0;
    loop {
        f();
        calls += 1;
        let elapsed = t0.elapsed().as_secs_f64();
        if elapsed >= seconds {
            return (calls, elapsed);
        }
    }
}

/// One request of the serve mode: `<engine> <model> <batch> <mode> <seconds>`.
struct Request {
    engine: String,
    model: String,
    batch: usize,
    mode: String,
    seconds: f64,
}

fn parse_request(line: &str) -> Result<Request, String> {
    let f: Vec<&str> = line.split_whitespace().collect();
    let [engine, model, batch, mode, seconds] = f[..] else {
        return Err(format!(
            "expected `<engine> <model> <batch> <mode> <seconds>`, got {line:?}"
        ));
    };
    Ok(Request {
        engine: engine.into(),
        model: model.into(),
        batch: batch.parse().map_err(|_| format!("bad batch {batch:?}"))?,
        mode: mode.into(),
        seconds: seconds
            .parse()
            .map_err(|_| format!("bad seconds {seconds:?}"))?,
    })
}

/// Answers requests from stdin until it closes; keeps the work of the latest (model, batch).
fn serve(threads: usize) {
    use std::collections::HashMap;
    use std::io::{BufRead, Write};
    let mut cache: HashMap<(String, String), Work> = HashMap::new();
    let mut current: Option<(String, usize)> = None;
    let stdout = std::io::stdout();
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("stdin");
        if line.trim().is_empty() {
            continue;
        }
        let answer = parse_request(&line).and_then(|r| {
            let config = Some((r.model.clone(), r.batch));
            if current != config {
                cache.clear();
                current = config;
            }
            let key = (r.engine.clone(), r.mode.clone());
            if !cache.contains_key(&key) {
                let mut w = work(&r.engine, &r.model, r.batch, &r.mode, threads)?;
                time_block(r.seconds, &mut w);
                cache.insert(key.clone(), w);
            }
            let (calls, secs) = time_block(r.seconds, cache.get_mut(&key).expect("inserted"));
            Ok(format!(
                "{{\"samples_per_second\": {:.1}, \"steps\": {calls}}}",
                (calls * r.batch) as f64 / secs
            ))
        });
        let reply = answer.unwrap_or_else(|e| format!("{{\"error\": {e:?}}}"));
        let mut out = stdout.lock();
        writeln!(out, "{reply}")
            .and_then(|_| out.flush())
            .expect("stdout");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threads: usize = arg(&args, "--threads")
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    if args.iter().any(|a| a == "--serve") {
        return serve(threads);
    }
    let quick = args.iter().any(|a| a == "--quick");
    let models = arg(&args, "--models").unwrap_or_else(|| "lenet,wide".into());
    let batches = arg(&args, "--batches").unwrap_or_else(|| "128,512".into());
    let engines = arg(&args, "--engines").unwrap_or_else(|| "ort,ort-graph,tract".into());
    let repeats = if quick { 3 } else { 7 };
    for model in models.split(',') {
        for batch in batches
            .split(',')
            .map(|b| b.parse::<usize>().expect("batch size"))
        {
            for engine in engines.split(',') {
                let mut modes = vec!["plain", "bean1"];
                if matches!(engine, "ort" | "tract") {
                    modes.insert(0, "gemm-only");
                }
                for mode in modes {
                    let mut w =
                        work(engine, model, batch, mode, threads).unwrap_or_else(|e| panic!("{e}"));
                    let s = time_blocks(repeats, &mut w);
                    println!(
                        "{{\"peer\": \"bean-onnx-{engine}\", \"model\": \"{model}\", \"batch\": {batch}, \"mode\": \"{mode}\", \
                         \"threads\": {threads}, \"step_ms_median\": {:.4}, \"samples_per_second\": {:.1}, \"repeats\": {repeats}}}",
                        s * 1e3,
                        batch as f64 / s
                    );
                }
            }
        }
    }
}
