//! `bean-onnx validate`: a candidate against the original, with the gate's exit code.
use super::{load_model, parse, DataArgs};
use anyhow::{Context, Result};
use bean_onnx::data::Dataset;
use bean_onnx::latency::Latency;
use bean_onnx::{gate, validate};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// The gates, as `--help` lists them (validate and compress).
pub const GATES_HELP: &str =
    "Gates, chosen from the test data's y (exit 3 when a limit is exceeded):
  integer labels  accuracy drop in points            --max-accuracy-drop
  no y            disagreement with the original's   --max-accuracy-drop
                  predicted classes, in points
  float y         RMSE increase against y            --max-rmse-increase
  any             largest |output difference|        --max-abs-diff
  any             speed-up over the original         --min-speedup
                  (ONNX Runtime, 1 thread, large batch;
                  tract without ONNX Runtime)
  any             parameters kept                    --max-params";

/// Limits on the candidate's cost, beside the quality gates (validate and compress).
#[derive(Args)]
pub struct CostArgs {
    /// Fail (exit 3) unless the candidate runs at least this many times as fast as the original:
    /// median latency in ONNX Runtime with 1 thread at the large batch (tract when ONNX Runtime
    /// is not installed). Latency is noisy on a busy machine: leave a margin.
    #[arg(long, value_parser = parse::positive)]
    pub min_speedup: Option<f64>,
    /// Fail (exit 3) when the candidate keeps more parameters than this.
    #[arg(long, value_parser = parse::count_in(0, usize::MAX))]
    pub max_params: Option<usize>,
}

#[derive(Args)]
#[command(allow_negative_numbers = true, after_help = GATES_HELP)]
pub struct ValidateArgs {
    /// The original model.
    pub original: PathBuf,
    /// The candidate that should replace it.
    pub candidate: PathBuf,
    /// Test data. The gate follows its y: integer labels → accuracy; no y → agreement with the
    /// original's predicted classes; float y → RMSE and max |Δ| of the outputs (regression).
    #[command(flatten)]
    pub data: DataArgs,
    /// Fail (exit 3) when the candidate loses more than this many accuracy points (with labels),
    /// or disagrees with the original's predicted class on more than this % of rows (no labels).
    #[arg(long, value_parser = parse::non_negative)]
    pub max_accuracy_drop: Option<f64>,
    /// Fail (exit 3) when the candidate's RMSE against float targets y exceeds the original's by
    /// more than this (regression data).
    #[arg(long, value_parser = parse::non_negative)]
    pub max_rmse_increase: Option<f64>,
    /// Fail (exit 3) when any output value (class score or regression output) differs from the
    /// original's by more than this.
    #[arg(long, value_parser = parse::non_negative)]
    pub max_abs_diff: Option<f64>,
    #[command(flatten)]
    pub cost: CostArgs,
    /// Print a JSON report instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: ValidateArgs) -> Result<ExitCode> {
    let a = load_model(&args.original)?;
    let b = load_model(&args.candidate)?;
    let data = Dataset::load(&args.data.data, &args.data.keys(), false)?;
    let limits = gate::Limits {
        max_drop_points: args.max_accuracy_drop,
        max_rmse_increase: args.max_rmse_increase,
        max_abs_diff: args.max_abs_diff,
        min_speedup: args.cost.min_speedup,
        max_params: args.cost.max_params,
    };
    if let Err(e) = limits.check(gate::GateMetric::for_data(&data), &data.path) {
        return Err(anyhow::Error::new(e).context(limit_flag_hint(&limits)));
    }
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
        &limits,
        "",
    )
    .with_context(|| {
        format!(
            "cannot validate {} against {}",
            args.candidate.display(),
            args.original.display()
        )
    })?;
    if args.json {
        super::output::print_json(&v, "validation")?;
    } else {
        print_text(&v);
    }
    Ok(if v.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

/// The flags whose values a refused limit came from.
fn limit_flag_hint(limits: &gate::Limits) -> String {
    let mut flags = Vec::new();
    if limits.max_drop_points.is_some() {
        flags.push("--max-accuracy-drop");
    }
    if limits.max_rmse_increase.is_some() {
        flags.push("--max-rmse-increase");
    }
    format!("{} cannot gate this data", flags.join(" and "))
}

fn print_text(v: &validate::Validation) {
    let cell = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.4}"));
    println!("{:<22} {:>12} {:>12}", "", "original", "candidate");
    let (o, c) = (&v.original, &v.candidate);
    if o.accuracy.is_some() {
        println!(
            "{:<22} {:>12} {:>12}",
            "accuracy",
            cell(o.accuracy),
            cell(c.accuracy)
        );
    }
    if o.rmse.is_some() {
        println!("{:<22} {:>12} {:>12}", "RMSE", cell(o.rmse), cell(c.rmse));
    }
    println!("{:<22} {:>12} {:>12}", "params", o.params, c.params);
    println!(
        "{:<22} {:>12} {:>12}",
        "dense MACs / sample", o.macs, c.macs
    );
    println!(
        "{:<22} {:>12} {:>12}",
        "file bytes", o.file_bytes, c.file_bytes
    );
    for line in latency_lines(v) {
        println!("{line}");
    }
    match (v.gate, v.accuracy_drop, v.rmse_increase) {
        (_, Some(drop), _) => println!(
            "accuracy drop {drop:.2} points, top-1 agreement {:.4}, max |Δ score| {:.3e} ({} samples)",
            v.agreement, v.max_abs_diff, v.samples
        ),
        (_, None, Some(up)) => println!(
            "RMSE increase {up:.6}, max |Δ output| {:.3e} ({} samples)",
            v.max_abs_diff, v.samples
        ),
        _ => println!(
            "no labels: top-1 agreement with the original {:.4}, max |Δ score| {:.3e} ({} samples)",
            v.agreement, v.max_abs_diff, v.samples
        ),
    }
    let asked = [
        v.max_accuracy_drop,
        v.max_rmse_increase,
        v.allowed_max_abs_diff,
        v.min_speedup,
        v.max_params.map(|p| p as f64),
    ];
    if asked.iter().any(Option::is_some) {
        match &v.reason {
            None => println!("gate ({}): passed", gate_summary(v)),
            Some(r) => println!("gate ({}): FAILED: {r}", gate_summary(v)),
        }
    }
}

