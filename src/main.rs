//! The `bean-onnx` command line. Exit codes: 0 ok, 1 error, 2 usage, 3 gate failed.
mod cli;

use anyhow::{Context, Result};
use bean_onnx::data::Dataset;
use bean_onnx::engine::Device;
use bean_onnx::{eval, inspect};
use clap::{Parser, Subcommand};
use cli::{load_model, DataArgs, EngineChoice};
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
        /// Engine that runs the model (auto: ort when its library is found, else tract).
        #[arg(long, value_enum, default_value = "tract")]
        engine: EngineChoice,
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
    /// Fine-tune the dense layers with BEAN (or a baseline regularizer) and write the model.
    Finetune(Box<cli::finetune::FinetuneArgs>),
    /// Show each hidden layer's neuron assemblies, their modularity, and a picture of them.
    Assemblies(Box<cli::prune::AssembliesArgs>),
    /// Remove and merge hidden neurons along assemblies and write the smaller model.
    Prune(Box<cli::prune::PruneArgs>),
    /// Compare a candidate with the original: accuracy, agreement, size, latency; gate with exit 3.
    Validate(Box<cli::prune::ValidateArgs>),
    /// Fine-tune with BEAN, prune within an accuracy budget, heal, validate: one CI step.
    Compress(Box<cli::compress::CompressArgs>),
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
            let (engine, opts) = cli::resolve_engine(engine, device, threads)?;
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
        Command::Finetune(args) => return cli::finetune::run(*args),
        Command::Assemblies(args) => return cli::prune::run_assemblies(*args),
        Command::Prune(args) => return cli::prune::run_prune(*args),
        Command::Validate(args) => return cli::prune::run_validate(*args),
        Command::Compress(args) => return cli::compress::run(*args),
    }
    Ok(ExitCode::SUCCESS)
}
