//! Command implementations behind `main`: clap structs are turned into validated library configs.
pub mod compress;
pub mod finetune;
pub mod prune;

use anyhow::{bail, Context, Result};
use bean_onnx::data::DataKeys;
use bean_onnx::engine::{ort_engine, Device, EngineKind, EngineOptions};
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
    /// Intra-op threads (0: the engine decides).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

impl EngineArgs {
    pub fn resolve(&self) -> Result<(EngineKind, EngineOptions)> {
        resolve_engine(self.engine, self.device, self.threads)
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
        EngineChoice::Auto if device != Device::Cpu || ort_engine::available() => EngineKind::Ort,
        EngineChoice::Auto => EngineKind::Tract,
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

/// Checks, before any work is done, that no file the command writes (`outputs`: the model, its
/// `.data`, metrics, reports, checkpoints) is one it reads (`model` at `model_path`, its external
/// data files, `data_files`), and that the output folders exist. Returns the input files, which
/// `onnx::save` refuses to write over as a last line of defence.
pub fn output_guard(
    model: &Model,
    model_path: &Path,
    data_files: &[&Path],
    outputs: &[&Path],
) -> Result<Vec<PathBuf>> {
    let base = model_path.parent().unwrap_or(Path::new("."));
    let mut inputs: Vec<PathBuf> = vec![model_path.to_path_buf()];
    for t in &model.graph.initializers {
        if let Storage::External(r) = &t.storage {
            inputs.push(base.join(&r.location));
        }
    }
    inputs.extend(data_files.iter().map(|p| p.to_path_buf()));
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    for out in outputs {
        let dir = bean_onnx::fsutil::folder(out);
        if !dir.is_dir() {
            bail!(
                "cannot write {}: folder {} does not exist",
                out.display(),
                dir.display()
            );
        }
        if inputs.iter().any(|i| same(i, out)) {
            bail!("refusing to write {}: it is an input file", out.display());
        }
    }
    Ok(inputs)
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
