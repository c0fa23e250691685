//! Command implementations behind `main`: clap structs are turned into validated library configs.
pub mod compress;
pub mod finetune;
pub mod prune;

use anyhow::{bail, Context, Result};
use bean_onnx::data::DataKeys;
use bean_onnx::engine::{ort_engine, Device, EngineKind, EngineOptions};
use bean_onnx::fsutil::{Output, OutputLock};
use bean_onnx::ir::Model;
use bean_onnx::onnx;
use bean_onnx::tensor::Storage;
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct DataArgs {
    /// Data: .npz (plain or compressed) with features x and integer labels y.
    #[arg(long)]
    pub data: PathBuf,
    /// Name of the feature array (float32, float64 or uint8; reshaped to the model's input).
    #[arg(long, default_value = "x")]
    pub x_key: String,
    /// Name of the label array.
    #[arg(long, default_value = "y")]
    pub y_key: String,
}

impl DataArgs {
    pub fn keys(&self) -> DataKeys {
        DataKeys {
            x: self.x_key.clone(),
            y: self.y_key.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineChoice {
    /// ort when an ONNX Runtime library is found, else tract.
    Auto,
    Ort,
    Tract,
}

#[derive(Args)]
pub struct EngineArgs {
    /// Engine that runs the graphs.
    #[arg(long, value_enum, default_value = "auto")]
    pub engine: EngineChoice,
    /// Device for the ort engine: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    /// Intra-op threads (0: the engine decides; at most 4 × the CPU cores).
    #[arg(long, default_value_t = 0, value_parser = parse_threads)]
    pub threads: usize,
}

impl EngineArgs {
    pub fn resolve(&self) -> Result<(EngineKind, EngineOptions)> {
        resolve_engine(self.engine, self.device, self.threads)
    }
}

/// `--threads`: 0 (the engine decides) up to 4 × the cores; more only slows a run down, and a
/// huge count makes ONNX Runtime spend minutes creating threads.
pub fn parse_threads(s: &str) -> std::result::Result<usize, String> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let max = 4 * cores;
    match s.parse::<usize>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(format!(
            "expected 0 (the engine decides) to {max} (4 × the {cores} cores), got '{s}'"
        )),
    }
}

/// A count flag in `min..=max` (batch sizes, calibration rows): clap reports anything else as a
/// usage error naming the flag.
pub fn count_in(
    min: usize,
    max: usize,
) -> impl Fn(&str) -> std::result::Result<usize, String> + Clone {
    move |s: &str| match s.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "expected a whole number from {min} to {max}, got '{s}'"
        )),
    }
}

pub fn resolve_engine(
    choice: EngineChoice,
    device: Device,
    threads: usize,
) -> Result<(EngineKind, EngineOptions)> {
    let kind = match choice {
        EngineChoice::Ort => EngineKind::Ort,
        EngineChoice::Tract => EngineKind::Tract,
        // A GPU request needs ort: auto must not quietly pick tract for it.
        EngineChoice::Auto if device != Device::Cpu => EngineKind::Ort,
        EngineChoice::Auto => match ort_engine::check_available() {
            Ok(()) => EngineKind::Ort,
            Err(e) => {
                // A broken ONNX Runtime set-up must not hide behind the fallback: say why.
                eprintln!(
                    "note: --engine auto runs tract because ONNX Runtime cannot be used: {e}"
                );
                EngineKind::Tract
            }
        },
    };
    if kind == EngineKind::Tract && device != Device::Cpu {
        bail!("the tract engine runs on the CPU only; --device {device} needs --engine ort");
    }
    Ok((kind, EngineOptions { threads, device }))
}

pub fn load_model(path: &Path) -> Result<Model> {
    let model =
        onnx::load(path).with_context(|| format!("cannot read model {}", path.display()))?;
    for w in &model.warnings {
        eprintln!("warning: {}: {w}", path.display());
    }
    Ok(model)
}

/// Checks, before any work is done, that every file the command writes (`outputs`, each with
/// the flag or description the user knows it by) can be written: see
/// [`bean_onnx::fsutil::check_outputs`]. The inputs are the model at `model_path`, its external
/// data files and `data_files`. Returns the input files, which `onnx::save` also refuses to
/// write over, as a last line of defence.
pub fn check_outputs(
    model: &Model,
    model_path: &Path,
    data_files: &[&Path],
    outputs: &[Output],
) -> Result<Vec<PathBuf>> {
    let base = bean_onnx::fsutil::folder(model_path);
    let mut inputs: Vec<PathBuf> = vec![model_path.to_path_buf()];
    for t in &model.graph.initializers {
        if let Storage::External(r) = &t.storage {
            inputs.push(base.join(&r.location));
        }
    }
    inputs.extend(data_files.iter().map(|p| p.to_path_buf()));
    bean_onnx::fsutil::check_outputs(&inputs, outputs)?;
    Ok(inputs)
}

/// The files written with a model at `output`: the model, its external data, and the lock held
/// while they are written.
pub fn model_outputs(output: &Path) -> [(String, PathBuf); 3] {
    [
        ("-o".to_string(), output.to_path_buf()),
        ("-o's data file".to_string(), data_file_of(output)),
        ("-o's lock".to_string(), OutputLock::path_for(output)),
    ]
}

/// Borrowed [`Output`]s of owned (label, path) pairs.
pub fn as_outputs(owned: &[(String, PathBuf)]) -> Vec<Output<'_>> {
    owned
        .iter()
        .map(|(label, path)| Output { label, path })
        .collect()
}

/// One line per finished epoch, as every command that fine-tunes prints it.
pub fn epoch_line(
    label: &str,
    m: &bean_onnx::train::EpochMetrics,
    epochs: Option<usize>,
) -> String {
    let val = m
        .val_accuracy
        .map(|v| format!("  val acc {v:.4}"))
        .unwrap_or_default();
    let of = epochs.map(|e| format!("/{e}")).unwrap_or_default();
    format!(
        "{label} {}{of}: loss {:.4}  bean {:.5}  reg {:.5}  train acc {:.4}{val}  ({:.0} samples/s)",
        m.epoch, m.task_loss, m.bean, m.baseline, m.train_accuracy, m.samples_per_second
    )
}

/// `<model>.data`, where `onnx::save` puts external tensors.
pub fn data_file_of(output: &Path) -> PathBuf {
    PathBuf::from(format!("{}.data", output.display()))
}
