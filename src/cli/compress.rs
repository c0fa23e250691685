//! `compress`: the one-command CI step (fine-tune with BEAN → prune within the budget → heal →
//! validate), writing the model only when the gate passes.
use super::prune::CutArgs;
use super::{check_outputs, load_model, parse, Bars, DataArgs, EngineArgs};
use anyhow::{Context, Result};
use bean_onnx::compress::{self, CompressConfig};
use bean_onnx::data::Dataset;
use bean_onnx::fsutil::OutputLock;
use bean_onnx::onnx::{self, SaveOptions};
use bean_onnx::progress::Progress;
use bean_onnx::prune::PruneConfig;
use bean_onnx::train::step::BeanVariant;
use bean_onnx::train::{
    Alpha, Checkpoint, EpochMetrics, FinetuneConfig, Gamma, KeptWeights, LayerSelection, Observer,
    OptimizerKind,
};
use bean_onnx::validate;
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args)]
#[command(allow_negative_numbers = true, after_help = super::validate::GATES_HELP)]
pub struct CompressArgs {
    /// The ONNX model to compress.
    pub model: PathBuf,
    /// Training data: integer labels y, float targets y (a regressor), or no y (distilled from
    /// the original's outputs).
    #[command(flatten)]
    pub data: DataArgs,
    /// Where to write the compressed model (only when the gate passes).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Validation data for the budget search (default: --test when given, else every 10th row of
    /// --data held out — biased high for a model that was trained on all of --data).
    #[arg(long)]
    pub val: Option<PathBuf>,
    /// Test data for the final gate (default: the validation data). Its y chooses the gate:
    /// integer labels → accuracy; no y → agreement with the original's predicted classes; float
    /// y → regression (--max-rmse-increase, and --max-abs-diff if given).
    #[arg(long)]
    pub test: Option<PathBuf>,
    /// Accuracy budget in points against the original model (without labels: points of
    /// disagreement with the original's predicted classes). Not used for regression.
    #[arg(long, default_value_t = 1.0, value_parser = parse::non_negative)]
    pub max_accuracy_drop: f64,
    /// RMSE increase allowed against the original's on float targets y (needed for regression).
    #[arg(long, value_parser = parse::non_negative)]
    pub max_rmse_increase: Option<f64>,
    /// Fail the gate when any output value differs from the original's by more than this.
    #[arg(long, value_parser = parse::non_negative)]
    pub max_abs_diff: Option<f64>,
    #[command(flatten)]
    pub cost: super::validate::CostArgs,
    /// Budget of the search on the validation data, in the gate's unit: points, or RMSE for
    /// regression, taken as measured. Default: when VAL and TEST are different files, the gate's
    /// budget less each candidate's margin z·sd(d)·√(1/n_val + 1/n_test) (d: per-row change in
    /// correctness against the original, z 1.645); else a quarter of the gate's budget.
    #[arg(long, value_parser = parse::non_negative)]
    pub search_budget: Option<f64>,
    /// Write the full report (stages, search, validation, why the gate failed) here as JSON.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Draw every search candidate (accuracy against params and MACs, per source and allocation,
    /// with the budget, the original and the chosen model) to this .png or .svg; the numbers
    /// drawn go to PLOT.json. Drawn whether the gate passes or not.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// BEAN variant for the fine-tune: 1 or 2.
    #[arg(long, default_value = "1")]
    pub bean: BeanVariant,
    /// BEAN strength α: auto (the BEAN term starts at 0.3 × an uninformed model's loss, ln C for
    /// C classes, measured on the training rows) or a number ≥ 0.
    #[arg(long, default_value = "auto")]
    pub alpha: Alpha,
    /// BEAN fine-tuning epochs (1 to 1000000). The last epoch is kept: the validation data only
    /// reports, so that it stays an unbiased judge for the search.
    #[arg(long, default_value_t = 3, value_parser = parse::count_in(1, 1_000_000))]
    pub epochs: usize,
    /// Learning rate of the BEAN fine-tune.
    #[arg(long, default_value_t = 1e-3, value_parser = parse::positive)]
    pub lr: f64,
    /// Rows per training step (1 to 1048576).
    #[arg(long, default_value_t = 128, value_parser = parse::count_in(1, 1 << 20))]
    pub batch_size: usize,
    /// Plain fine-tuning epochs after pruning (0 to 1000000; 0 does not heal).
    #[arg(long, default_value_t = 2, value_parser = parse::count_in(0, 1_000_000))]
    pub heal_epochs: usize,
    /// Learning rate of the healing fine-tune.
    #[arg(long, default_value_t = 1e-4, value_parser = parse::positive)]
    pub heal_lr: f64,
    #[command(flatten)]
    pub cut: CutArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Seed of the batch shuffling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Prints epoch lines of compress's fine-tune and its stages, draws its bars, and writes no
/// checkpoints.
pub struct QuietObserver {
    pub label: &'static str,
    pub quiet: bool,
    pub bars: Bars,
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
    fn progress(&self) -> &dyn Progress {
        &self.bars
    }
    fn stage(&mut self, stage: &str) {
        if !self.quiet {
            eprintln!(
                "{}",
                match stage {
                    "search" => "searching the largest cut within the search budget …",
                    "validate" => "validating the chosen candidate on the test data …",
                    other => other,
                }
            );
        }
    }
}

fn write_report(path: &Path, value: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(&super::output::versioned(value, "report"))?;
    bean_onnx::fsutil::atomic_write_bytes(path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn config(args: &CompressArgs) -> bean_onnx::Result<CompressConfig> {
    let (engine, engine_opts) = args.engine.resolve();
    let finetune = FinetuneConfig {
        bean: Some(args.bean),
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
        keep: KeptWeights::Last,
        ..Default::default()
    };
    finetune.validate()?;
    // compress tries both allocations itself.
    let prune = args.cut.apply(PruneConfig {
        engine,
        engine_opts,
        ..Default::default()
    });
    Ok(CompressConfig {
        finetune,
        prune,
        max_accuracy_drop: args.max_accuracy_drop,
        max_rmse_increase: args.max_rmse_increase,
        max_abs_diff: args.max_abs_diff,
        min_speedup: args.cost.min_speedup,
        max_params: args.cost.max_params,
        search_budget: args.search_budget,
        heal_epochs: args.heal_epochs,
        heal_lr: args.heal_lr,
    })
}

/// Training, validation and test data: VAL defaults to --test, else every 10th row of TRAIN held
/// out; TEST defaults to VAL. Each may hold labels, float targets or no y.
fn data_sets(args: &CompressArgs) -> bean_onnx::Result<(Dataset, Dataset, Dataset)> {
    let load = |p: &Path| Dataset::load(p, &args.data.keys(), false);
    let all = load(&args.data.data)?;
    let (train_set, val) = match args.val.as_ref().or(args.test.as_ref()) {
        Some(p) => (all, load(p)?),
        None => {
            let (tr, va): (Vec<usize>, Vec<usize>) = (0..all.rows()).partition(|i| i % 10 != 9);
            (all.select(&tr), all.select(&va))
        }
    };
    let test = match (&args.test, &args.val) {
        (Some(p), Some(_)) => load(p)?,
        // VAL is TEST (already loaded) or the held-out rows.
        _ => val.clone(),
    };
    check_gate_flags(args, &test)?;
    Ok((train_set, val, test))
}

/// The gate flags must suit the test data: --max-rmse-increase is needed for float targets and
/// refused otherwise (the library says the same, without the flag's name).
fn check_gate_flags(args: &CompressArgs, test: &Dataset) -> bean_onnx::Result<()> {
    let regression =
        bean_onnx::gate::GateMetric::for_data(test) == bean_onnx::gate::GateMetric::Regression;
    match (regression, args.max_rmse_increase) {
        (true, None) => Err(bean_onnx::Error::data(
            &test.path,
            "holds float targets (regression): give --max-rmse-increase, the RMSE the candidate \
             may add",
        )),
        (false, Some(_)) => Err(bean_onnx::Error::data(
            &test.path,
            "--max-rmse-increase needs float targets y (regression); this data has none",
        )),
        _ => Ok(()),
    }
}

pub fn run(args: CompressArgs) -> Result<ExitCode> {
    let model = load_model(&args.model)?;
    let mut inputs: Vec<&Path> = vec![&args.data.data];
    inputs.extend(args.val.as_deref());
    inputs.extend(args.test.as_deref());
    let mut outputs = super::model_outputs(&args.output).to_vec();
    if let Some(r) = &args.report {
        outputs.push(("--report".into(), r.clone()));
    }
    if let Some(p) = &args.plot {
        outputs.extend(super::plotting::outputs(p));
    }
    let protected = check_outputs(&model, &args.model, &inputs, &super::as_outputs(&outputs))?;
    if let Some(p) = &args.plot {
        super::plotting::check_format(p)?;
    }
    let _lock = OutputLock::acquire(&args.output)?;
    // From here on the report is ours to write: every failure goes through `failed`.
    let cfg = match config(&args) {
        Ok(cfg) => cfg,
        Err(e) => return failed(&args, e),
    };
    if !args.json {
        eprintln!(
            "engine: {} ({})",
            cfg.finetune.engine.name(),
            cfg.finetune.engine_opts.device
        );
    }
    let outcome = data_sets(&args).and_then(|(train, val, test)| {
        let mut obs = QuietObserver {
            label: "fine-tune",
            quiet: args.json,
            bars: Bars::new(!args.json),
        };
        let dir = bean_onnx::fsutil::folder(&args.output);
        let input = compress::CompressInput {
            model: &model,
            model_path: &args.model,
            train: &train,
            val: &val,
            test: &test,
            candidate_dir: &dir,
        };
        compress::compress(&input, &cfg, &mut obs)
    });
    let (candidate, mut report) = match outcome {
        Ok(r) => r,
        Err(e) => return failed(&args, e),
    };
    if report.passed {
        let save = SaveOptions {
            protected,
            ..Default::default()
        };
        // A failed write still leaves the report, saying why there is no model.
        let written = match onnx::save(&candidate, &args.output, &save) {
            Ok(w) => w,
            Err(e) => return failed(&args, e),
        };
        // The report describes the files written, not the temporary copy that was validated.
        report.validation.candidate.file_bytes = validate::written_bytes(&written);
    }
    let value = serde_json::json!({
        "model": args.model,
        "output": report.passed.then_some(&args.output),
        "report": report,
    });
    if let Some(p) = &args.report {
        write_report(p, &value)?;
    }
    if let Some(p) = &args.plot {
        super::plotting::write(&super::plotting::search_figure(&report, &args.model), p)?;
    }
    if args.json {
        super::output::print_json(&value, "report")?;
    } else {
        print_result(&report, &args.output);
    }
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

/// The CI step reads the report whatever happened: say why there is no model (an error, or a
/// signal, which exits 128 + its number).
fn failed(args: &CompressArgs, e: bean_onnx::Error) -> Result<ExitCode> {
    if let Some(p) = &args.report {
        let value = serde_json::json!({
            "model": args.model,
            "output": null,
            "report": { "passed": false, "reason": e.to_string() },
        });
        write_report(p, &value)?;
    }
    if let bean_onnx::Error::Interrupted { signal } = e {
        eprintln!("{e}: {} not written", args.output.display());
        return Ok(ExitCode::from(128 + signal as u8));
    }
    Err(anyhow::Error::new(e).context(format!("cannot compress {}", args.model.display())))
}

fn print_result(report: &compress::CompressReport, output: &Path) {
    if let Some(line) = search_line(&report.search) {
        println!("{line}");
    }
    for line in searches_lines(report) {
        println!("{line}");
    }
    let v = &report.validation;
    println!(
        "hidden neurons {} → {} ({:.0}% removed); params {} → {}; dense MACs {} → {}",
        report.prune.hidden_before,
        report.prune.hidden_after,
        100.0 * (1.0 - report.prune.hidden_after as f64 / report.prune.hidden_before.max(1) as f64),
        v.original.params,
        v.candidate.params,
        v.original.macs,
        v.candidate.macs
    );
    let figure = match (
        v.original.accuracy,
        v.candidate.accuracy,
        v.original.rmse,
        v.candidate.rmse,
    ) {
        (Some(a), Some(b), _, _) => format!(
            "test accuracy {a:.4} → {b:.4} ({:+.2} points), agreement {:.4}",
            -v.accuracy_drop.unwrap_or(0.0),
            v.agreement
        ),
        (_, _, Some(a), Some(b)) => format!(
            "test RMSE {a:.6} → {b:.6}, max |Δ output| {:.3e}",
            v.max_abs_diff
        ),
        _ => format!("test agreement with the original {:.4}", v.agreement),
    };
    println!("{figure}; {:.0} s", report.seconds);
    for line in super::validate::latency_lines(v) {
        println!("{line}");
    }
    match &report.reason {
        None => println!("gate passed: wrote {}", output.display()),
        Some(r) => println!("gate FAILED: {r}; {} not written", output.display()),
    }
}

/// One line per search (source × allocation): the cut it chose, its parameters, and how many
/// more than the winner's it keeps (the smallest passing model wins).
fn searches_lines(report: &compress::CompressReport) -> Vec<String> {
    let chosen_params = |run: &compress::SearchRun| {
        let ratio = run.chosen_ratio?;
        run.candidates
            .iter()
            .find(|c| c.ratio == ratio)
            .map(|c| (ratio, c.params))
    };
    let best = report
        .searches
        .iter()
        .filter_map(chosen_params)
        .map(|(_, p)| p)
        .min();
    let header = "searches (the smallest model within the budget wins):".to_string();
    let runs = report.searches.iter().map(|run| {
        let what = format!("  {} model, {} allocation:", run.source, run.allocation);
        let winner = run.source == report.source && run.allocation == report.allocation;
        match (chosen_params(run), best) {
            (Some((ratio, params)), Some(best)) => format!(
                "{what} {:.0}% of hidden neurons removed, {params} params{}",
                100.0 * ratio,
                if winner && params == best {
                    " (chosen)".to_string()
                } else {
                    format!(" ({} more than the chosen)", params - best)
                }
            ),
            _ => format!(
                "{what} no cut within the budget{}",
                run.error
                    .as_deref()
                    .map_or(String::new(), |e| format!(" ({e})"))
            ),
        }
    });
    std::iter::once(header).chain(runs).collect()
}

/// What the search could see: one validation row's worth in points, and the margin the chosen
/// cut was held to (None for a regression search).
fn search_line(s: &bean_onnx::prune::SearchReport) -> Option<String> {
    let resolution = s.resolution_points?;
    let rows = (100.0 / resolution).round();
    let budget = s.max_accuracy_drop?;
    let chosen = s.candidates.iter().find(|c| c.ratio == s.chosen_ratio);
    let optimism = s.optimism.map_or(String::new(), |w| {
        format!(" and the choice's optimism {w:.2} (bootstrap over every search's candidates)")
    });
    Some(
        match (chosen.and_then(|c| c.margin), s.margin_z, s.gate_rows) {
            (Some(m), Some(z), Some(t)) => format!(
            "search: {rows} validation rows (one row = {resolution:.3} points); the chosen cut's \
             drop plus its margin {m:.2} points (z {z}, for a gate on {t} other rows){optimism} \
             is within {budget} points"
        ),
            _ => format!(
            "search: {rows} validation rows (one row = {resolution:.3} points); budget {budget} \
             points as measured"
        ),
        },
    )
}
