//! The `bean-onnx` command line. Exit codes: 0 ok, 1 error, 2 usage, 3 gate failed.
use anyhow::{Context, Result};
use bean_onnx::data::{DataKeys, Dataset};
use bean_onnx::engine::{Device, EngineKind, EngineOptions};
use bean_onnx::{eval, inspect, onnx};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "bean-onnx",
    version,
    about = "Make ONNX MLPs smaller without the training code"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show a model's opsets, inputs, outputs and dense layers (params, MACs per sample).
    Inspect {
        /// The ONNX model.
        model: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Accuracy of a model on labelled data (.npz with arrays x and y).
    Eval {
        /// The ONNX model.
        model: PathBuf,
        #[command(flatten)]
        data: DataArgs,
        /// Engine that runs the model.
        #[arg(long, value_enum, default_value = "tract")]
        engine: EngineKind,
        /// Device for --engine ort: cpu, cuda or cuda:N.
        #[arg(long, default_value = "cpu")]
        device: Device,
        /// Intra-op threads (0: the engine decides).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct DataArgs {
    /// Labelled data: .npz (plain or compressed) with features and integer labels.
    #[arg(long)]
    data: PathBuf,
    /// Name of the feature array (float32, float64 or uint8; reshaped to the model's input).
    #[arg(long, default_value = "x")]
    x_key: String,
    /// Name of the label array (integers).
    #[arg(long, default_value = "y")]
    y_key: String,
}

impl DataArgs {
    fn keys(&self) -> DataKeys {
        DataKeys {
            x: self.x_key.clone(),
            y: self.y_key.clone(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn load_model(path: &std::path::Path) -> Result<bean_onnx::ir::Model> {
    let model =
        onnx::load(path).with_context(|| format!("cannot read model {}", path.display()))?;
    for w in &model.warnings {
        eprintln!("warning: {}: {w}", path.display());
    }
    Ok(model)
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Inspect { model, json } => {
            let m = load_model(&model)?;
            let report = inspect::report(&m)
                .with_context(|| format!("cannot inspect {}", model.display()))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{report}");
            }
        }
        Command::Eval {
            model,
            data,
            engine,
            device,
            threads,
            json,
        } => {
            let m = load_model(&model)?;
            let ds = Dataset::load(&data.data, &data.keys(), true)?;
            let opts = EngineOptions { threads, device };
            let r = eval::evaluate(&m, &ds, engine, &opts)
                .with_context(|| format!("cannot evaluate {}", model.display()))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!(
                    "accuracy {:.4} ({} / {} samples, engine {})",
                    r.accuracy, r.correct, r.samples, r.engine
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
