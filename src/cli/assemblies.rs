//! `bean-onnx assemblies`: each hidden layer's assemblies, their modularity, and a picture.
use super::{check_outputs, load_model, EngineArgs};
use anyhow::{bail, Context, Result};
use bean_onnx::data::Dataset;
use bean_onnx::fsutil::Output;
use bean_onnx::{assemblies, plot, prune};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args)]
#[command(allow_negative_numbers = true)]
pub struct AssembliesArgs {
    /// The ONNX model.
    pub model: PathBuf,
    /// Data: group neurons by activity correlation on it instead of by co-connectivity.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Name of the feature array in --data.
    #[arg(long, default_value = "x")]
    pub x_key: String,
    /// Draw Â of each hidden layer, neurons reordered by assembly, to this PNG.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: AssembliesArgs) -> Result<ExitCode> {
    let model = load_model(&args.model)?;
    if let Some(plot) = &args.plot {
        let data: Vec<&Path> = args.data.iter().map(PathBuf::as_path).collect();
        let plot_output = Output {
            label: "--plot",
            path: plot,
        };
        check_outputs(&model, &args.model, &data, &[plot_output])?;
    }
    let view = bean_onnx::mlp::MlpView::find(&model.graph)
        .with_context(|| format!("cannot find assemblies in {}", args.model.display()))?;
    let activations = match &args.data {
        Some(p) => {
            let keys = bean_onnx::data::DataKeys {
                x: args.x_key.clone(),
                y: "y".into(),
            };
            let data = Dataset::load(p, &keys, false)?.evenly_spaced(10_000);
            let (kind, opts) = args.engine.resolve();
            Some(prune::hidden_activations(
                &model, &view, &data, kind, &opts,
            )?)
        }
        None => None,
    };
    let (layers, panels) = assemblies::hidden_layers(&model, &view, activations.as_deref())
        .with_context(|| format!("cannot find assemblies in {}", args.model.display()))?;
    if layers.is_empty() {
        bail!(
            "{}: the dense chain has no hidden layer",
            args.model.display()
        );
    }
    if let Some(p) = &args.plot {
        plot::write_panels(&panels, p)?;
    }
    if args.json {
        super::output::print_json(&layers, "layers")?;
    } else {
        for l in &layers {
            println!(
                "hidden layer {}: {} neurons, {} assemblies (sizes {:?}), modularity {:.3} ({})",
                l.layer,
                l.n_neurons,
                l.assemblies.len(),
                l.sizes,
                l.modularity,
                l.source
            );
        }
        if let Some(p) = &args.plot {
            println!("wrote {}", p.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
