//! The `bean-onnx` command line. Exit codes: 0 ok, 1 error, 2 usage, 3 gate failed,
//! 130/143 interrupted by SIGINT/SIGTERM.
#![warn(clippy::too_many_lines)]
mod cli;

use anyhow::{Context, Result};
use bean_onnx::data::Dataset;
use bean_onnx::{eval, inspect};
use clap::{Parser, Subcommand};
use cli::{load_model, DataArgs, EngineArgs};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "bean-onnx",
    version,
    disable_version_flag = true,
    args_conflicts_with_subcommands = true,
    override_usage = "bean-onnx <COMMAND>\n       bean-onnx --version",
    arg_required_else_help = true,
    about = "Make ONNX MLPs smaller without the training code"
)]
struct Cli {
    /// Print the version and the ONNX Runtime library the ort engine would use.
    #[arg(short = 'V', long)]
    version: bool,
    #[command(subcommand)]
    command: Option<Command>,
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
        #[command(flatten)]
        engine: EngineArgs,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Fine-tune the dense layers with BEAN (or a baseline regularizer) and write the model.
    Finetune(Box<cli::finetune::FinetuneArgs>),
    /// Show each hidden layer's neuron assemblies, their modularity, and a picture of them.
    Assemblies(Box<cli::assemblies::AssembliesArgs>),
    /// Remove and merge hidden neurons along assemblies and write the smaller model.
    Prune(Box<cli::prune::PruneArgs>),
    /// Compare a candidate with the original: accuracy (or agreement, or RMSE), size, latency; gate with exit 3.
    Validate(Box<cli::validate::ValidateArgs>),
    /// Fine-tune with BEAN, prune within a budget, heal, validate: one CI step.
    Compress(Box<cli::compress::CompressArgs>),
}

fn main() -> ExitCode {
    // Output piped into `head` and the like ends the process quietly, as in any Unix tool,
    // instead of a panic in println! (Rust ignores SIGPIPE by default).
    // SAFETY: called first, before any other thread exists; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    bean_onnx::engine::tract_engine::quiet_tract_panics();
    if let Err(e) = handle_signals() {
        eprintln!("error: cannot install the signal handlers: {e}");
        return ExitCode::from(1);
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            // A run stopped by a signal exits as the shell expects: 128 + the signal's number.
            let signal = e.chain().find_map(|c| match c.downcast_ref() {
                Some(bean_onnx::Error::Interrupted { signal }) => Some(*signal),
                _ => None,
            });
            ExitCode::from(signal.map_or(1, |s| 128 + s as u8))
        }
    }
}

/// SIGINT and SIGTERM ask the run to stop at the next step, batch or candidate (see
/// `bean_onnx::interrupt`), so temporary files are removed and nothing half-done is written; a
/// second one ends the process at once.
fn handle_signals() -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, asked.clone())?;
        signal_hook::flag::register(signal, asked.clone())?;
        signal_hook::flag::register_usize(signal, bean_onnx::interrupt::flag(), signal as usize)?;
    }
    Ok(())
}

/// `bean-onnx --version`: this program's version, then ONNX Runtime's (or why there is none).
fn print_version() {
    use bean_onnx::engine::ort_engine;
    println!("bean-onnx {}", env!("CARGO_PKG_VERSION"));
    let runtime = ort_engine::find_library().and_then(|lib| {
        let version = ort_engine::library_version(&lib)?;
        Ok(format!("ONNX Runtime {version} ({})", lib.display()))
    });
    match runtime {
        Ok(line) => println!("{line}"),
        Err(e) => println!("ONNX Runtime: none ({e}); the tract engine is built in"),
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    // clap shows the help for no arguments at all, so no command means --version.
    let Some(command) = cli.command else {
        print_version();
        return Ok(ExitCode::SUCCESS);
    };
    match command {
        Command::Inspect { model, json } => {
            let m = load_model(&model)?;
            let report = inspect::report(&m)
                .with_context(|| format!("cannot inspect {}", model.display()))?;
            if json {
                cli::output::print_json(&report, "report")?;
            } else {
                print!("{report}");
            }
        }
        Command::Eval {
            model,
            data,
            engine,
            json,
        } => {
            let m = load_model(&model)?;
            let ds = Dataset::load(&data.data, &data.keys(), true)?;
            let (engine, opts) = engine.resolve();
            let r = eval::evaluate(&m, &ds, engine, &opts)
                .with_context(|| format!("cannot evaluate {}", model.display()))?;
            if json {
                cli::output::print_json(&r, "result")?;
            } else {
                println!(
                    "accuracy {:.4} ({} / {} samples, engine {})",
                    r.accuracy, r.correct, r.samples, r.engine
                );
            }
        }
        Command::Finetune(args) => return cli::finetune::run(*args),
        Command::Assemblies(args) => return cli::assemblies::run(*args),
        Command::Prune(args) => return cli::prune::run(*args),
        Command::Validate(args) => return cli::validate::run(*args),
        Command::Compress(args) => return cli::compress::run(*args),
    }
    Ok(ExitCode::SUCCESS)
}
