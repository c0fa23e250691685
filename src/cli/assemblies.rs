//! `bean-onnx assemblies`: each hidden layer's assemblies, their modularity, and a picture.
use super::{check_outputs, load_model, EngineArgs};
use anyhow::{bail, Context, Result};
use bean_onnx::data::Dataset;
use bean_onnx::plot::assemblies::{AssembliesFigure, LayerPanel};
use bean_onnx::{assemblies, prune};
use clap::Args;
use ndarray::Array2;
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
    /// Name of the label array in --data (for the picture's class heatmap; optional).
    #[arg(long, default_value = "y")]
    pub y_key: String,
    /// Draw each hidden layer's similarity matrix, neurons reordered by assembly (with --data
    /// and labels, also the class × neuron mean activation) to this .png or .svg; the numbers
    /// drawn go to PLOT.json.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The data's hidden activations and its labels (None when the data has none).
struct Activity {
    activations: Vec<Array2<f32>>,
    labels: Option<Vec<i64>>,
}

pub fn run(args: AssembliesArgs) -> Result<ExitCode> {
    let model = load_model(&args.model)?;
    if let Some(plot) = &args.plot {
        let data: Vec<&Path> = args.data.iter().map(PathBuf::as_path).collect();
        let outputs = super::plotting::outputs(plot);
        check_outputs(&model, &args.model, &data, &super::as_outputs(&outputs))?;
        super::plotting::check_format(plot)?;
    }
    let view = bean_onnx::mlp::MlpView::find(&model.graph)
        .with_context(|| format!("cannot find assemblies in {}", args.model.display()))?;
    let activity = match &args.data {
        Some(p) => Some(activity(&args, &model, &view, p)?),
        None => None,
    };
    let activations = activity.as_ref().map(|a| a.activations.as_slice());
    let (layers, similarities) = assemblies::hidden_layers(&model, &view, activations)
        .with_context(|| format!("cannot find assemblies in {}", args.model.display()))?;
    if layers.is_empty() {
        bail!(
            "{}: the dense chain has no hidden layer",
            args.model.display()
        );
    }
    if let Some(p) = &args.plot {
        let figure = figure(&args, &layers, &similarities, activity.as_ref());
        super::plotting::write(&figure, p)?;
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

fn activity(
    args: &AssembliesArgs,
    model: &bean_onnx::ir::Model,
    view: &bean_onnx::mlp::MlpView,
    path: &Path,
) -> Result<Activity> {
    let keys = bean_onnx::data::DataKeys {
        x: args.x_key.clone(),
        y: args.y_key.clone(),
    };
    let data = Dataset::load(path, &keys, false)?.evenly_spaced(10_000);
    let (kind, opts) = args.engine.resolve();
    let activations = prune::hidden_activations(model, view, &data, kind, &opts)?;
    if data.y.is_none() && args.plot.is_some() && !args.json {
        eprintln!(
            "note: {} has no integer labels '{}': the picture has no class heatmap",
            path.display(),
            args.y_key
        );
    }
    Ok(Activity {
        activations,
        labels: data.y,
    })
}

fn figure(
    args: &AssembliesArgs,
    layers: &[assemblies::HiddenLayerAssemblies],
    similarities: &[Array2<f64>],
    activity: Option<&Activity>,
) -> AssembliesFigure {
    let panels = layers
        .iter()
        .zip(similarities)
        .map(|(l, sim)| {
            let means = activity.and_then(|a| {
                let labels = a.labels.as_deref()?;
                Some(assemblies::class_means(
                    a.activations[l.layer].view(),
                    labels,
                ))
            });
            let means = means.as_ref().map(|(c, m)| (c.as_slice(), m));
            LayerPanel::new(l.layer, l.source, l.modularity, &l.assemblies, sim, means)
        })
        .collect();
    let name = args
        .model
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    AssembliesFigure {
        title: format!("Neuron assemblies of {name}"),
        layers: panels,
    }
}
