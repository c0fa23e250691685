//! `prune`, `validate` and `assemblies`.
use super::{check_outputs, load_model, DataArgs, EngineArgs};
use anyhow::{bail, Context, Result};
use bean_onnx::data::Dataset;
use bean_onnx::fsutil::{Output, OutputLock};
use bean_onnx::onnx::{self, SaveOptions};
use bean_onnx::prune::{self, Allocation, Method, PruneConfig};
use bean_onnx::train::{self, FinetuneConfig};
use bean_onnx::{assemblies, inspect, plot, validate};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args)]
#[command(allow_negative_numbers = true)]
pub struct PruneArgs {
    /// The ONNX model to prune (typically fine-tuned with BEAN first).
    pub model: PathBuf,
    /// Where to write the pruned model (never over the input).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Calibration data (.npz): activations are measured on it (labels needed only for healing).
    #[command(flatten)]
    pub data: DataArgs,
    /// Fraction of each hidden layer's neurons to remove, in [0, 1).
    #[arg(
        long,
        required_unless_present = "max_accuracy_drop",
        conflicts_with = "max_accuracy_drop"
    )]
    pub ratio: Option<f64>,
    /// Instead of --ratio: the largest cut within this many accuracy points on --val.
    #[arg(long, requires = "val")]
    pub max_accuracy_drop: Option<f64>,
    /// Labelled validation data for --max-accuracy-drop.
    #[arg(long)]
    pub val: Option<PathBuf>,
    /// Keep widths that are multiples of K (matmul tiles: 8, 16, 32).
    #[arg(long, default_value_t = 1, value_parser = super::count_in(1, 4096))]
    pub round_to: usize,
    /// Also drop input features that are constant on the data or unused (a Gather keeps the interface).
    #[arg(long)]
    pub inputs: bool,
    /// assembly: activity-weighted scores with constant folding and merging; magnitude: smallest
    /// outgoing weights, no data, no compensation.
    #[arg(long, value_enum, default_value = "assembly")]
    pub method: Method,
    /// Do not merge near-duplicate neurons (remove and fold means only).
    #[arg(long)]
    pub no_merge: bool,
    /// How the cut is shared among hidden layers: uniform (the same fraction of each) or global
    /// (the cheapest neurons of the whole chain).
    #[arg(long, value_enum, default_value = "uniform")]
    pub allocation: Allocation,
    /// Calibration rows used (evenly spaced; 2 to 10000000).
    #[arg(long, default_value_t = 10_000, value_parser = super::count_in(2, 10_000_000))]
    pub calib_rows: usize,
    /// Epochs of plain fine-tuning after pruning (on --data, which then needs labels).
    #[arg(long, default_value_t = 0)]
    pub heal_epochs: usize,
    /// Learning rate of the healing fine-tune.
    #[arg(long, default_value_t = 1e-4)]
    pub heal_lr: f64,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Print a JSON report instead of text.
    #[arg(long)]
    pub json: bool,
}

#[allow(clippy::too_many_arguments)]
pub fn prune_config(
    args_ratio: f64,
    round_to: usize,
    method: Method,
    no_merge: bool,
    inputs: bool,
    calib_rows: usize,
    engine: &EngineArgs,
    progress: bool,
    allocation: Allocation,
) -> Result<PruneConfig> {
    let (engine, engine_opts) = engine.resolve()?;
    Ok(PruneConfig {
        ratio: args_ratio,
        round_to,
        method,
        merge: !no_merge,
        inputs,
        calib_rows,
        progress,
        allocation,
        engine,
        engine_opts,
    })
}

