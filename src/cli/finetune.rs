//! `bean-onnx finetune`: flags → FinetuneConfig, files (metrics, checkpoints, output), Ctrl-C.
use super::{check_outputs, load_model, parse, Bars, DataArgs, EngineArgs};
use anyhow::{bail, Context, Result};
use bean_onnx::data::Dataset;
use bean_onnx::fsutil::OutputLock;
use bean_onnx::ir::Model;
use bean_onnx::onnx::{self, SaveOptions};
use bean_onnx::progress::Progress;
use bean_onnx::train::checkpoint;
use bean_onnx::train::step::Baseline;
use bean_onnx::train::{
    self, Alpha, Checkpoint, EpochMetrics, FinetuneConfig, Gamma, KeptWeights, LayerSelection,
    Observer, OptimizerKind, StopReason,
};
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args)]
#[command(allow_negative_numbers = true)]
pub struct FinetuneArgs {
    /// The ONNX model to fine-tune.
    pub model: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// Where to write the fine-tuned model (never over the input).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Labelled validation data: reported each epoch, and the best epoch's weights are kept.
    #[arg(long)]
    pub val: Option<PathBuf>,
    /// BEAN variant: 1 (shared neighbours, O(B·n·m)), 2 (4-cycles, O(n²)), or off.
    #[arg(long, default_value = "1", value_parser = parse::bean_or_off)]
    pub bean: parse::BeanOrOff,
    /// BEAN strength α: auto (the BEAN term starts at 0.3 × an uninformed model's loss, ln C for
    /// C classes, measured on the training rows) or a number ≥ 0.
    #[arg(long, default_value = "auto")]
    pub alpha: Alpha,
    /// Â = |tanh(γW)|: a positive number, or auto (γ = 1/std(W) per layer).
    #[arg(long, default_value = "auto")]
    pub gamma: Gamma,
    /// Layers to regularize: hidden (all but the first), all, or indices like 1,2.
    #[arg(long, default_value = "hidden")]
    pub layers: LayerSelection,
    /// Baseline regularizer on each neuron's outgoing weights: l1, l2 or group-lasso (with
    /// --reg-weight).
    #[arg(long)]
    pub reg: Option<Baseline>,
    /// Weight of --reg.
    #[arg(long, default_value_t = 1e-4, value_parser = parse::non_negative)]
    pub reg_weight: f64,
    /// Task loss: auto (cross-entropy for labels or --teacher, MSE for float targets), ce or mse.
    #[arg(long, default_value = "auto", value_parser = parse::loss_or_auto)]
    pub loss: parse::LossOrAuto,
    /// Distil from the original model's outputs instead of the labels (automatic without labels).
    #[arg(long)]
    pub teacher: bool,
    /// Passes over the training data (1 to 1000000).
    #[arg(long, default_value_t = 5, value_parser = parse::count_in(1, 1_000_000))]
    pub epochs: usize,
    /// Rows per step (1 to 1048576).
    #[arg(long, default_value_t = 128, value_parser = parse::count_in(1, 1 << 20))]
    pub batch_size: usize,
    /// Learning rate.
    #[arg(long, default_value_t = 1e-3, value_parser = parse::positive)]
    pub lr: f64,
    /// Optimizer, with PyTorch's update rules: adam or sgd.
    #[arg(long, default_value = "adam")]
    pub optimizer: OptimizerKind,
    /// Momentum for --optimizer sgd, in [0, 1).
    #[arg(long, default_value_t = 0.9, value_parser = parse::fraction)]
    pub momentum: f64,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Seed of the batch shuffling: the same seed and engine give the same model.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write one JSON line per epoch (task loss, BEAN term, accuracies, samples/s) to this file:
    /// started anew, or appended to with --resume.
    #[arg(long)]
    pub metrics: Option<PathBuf>,
    /// Draw the task loss, BEAN term and train/validation accuracy per epoch to this .png or
    /// .svg; the numbers drawn go to PLOT.json.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Continue from OUTPUT.ckpt.{json,npz} (written after every epoch) when it exists.
    #[arg(long)]
    pub resume: bool,
    /// Print a JSON summary instead of text.
    #[arg(long)]
    pub json: bool,
}

impl FinetuneArgs {
    pub fn config(&self) -> FinetuneConfig {
        let (engine, engine_opts) = self.engine.resolve();
        FinetuneConfig {
            bean: self.bean.0,
            alpha: self.alpha,
            gamma: self.gamma,
            layers: self.layers.clone(),
            baseline: self.reg.map(|r| (r, self.reg_weight)),
            loss: self.loss.0,
            teacher: self.teacher,
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            optimizer: self.optimizer,
            momentum: self.momentum,
            engine,
            engine_opts,
            seed: self.seed,
            keep: KeptWeights::BestOnValidation,
        }
    }
}

