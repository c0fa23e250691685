//! `bean-onnx prune`: flags → PruneConfig, the cut (a ratio or a search within a budget),
//! optional healing, the written model and its report.
use super::{check_outputs, load_model, parse, Bars, DataArgs, EngineArgs};
use anyhow::{Context, Result};
use bean_onnx::data::Dataset;
use bean_onnx::fsutil::OutputLock;
use bean_onnx::onnx::{self, SaveOptions};
use bean_onnx::prune::{self, Allocation, Method, PruneConfig, PruneReport, SearchReport};
use bean_onnx::train::{self, FinetuneConfig};
use bean_onnx::{inspect, ir::Model};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// How a cut is made, shared by `prune` and `compress`.
#[derive(Args)]
pub struct CutArgs {
    /// Keep widths that are multiples of K (matmul tiles: 8, 16, 32; 1 to 4096).
    #[arg(long, default_value_t = 1, value_parser = parse::count_in(1, 4096))]
    pub round_to: usize,
    /// Also drop input features that are constant on the data or unused (a Gather keeps the
    /// interface).
    #[arg(long)]
    pub inputs: bool,
    /// Calibration rows used (evenly spaced; 2 to 10000000).
    #[arg(long, default_value_t = 10_000, value_parser = parse::count_in(2, 10_000_000))]
    pub calib_rows: usize,
    /// Do not refit each cut layer's successor by ridge regression onto the uncut model's
    /// pre-activations (keep the rank-one merges and folded means alone).
    #[arg(long)]
    pub no_refit: bool,
}

impl CutArgs {
    /// `base` with this cut's rounding, input pruning, calibration rows and refit.
    pub fn apply(&self, base: PruneConfig) -> PruneConfig {
        PruneConfig {
            round_to: self.round_to,
            inputs: self.inputs,
            calib_rows: self.calib_rows,
            refit: !self.no_refit,
            ..base
        }
    }
}

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
        conflicts_with = "max_accuracy_drop",
        value_parser = parse::fraction
    )]
    pub ratio: Option<f64>,
    /// Instead of --ratio: the largest cut within this many accuracy points on --val.
    #[arg(long, requires = "val", value_parser = parse::non_negative)]
    pub max_accuracy_drop: Option<f64>,
    /// Labelled validation data for --max-accuracy-drop.
    #[arg(long)]
    pub val: Option<PathBuf>,
    #[command(flatten)]
    pub cut: CutArgs,
    /// assembly: activity-weighted scores with constant folding and merging; magnitude: smallest
    /// outgoing weights, no data, no compensation.
    #[arg(long, default_value = "assembly")]
    pub method: Method,
    /// Do not merge near-duplicate neurons (remove and fold means only).
    #[arg(long)]
    pub no_merge: bool,
    /// How the cut is shared among hidden layers: uniform (the same fraction of each) or global
    /// (the cheapest neurons of the whole chain).
    #[arg(long, default_value = "uniform")]
    pub allocation: Allocation,
    /// Epochs of plain fine-tuning after pruning (on --data, which then needs labels; 0 to 1000000).
    #[arg(long, default_value_t = 0, value_parser = parse::count_in(0, 1_000_000))]
    pub heal_epochs: usize,
    /// Learning rate of the healing fine-tune.
    #[arg(long, default_value_t = 1e-4, value_parser = parse::positive)]
    pub heal_lr: f64,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Print a JSON report instead of text.
    #[arg(long)]
    pub json: bool,
}

impl PruneArgs {
    fn config(&self) -> PruneConfig {
        let (engine, engine_opts) = self.engine.resolve();
        self.cut.apply(PruneConfig {
            ratio: self.ratio.unwrap_or(0.0),
            method: self.method,
            merge: !self.no_merge,
            allocation: self.allocation,
            engine,
            engine_opts,
            ..Default::default()
        })
    }
}