/// The limits asked for, as the text report states them.
fn gate_summary(v: &validate::Validation) -> String {
    let mut parts = Vec::new();
    if let Some(p) = v.max_accuracy_drop {
        parts.push(match v.gate {
            gate::GateMetric::Agreement => format!("≤ {p} points of disagreement"),
            _ => format!("≤ {p} points"),
        });
    }
    if let Some(r) = v.max_rmse_increase {
        parts.push(format!("RMSE increase ≤ {r}"));
    }
    if let Some(d) = v.allowed_max_abs_diff {
        parts.push(format!("max |Δ| ≤ {d}"));
    }
    if let Some(s) = v.min_speedup {
        parts.push(format!("speed-up ≥ {s}×"));
    }
    if let Some(p) = v.max_params {
        parts.push(format!("params ≤ {p}"));
    }
    parts.join(", ")
}

/// Median latency in each engine, original → candidate, with the speed-up at the large batch.
pub fn latency_lines(v: &validate::Validation) -> Vec<String> {
    let (o, c) = (&v.original, &v.candidate);
    let tract = [
        (o.latency_ms_batch1, c.latency_ms_batch1),
        (o.latency_ms_batch_n, c.latency_ms_batch_n),
    ];
    let ort = |a: Option<Latency>, b: Option<Latency>| {
        a.zip(b)
            .map(|(a, b)| [(a.batch1_ms, b.batch1_ms), (a.batch_n_ms, b.batch_n_ms)])
    };
    let rows = [
        ("tract", Some(tract)),
        (
            "ONNX Runtime, 1 thread",
            ort(o.ort_latency_1_thread, c.ort_latency_1_thread),
        ),
        (
            "ONNX Runtime, default",
            ort(o.ort_latency_default_threads, c.ort_latency_default_threads),
        ),
    ];
    let mut lines = vec![format!(
        "{:<24} {:>22} {:>30}",
        "latency, median ms",
        "batch 1",
        format!("batch {}", v.batch_n)
    )];
    for (engine, figures) in rows {
        let Some([(a1, b1), (an, bn)]) = figures else {
            continue;
        };
        lines.push(format!(
            "{engine:<24} {:>22} {:>30}",
            format!("{a1:.4} → {b1:.4}"),
            format!("{an:.4} → {bn:.4} ({:.2}×)", an / bn)
        ));
    }
    lines
}
