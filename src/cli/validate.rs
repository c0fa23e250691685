//! `bean-onnx validate`: a candidate against the original, with the gate's exit code.
use super::{load_model, parse, DataArgs};
use anyhow::{Context, Result};
use bean_onnx::data::Dataset;
use bean_onnx::validate;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

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
    #[arg(long, value_parser = parse::non_negative)]
    pub max_accuracy_drop: Option<f64>,
    /// Print a JSON report instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: ValidateArgs) -> Result<ExitCode> {
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
        super::output::print_json(&v, "validation")?;
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