pub fn run(args: PruneArgs) -> Result<ExitCode> {
    let cfg = args.config();
    let model = load_model(&args.model)?;
    let mut inputs: Vec<&Path> = vec![&args.data.data];
    inputs.extend(args.val.as_deref());
    let outputs = super::model_outputs(&args.output);
    let protected = check_outputs(&model, &args.model, &inputs, &super::as_outputs(&outputs))?;
    let _lock = OutputLock::acquire(&args.output)?;
    let calib = Dataset::load(&args.data.data, &args.data.keys(), false)?;
    if args.heal_epochs > 0 && calib.y.is_none() {
        anyhow::bail!("--heal-epochs needs labels in {}", args.data.data.display());
    }
    let heal_base = FinetuneConfig {
        engine: cfg.engine,
        engine_opts: cfg.engine_opts,
        ..Default::default()
    };
    // Healing runs on every search candidate before it is judged, and on a fixed-ratio result.
    // The rows are prepared once for every heal (candidates share the model's prelude and head).
    let prepared = match args.heal_epochs {
        0 => None,
        _ => train::PreparedRows::new(&model, &calib, &heal_base)
            .with_context(|| format!("cannot prepare {}", args.data.data.display()))?,
    };
    let schedule = (args.heal_epochs, args.heal_lr);
    let heal = |m| train::heal(m, &calib, prepared.as_ref(), &heal_base, schedule);
    let (pruned, report, search) = cut(&args, &model, &calib, &cfg, &heal)
        .with_context(|| format!("cannot prune {}", args.model.display()))?;
    let save = SaveOptions {
        protected,
        ..Default::default()
    };
    onnx::save(&pruned, &args.output, &save)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    print_report(&args, &model, &pruned, &report, search.as_ref())?;
    Ok(ExitCode::SUCCESS)
}

/// The cut at --ratio (then healed), or the search within --max-accuracy-drop on --val.
fn cut(
    args: &PruneArgs,
    model: &Model,
    calib: &Dataset,
    cfg: &PruneConfig,
    heal: &(dyn Fn(Model) -> bean_onnx::Result<Model> + Sync),
) -> Result<(Model, PruneReport, Option<SearchReport>)> {
    let (Some(budget), Some(val)) = (args.max_accuracy_drop, &args.val) else {
        let (m, r) = prune::prune(model, calib, cfg)?;
        return Ok((heal(m)?, r, None));
    };
    let val_set = Dataset::load(val, &args.data.keys(), true)?;
    if !args.json {
        eprintln!(
            "searching for the largest cut within {budget} points on {}",
            val.display()
        );
    }
    let bars = Bars::new(!args.json);
    let spec = prune::Search {
        calib,
        val: &val_set,
        cfg,
        metric: bean_onnx::gate::GateMetric::Accuracy,
        max_drop_points: budget,
        baseline: None,
        margin: prune::SearchMargin::None,
        post: Some(heal),
        progress: &bars,
    };
    let (m, r, s) = prune::search(model, &spec)?;
    Ok((m, r, Some(s)))
}

fn print_report(
    args: &PruneArgs,
    model: &Model,
    pruned: &Model,
    report: &PruneReport,
    search: Option<&SearchReport>,
) -> Result<()> {
    let before = inspect::report(model)?;
    let after = inspect::report(pruned)?;
    if args.json {
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
        super::output::print_json(&out, "prune")?;
        return Ok(());
    }
    if let Some(s) = search {
        let f = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.4}"));
        println!(
            "chose ratio {:.2}: validation accuracy {} (baseline {}, budget {} points)",
            s.chosen_ratio,
            f(s.chosen_accuracy),
            f(s.baseline_accuracy),
            s.max_accuracy_drop.map_or("-".into(), |v| v.to_string())
        );
    }
    for l in &report.layers {
        let c = &l.counts;
        println!(
            "hidden layer {}: {} → {} neurons ({} constant folded, {} merged, {} removed{})",
            l.layer,
            c.n_before,
            c.n_after,
            c.constant_removed,
            c.merged,
            c.weak_removed,
            if c.refitted {
                "; next layer refitted"
            } else {
                ""
            }
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
    Ok(())
}