/// Metrics lines, checkpoints, epoch lines and bars for the training loop.
struct CliObserver {
    metrics: Option<(PathBuf, std::fs::File)>,
    checkpoint_base: PathBuf,
    quiet: bool,
    epochs: usize,
    bars: Bars,
}

impl Observer for CliObserver {
    fn epoch_end(&mut self, m: &EpochMetrics, ck: &Checkpoint) -> bean_onnx::Result<()> {
        if let Some((path, f)) = &mut self.metrics {
            let line = super::output::versioned(m, "metrics").to_string();
            writeln!(f, "{line}").map_err(|e| bean_onnx::Error::io(path.as_path(), e))?;
        }
        checkpoint::save(&self.checkpoint_base, ck)?;
        if !self.quiet {
            eprintln!("{}", super::epoch_line("epoch", m, Some(self.epochs)));
        }
        Ok(())
    }

    /// Signals reach the loop through `bean_onnx::interrupt`.
    fn interrupted(&self) -> bool {
        false
    }

    fn keeps_checkpoints(&self) -> bool {
        true
    }

    fn progress(&self) -> &dyn Progress {
        &self.bars
    }
}

pub fn run(args: FinetuneArgs) -> Result<ExitCode> {
    let cfg = args.config();
    cfg.validate()?;
    let model = load_model(&args.model)?;
    let checkpoint_base = PathBuf::from(format!("{}.ckpt", args.output.display()));
    let protected = check_files(&args, &model, &checkpoint_base)?;
    let _lock = OutputLock::acquire(&args.output)?;
    let train = Dataset::load(&args.data.data, &args.data.keys(), false)?;
    let val = args
        .val
        .as_ref()
        .map(|p| Dataset::load(p, &args.data.keys(), true))
        .transpose()?;
    if !args.json {
        eprintln!("engine: {} ({})", cfg.engine.name(), cfg.engine_opts.device);
    }
    let resume = resume_from(&args, &checkpoint_base)?;
    let mut observer = CliObserver {
        metrics: open_metrics(&args, resume.is_some())?,
        checkpoint_base: checkpoint_base.clone(),
        quiet: args.json,
        epochs: cfg.epochs,
        bars: Bars::new(!args.json),
    };
    let outcome = train::finetune(&model, &train, val.as_ref(), &cfg, resume, &mut observer)
        .with_context(|| format!("cannot fine-tune {}", args.model.display()))?;
    let (ck_json, ck_npz) = checkpoint::paths(&checkpoint_base);
    if outcome.stop == StopReason::Interrupted {
        return Ok(interrupted(&args.output, &ck_json));
    }
    let opts = SaveOptions {
        protected,
        ..Default::default()
    };
    onnx::save(&outcome.model, &args.output, &opts)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    if let StopReason::Diverged { epoch, step } = outcome.stop {
        bail!(
            "the loss became NaN or infinite at epoch {epoch}, step {step} (try a lower --lr or --alpha); \
             {} holds the last good weights",
            args.output.display()
        );
    }
    for p in [&ck_json, &ck_npz] {
        let _ = std::fs::remove_file(p);
    }
    let summary = summary(&outcome, &cfg, &args.output);
    if let Some(p) = &args.plot {
        super::plotting::write(
            &super::plotting::training_figure(&summary.history, &args.model),
            p,
        )?;
    }
    if args.json {
        super::output::print_json(&summary, "summary")?;
    } else {
        print_summary(&summary);
    }
    Ok(ExitCode::SUCCESS)
}

/// Checks every file the run writes (the model, its data and lock, the checkpoint, --metrics)
/// against the inputs; returns the input files.
fn check_files(args: &FinetuneArgs, model: &Model, checkpoint_base: &Path) -> Result<Vec<PathBuf>> {
    let (ck_json, ck_npz) = checkpoint::paths(checkpoint_base);
    let mut inputs: Vec<&Path> = vec![&args.data.data];
    inputs.extend(args.val.as_deref());
    let mut outputs = super::model_outputs(&args.output).to_vec();
    outputs.push(("checkpoint".into(), ck_json));
    outputs.push(("checkpoint".into(), ck_npz));
    if let Some(m) = &args.metrics {
        outputs.push(("--metrics".into(), m.clone()));
    }
    if let Some(p) = &args.plot {
        outputs.extend(super::plotting::outputs(p));
    }
    let protected = check_outputs(model, &args.model, &inputs, &super::as_outputs(&outputs))?;
    if let Some(p) = &args.plot {
        super::plotting::check_format(p)?;
    }
    Ok(protected)
}

