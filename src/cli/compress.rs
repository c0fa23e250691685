//! `compress`: the one-command CI step (fine-tune with BEAN → prune within the budget → heal →
//! validate), writing the model only when the gate passes.
use super::prune::prune_config;
use super::{load_model, output_guard, DataArgs, EngineArgs};
use anyhow::{bail, Context, Result};
use bean_onnx::compress::{self, CompressConfig};
use bean_onnx::data::Dataset;
use bean_onnx::onnx::{self, SaveOptions};
use bean_onnx::prune::{Allocation, Method};
use bean_onnx::train::step_graph::BeanVariant;
use bean_onnx::train::{
    Checkpoint, EpochMetrics, FinetuneConfig, Gamma, LayerSelection, Observer, OptimizerKind,
};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args)]
pub struct CompressArgs {
    /// The ONNX model to compress.
    pub model: PathBuf,
    /// Labelled training data.
    #[command(flatten)]
    pub data: DataArgs,
    /// Where to write the compressed model (only when the gate passes).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Labelled validation data for the budget search (default: --test when given, else every 10th
    /// row of --data held out — biased high for a model that was trained on all of --data).
    #[arg(long)]
    pub val: Option<PathBuf>,
    /// Labelled test data for the final gate (default: the validation data).
    #[arg(long)]
    pub test: Option<PathBuf>,
    /// Accuracy budget in points against the original model.
    #[arg(long, default_value_t = 1.0)]
    pub max_accuracy_drop: f64,
    /// Budget of the search on the validation data (default: a quarter of --max-accuracy-drop: a
    /// margin for the noise between the validation data and the gate's data).
    #[arg(long)]
    pub search_budget: Option<f64>,
    /// Write the full report (stages, search, validation, why the gate failed) here as JSON.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// BEAN variant for the fine-tune: 1 or 2.
    #[arg(long, default_value = "1", value_parser = ["1", "2"])]
    pub bean: String,
    /// BEAN strength α.
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
    /// BEAN fine-tuning epochs.
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    /// Learning rate of the BEAN fine-tune.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Rows per training step.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Plain fine-tuning epochs after pruning.
    #[arg(long, default_value_t = 2)]
    pub heal_epochs: usize,
    /// Learning rate of the healing fine-tune.
    #[arg(long, default_value_t = 1e-4)]
    pub heal_lr: f64,
    /// Keep widths that are multiples of K.
    #[arg(long, default_value_t = 1)]
    pub round_to: usize,
    /// Also drop constant or unused input features behind a Gather.
    #[arg(long)]
    pub inputs: bool,
    /// Calibration rows for pruning.
    #[arg(long, default_value_t = 10_000)]
    pub calib_rows: usize,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Seed of the batch shuffling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Prints epoch lines of compress's fine-tune and writes no checkpoints.
pub struct QuietObserver {
    pub label: &'static str,
    pub quiet: bool,
}

impl Observer for QuietObserver {
    fn epoch_end(&mut self, m: &EpochMetrics, _: &Checkpoint) -> bean_onnx::Result<()> {
        if !self.quiet {
            eprintln!("{}", super::epoch_line(self.label, m, None));
        }
        Ok(())
    }
    fn interrupted(&self) -> bool {
        false
    }
}

fn write_report(path: &Path, value: &serde_json::Value) -> Result<()> {
    bean_onnx::fsutil::atomic_write_bytes(path, serde_json::to_string_pretty(value)?.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

pub fn run(args: CompressArgs) -> Result<ExitCode> {
    if !(args.max_accuracy_drop >= 0.0 && args.max_accuracy_drop.is_finite()) {
        bail!(
            "--max-accuracy-drop must be a non-negative number of points, got {}",
            args.max_accuracy_drop
        );
    }
    let (engine, engine_opts) = args.engine.resolve()?;
    let finetune = FinetuneConfig {
        bean: Some(if args.bean == "2" {
            BeanVariant::Two
        } else {
            BeanVariant::One
        }),
        alpha: args.alpha,
        gamma: Gamma::Auto,
        layers: LayerSelection::Hidden,
        epochs: args.epochs,
        batch_size: args.batch_size,
        lr: args.lr,
        optimizer: OptimizerKind::Adam,
        engine,
        engine_opts,
        seed: args.seed,
        progress: !args.json,
        ..Default::default()
    };
    finetune.validate()?;
    let prune = prune_config(
        0.0,
        args.round_to,
        Method::Assembly,
        false,
        args.inputs,
        args.calib_rows,
        &args.engine,
        !args.json,
        Allocation::Uniform, // compress tries both allocations
    )?;
    let cfg = CompressConfig {
        finetune,
        prune,
        max_accuracy_drop: args.max_accuracy_drop,
        search_budget: args.search_budget.unwrap_or(args.max_accuracy_drop / 4.0),
        heal_epochs: args.heal_epochs,
        heal_lr: args.heal_lr,
    };
    let model = load_model(&args.model)?;
    let data_out = super::data_file_of(&args.output);
    let mut inputs: Vec<&Path> = vec![&args.data.data];
    inputs.extend(args.val.as_deref());
    inputs.extend(args.test.as_deref());
    let mut outputs: Vec<&Path> = vec![&args.output, &data_out];
    outputs.extend(args.report.as_deref());
    let protected = output_guard(&model, &args.model, &inputs, &outputs)?;
    let all = Dataset::load(&args.data.data, &args.data.keys(), true)?;
    let (train_set, val) = match args.val.as_ref().or(args.test.as_ref()) {
        Some(p) => (all, Dataset::load(p, &args.data.keys(), true)?),
        None => {
            let (tr, va): (Vec<usize>, Vec<usize>) = (0..all.rows()).partition(|i| i % 10 != 9);
            (all.select(&tr), all.select(&va))
        }
    };
    let test = match &args.test {
        Some(p) => Dataset::load(p, &args.data.keys(), true)?,
        None => val.clone(),
    };
    if !args.json {
        eprintln!("engine: {} ({})", engine.name(), engine_opts.device);
    }
    let dir = args
        .output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut obs = QuietObserver {
        label: "fine-tune",
        quiet: args.json,
    };
    let outcome = compress::compress(
        &model,
        &args.model,
        &train_set,
        &val,
        &test,
        dir,
        &cfg,
        &mut obs,
    );
    let (candidate, report) = match outcome {
        Ok(r) => r,
        Err(e) => {
            // The CI step reads the report whatever happened: say why there is no model.
            if let Some(p) = &args.report {
                let value = serde_json::json!({
                    "model": args.model,
                    "output": null,
                    "report": { "passed": false, "reason": e.to_string() },
                });
                write_report(p, &value)?;
            }
            return Err(
                anyhow::Error::new(e).context(format!("cannot compress {}", args.model.display()))
            );
        }
    };
    let value = serde_json::json!({
        "model": args.model,
        "output": report.passed.then_some(&args.output),
        "report": report,
    });
    if let Some(p) = &args.report {
        write_report(p, &value)?;
    }
    if report.passed {
        onnx::save(
            &candidate,
            &args.output,
            &SaveOptions {
                protected,
                ..Default::default()
            },
        )
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        let v = &report.validation;
        println!(
            "hidden neurons {} → {} ({:.0}% removed); params {} → {}; dense MACs {} → {}",
            report.prune.hidden_before,
            report.prune.hidden_after,
            100.0
                * (1.0
                    - report.prune.hidden_after as f64 / report.prune.hidden_before.max(1) as f64),
            v.original.params,
            v.candidate.params,
            v.original.macs,
            v.candidate.macs
        );
        println!(
            "test accuracy {:.4} → {:.4} ({:+.2} points), agreement {:.4}; latency batch 1 {:.3} → {:.3} ms, batch {} {:.3} → {:.3} ms; {:.0} s",
            v.original.accuracy,
            v.candidate.accuracy,
            -v.accuracy_drop,
            v.agreement,
            v.original.latency_ms_batch1,
            v.candidate.latency_ms_batch1,
            v.batch_n,
            v.original.latency_ms_batch_n,
            v.candidate.latency_ms_batch_n,
            report.seconds
        );
        match &report.reason {
            None => println!("gate passed: wrote {}", args.output.display()),
            Some(r) => println!("gate FAILED: {r}; {} not written", args.output.display()),
        }
    }
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}