pub fn run_prune(args: PruneArgs) -> Result<ExitCode> {
    if let Some(r) = args.ratio {
        if !(0.0..1.0).contains(&r) {
            bail!("--ratio must be in [0, 1), got {r}");
        }
    }
    let cfg = prune_config(
        args.ratio.unwrap_or(0.0),
        args.round_to,
        args.method,
        args.no_merge,
        args.inputs,
        args.calib_rows,
        &args.engine,
        !args.json,
        args.allocation,
    )?;
    let model = load_model(&args.model)?;
    let mut inputs: Vec<&Path> = vec![&args.data.data];
    inputs.extend(args.val.as_deref());
    let outputs = super::model_outputs(&args.output);
    let protected = check_outputs(&model, &args.model, &inputs, &super::as_outputs(&outputs))?;
    let _lock = OutputLock::acquire(&args.output)?;
    let calib = Dataset::load(&args.data.data, &args.data.keys(), false)?;
    if args.heal_epochs > 0 && calib.y.is_none() {
        bail!("--heal-epochs needs labels in {}", args.data.data.display());
    }
    let heal_base = FinetuneConfig {
        engine: cfg.engine,
        engine_opts: cfg.engine_opts,
        ..Default::default()
    };
    // Healing runs on every search candidate before it is judged, and on a fixed-ratio result.
    let heal = |m| train::heal(m, &calib, &heal_base, args.heal_epochs, args.heal_lr);
    let (pruned, report, search) = match args.max_accuracy_drop {
        Some(p) => {
            let val = Dataset::load(
                args.val.as_ref().expect("clap requires --val"),
                &args.data.keys(),
                true,
            )?;
            let (m, r, s) = prune::search(&model, &calib, &val, &cfg, p, None, Some(&heal))
                .with_context(|| format!("cannot prune {}", args.model.display()))?;
            (m, r, Some(s))
        }
        None => {
            let (m, r) = prune::prune(&model, &calib, &cfg)
                .with_context(|| format!("cannot prune {}", args.model.display()))?;
            (heal(m)?, r, None)
        }
    };
    onnx::save(
        &pruned,
        &args.output,
        &SaveOptions {
            protected,
            ..Default::default()
        },
    )
    .with_context(|| format!("cannot write {}", args.output.display()))?;
    let before = inspect::report(&model)?;
    let after = inspect::report(&pruned)?;
    let out = serde_json::json!({
        "output": args.output,
        "ratio": report.ratio,
        "method": report.method,
        "hidden_before": report.hidden_before,
        "hidden_after": report.hidden_after,
        "layers": report.layers,
        "inputs": report.inputs,
        "search": search,
        "heal_epochs": args.heal_epochs,
        "params_before": before.params_total,
        "params_after": after.params_total,
        "macs_before": before.macs_total,
        "macs_after": after.macs_total,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        if let Some(s) = &search {
            println!(
                "chose ratio {:.2}: validation accuracy {:.4} (baseline {:.4}, budget {} points)",
                s.chosen_ratio, s.chosen_accuracy, s.baseline_accuracy, s.max_accuracy_drop
            );
        }
        for l in &report.layers {
            let c = &l.counts;
            println!(
                "hidden layer {}: {} → {} neurons ({} constant folded, {} merged, {} removed)",
                l.layer, c.n_before, c.n_after, c.constant_removed, c.merged, c.weak_removed
            );
        }
        if let Some(i) = &report.inputs {
            println!(
                "inputs: {} → {} ({} constant folded, {} unused)",
                i.before, i.after, i.constant, i.unused
            );
        }
        println!(
            "wrote {}: params {} → {}, dense MACs {} → {}",
            args.output.display(),
            before.params_total,
            after.params_total,
            before.macs_total,
            after.macs_total
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
#[command(allow_negative_numbers = true)]
pub struct ValidateArgs {
    /// The original model.
    pub original: PathBuf,
    /// The candidate that should replace it.
    pub candidate: PathBuf,
    /// Labelled test data.
    #[command(flatten)]
    pub data: DataArgs,
    /// Fail (exit 3) when the candidate loses more than this many accuracy points.
    #[arg(long)]
    pub max_accuracy_drop: Option<f64>,
    /// Print a JSON report instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run_validate(args: ValidateArgs) -> Result<ExitCode> {
    let a = load_model(&args.original)?;
    let b = load_model(&args.candidate)?;
    let data = Dataset::load(&args.data.data, &args.data.keys(), true)?;
    let v = validate::validate(
        validate::Subject {
            model: &a,
            file_bytes: validate::file_bytes(&a, &args.original),
        },
        validate::Subject {
            model: &b,
            file_bytes: validate::file_bytes(&b, &args.candidate),
        },
        &data,
        args.max_accuracy_drop,
    )
    .with_context(|| {
        format!(
            "cannot validate {} against {}",
            args.candidate.display(),
            args.original.display()
        )
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{:<22} {:>12} {:>12}", "", "original", "candidate");
        let (o, c) = (&v.original, &v.candidate);
        println!(
            "{:<22} {:>12.4} {:>12.4}",
            "accuracy", o.accuracy, c.accuracy
        );
        println!("{:<22} {:>12} {:>12}", "params", o.params, c.params);
        println!(
            "{:<22} {:>12} {:>12}",
            "dense MACs / sample", o.macs, c.macs
        );
        println!(
            "{:<22} {:>12} {:>12}",
            "file bytes", o.file_bytes, c.file_bytes
        );
        println!(
            "{:<22} {:>12.4} {:>12.4}",
            "latency ms, batch 1", o.latency_ms_batch1, c.latency_ms_batch1
        );
        println!(
            "{:<22} {:>12.4} {:>12.4}",
            format!("latency ms, batch {}", v.batch_n),
            o.latency_ms_batch_n,
            c.latency_ms_batch_n
        );
        println!(
            "accuracy drop {:.2} points, top-1 agreement {:.4}, max |Δ score| {:.3e} ({} samples)",
            v.accuracy_drop, v.agreement, v.max_abs_diff, v.samples
        );
        if let Some(p) = v.max_accuracy_drop {
            println!(
                "gate (≤ {p} points): {}",
                if v.passed { "passed" } else { "FAILED" }
            );
        }
    }
    Ok(if v.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

#[derive(Args)]
#[command(allow_negative_numbers = true)]
pub struct AssembliesArgs {
    /// The ONNX model.
    pub model: PathBuf,
    /// Data: group neurons by activity correlation on it instead of by co-connectivity.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Name of the feature array in --data.
    #[arg(long, default_value = "x")]
    pub x_key: String,
    /// Draw Â of each hidden layer, neurons reordered by assembly, to this PNG.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run_assemblies(args: AssembliesArgs) -> Result<ExitCode> {
    let model = load_model(&args.model)?;
    if let Some(plot) = &args.plot {
        let data: Vec<&Path> = args.data.iter().map(PathBuf::as_path).collect();
        let plot_output = Output {
            label: "--plot",
            path: plot,
        };
        check_outputs(&model, &args.model, &data, &[plot_output])?;
    }
    let activations = match &args.data {
        Some(p) => {
            let keys = bean_onnx::data::DataKeys {
                x: args.x_key.clone(),
                y: "y".into(),
            };
            let data = Dataset::load(p, &keys, false)?.evenly_spaced(10_000);
            let (kind, opts) = args.engine.resolve()?;
            Some(prune::hidden_activations(&model, &data, kind, &opts)?)
        }
        None => None,
    };
    let (layers, panels) = assemblies::hidden_layers(&model, activations.as_deref())
        .with_context(|| format!("cannot find assemblies in {}", args.model.display()))?;
    if layers.is_empty() {
        bail!(
            "{}: the dense chain has no hidden layer",
            args.model.display()
        );
    }
    if let Some(p) = &args.plot {
        plot::write_panels(&panels, p)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&layers)?);
    } else {
        for l in &layers {
            println!(
                "hidden layer {}: {} neurons, {} assemblies (sizes {:?}), modularity {:.3} ({})",
                l.layer,
                l.n_neurons,
                l.assemblies.len(),
                l.sizes,
                l.modularity,
                l.source
            );
        }
        if let Some(p) = &args.plot {
            println!("wrote {}", p.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