/// The checkpoint to continue from, with --resume (None, with a note, when there is none).
fn resume_from(args: &FinetuneArgs, checkpoint_base: &Path) -> Result<Option<Checkpoint>> {
    if !args.resume {
        return Ok(None);
    }
    let ck = checkpoint::load(checkpoint_base)?;
    if ck.is_none() && !args.json {
        eprintln!(
            "no checkpoint at {}: starting from the beginning",
            checkpoint::paths(checkpoint_base).0.display()
        );
    }
    Ok(ck)
}

/// The --metrics file: appended to when resuming, else started anew.
fn open_metrics(args: &FinetuneArgs, resuming: bool) -> Result<Option<(PathBuf, std::fs::File)>> {
    let Some(p) = &args.metrics else {
        return Ok(None);
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(resuming)
        .write(true)
        .truncate(!resuming)
        .open(p)
        .with_context(|| format!("cannot open metrics file {}", p.display()))?;
    Ok(Some((p.clone(), file)))
}

/// Says what a signal left behind and returns its exit code (128 + the signal).
fn interrupted(output: &Path, ck_json: &Path) -> ExitCode {
    let signal = bean_onnx::interrupt::requested().unwrap_or(libc::SIGINT);
    let kept = if ck_json.exists() {
        format!(
            "the checkpoint of the last finished epoch is kept at {} — rerun with --resume",
            ck_json.display()
        )
    } else {
        "no epoch had finished, so there is no checkpoint".into()
    };
    eprintln!(
        "interrupted by {}: {} not written; {kept}",
        bean_onnx::error::signal_name(signal),
        output.display()
    );
    ExitCode::from(128 + signal as u8)
}

#[derive(serde::Serialize)]
struct Summary {
    output: PathBuf,
    engine: String,
    device: String,
    epochs: usize,
    steps: usize,
    samples_per_second: f64,
    final_train_loss: Option<f64>,
    final_bean: Option<f64>,
    initial_val_accuracy: Option<f64>,
    val_accuracy: Option<f64>,
    best_epoch: Option<usize>,
    alpha: Option<f64>,
    alpha_auto: Option<train::AutoAlpha>,
    layers: Vec<bean_onnx::train::finetune::LayerFigures>,
    history: Vec<EpochMetrics>,
}

fn summary(o: &train::Outcome, cfg: &FinetuneConfig, output: &Path) -> Summary {
    let last = o.history.last();
    Summary {
        output: output.to_path_buf(),
        engine: o.engine.clone(),
        device: cfg.engine_opts.device.to_string(),
        epochs: o.history.len(),
        steps: o.steps,
        samples_per_second: o.samples_per_second(),
        final_train_loss: last.map(|m| m.task_loss),
        final_bean: last.map(|m| m.bean),
        initial_val_accuracy: o.initial_val_accuracy,
        val_accuracy: o.val_accuracy(),
        best_epoch: o.best_epoch,
        alpha: o.alpha,
        alpha_auto: o.auto_alpha,
        layers: o.figures.clone(),
        history: o.history.clone(),
    }
}

fn print_summary(s: &Summary) {
    println!(
        "wrote {} ({} epochs, {} steps, {:.0} samples/s on {})",
        s.output.display(),
        s.epochs,
        s.steps,
        s.samples_per_second,
        s.engine
    );
    if let Some(a) = &s.alpha_auto {
        println!(
            "α = {:.3e} (auto: the BEAN term starts at {} × {:.3} = {:.3}; at α = 1 it is {:.3e} on {} rows)",
            a.alpha,
            a.fraction,
            a.uninformed_loss,
            a.fraction * a.uninformed_loss,
            a.bean_at_alpha_1,
            a.rows
        );
    }
    if let (Some(a), Some(b)) = (s.initial_val_accuracy, s.val_accuracy) {
        println!(
            "validation accuracy {:.4} → {:.4} (best epoch {})",
            a,
            b,
            s.best_epoch.map(|e| e.to_string()).unwrap_or("-".into())
        );
    }
    for l in &s.layers {
        println!(
            "hidden layer {}: modularity {:.3} → {:.3}, assemblies {} → {}",
            l.layer,
            l.modularity_before,
            l.modularity_after,
            l.assemblies_before,
            l.assemblies_after
        );
    }
}
