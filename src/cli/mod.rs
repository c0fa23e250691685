//! Command implementations behind `main`: clap structs are turned into validated library configs.
pub mod assemblies;
mod bars;
pub mod compress;
pub mod finetune;
pub mod output;
mod parse;
mod plotting;
pub mod prune;
pub mod validate;

pub use bars::Bars;

use anyhow::Result;
use bean_onnx::data::DataKeys;
use bean_onnx::engine::{ort_engine, Device, EngineKind, EngineOptions};
use bean_onnx::fsutil::{Output, OutputLock};
use bean_onnx::ir::Model;
use bean_onnx::onnx;
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct DataArgs {
    /// Data: an .npz file (plain or compressed) with features x and integer labels y; a folder
    /// holding x.npy and y.npy (x memory-mapped, read a batch at a time); or a .csv file with a
    /// header row, the y column holding the labels and every other column a feature.
    #[arg(long)]
    pub data: PathBuf,
    /// Name of the feature array, in an .npz or as <NAME>.npy in a folder (float32, float64 or
    /// uint8; reshaped to the model's input). A CSV's features are all its other columns.
    #[arg(long, default_value = "x")]
    pub x_key: String,
    /// Name of the label array (in an .npz, or <NAME>.npy in a folder), or of a CSV's label
    /// column.
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
    /// ONNX Runtime intra-op threads (0: it decides; at most 4 × the CPU cores). tract runs on
    /// one thread and ignores this.
    #[arg(long, default_value_t = 0, value_parser = parse::threads)]
    pub threads: usize,
}

impl EngineArgs {
    /// The engine to use: auto is ort when its library loads (and always for a GPU device, which
    /// only ort has), else tract, with a note saying why ort could not be used. The engines
    /// themselves refuse a device they do not have.
    pub fn resolve(&self) -> (EngineKind, EngineOptions) {
        let kind = match self.engine {
            EngineChoice::Ort => EngineKind::Ort,
            EngineChoice::Tract => EngineKind::Tract,
            EngineChoice::Auto if self.device != Device::Cpu => EngineKind::Ort,
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
        let opts = EngineOptions {
            threads: self.threads,
            device: self.device,
            ..Default::default()
        };
        (kind, opts)
    }
}

pub fn load_model(path: &Path) -> Result<Model> {
    let model = onnx::load(path).map_err(|e| match e {
        // These name the file already.
        e @ (bean_onnx::Error::Io { .. } | bean_onnx::Error::Decode { .. }) => {
            anyhow::Error::new(e).context("cannot read the model")
        }
        e => anyhow::Error::new(e).context(format!("cannot read model {}", path.display())),
    })?;
    for w in &model.warnings {
        eprintln!("warning: {}: {w}", path.display());
    }
    Ok(model)
}

/// Checks, before any work is done, that every file the command writes (`outputs`, each with
/// the flag or description the user knows it by) can be written: see
/// [`bean_onnx::fsutil::check_outputs`]. The inputs are the model at `model_path`, its external
/// data files and `data_files` (a data folder's `.npy` files with it). Returns the input files, which `onnx::save` also refuses to
/// write over, as a last line of defence.
pub fn check_outputs(
    model: &Model,
    model_path: &Path,
    data_files: &[&Path],
    outputs: &[Output],
) -> Result<Vec<PathBuf>> {
    let base = bean_onnx::fsutil::folder(model_path);
    let mut inputs: Vec<PathBuf> = vec![model_path.to_path_buf()];
    inputs.extend(
        model
            .graph
            .external_locations()
            .iter()
            .map(|l| base.join(l)),
    );
    inputs.extend(
        data_files
            .iter()
            .flat_map(|p| bean_onnx::data::folder::input_files(p)),
    );
    bean_onnx::fsutil::check_outputs(&inputs, outputs)?;
    Ok(inputs)
}

/// The files written with a model at `output`: the model, its external data, and the lock held
/// while they are written.
pub fn model_outputs(output: &Path) -> [(String, PathBuf); 3] {
    [
        ("-o".to_string(), output.to_path_buf()),
        ("-o's data file".to_string(), onnx::data_file_of(output)),
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
