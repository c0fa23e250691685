//! What pruning measures on the calibration rows of one model before any cut, measured once for
//! all the ratios a search tries (compress prunes each source model at ~23 ratios):
//!
//! - the calibration rows (evenly spaced, at most `calib_rows`);
//! - the first hidden layer's activations and, when merging, their assemblies: no layer in front
//!   of it is ever cut, so they are the same at every ratio (later layers' activations depend on
//!   the cuts before them and are measured per ratio);
//! - for global allocation, every hidden neuron's cost relative to its layer's median, cheapest
//!   first: the ratio only decides how many of them go;
//! - for the refit (refit.rs), the pre-activations of every layer after the first: the targets
//!   each cut boundary's next layer is refitted to.
//!
//! Each is computed exactly as a single `prune` computes it, so a search writes the same bytes.
use super::{boundary, hidden_activations, require_finite, Allocation, Method, PruneConfig};
use crate::assemblies;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::eval;
use crate::ir::Model;
use crate::mlp::MlpView;
use ndarray::Array2;

/// The first hidden layer's activations on the calibration rows, and their assemblies when
/// merging.
pub struct FirstLayer {
    pub h: Array2<f32>,
    pub labels: Option<Vec<usize>>,
}

/// Global allocation's costs: (cost relative to the layer's median, hidden layer), cheapest
/// first; and each hidden layer's width.
pub struct GlobalCosts {
    pub costs: Vec<(f64, usize)>,
    pub sizes: Vec<usize>,
}

pub struct Calibration {
    pub rows: Dataset,
    /// None with magnitude pruning (no activations) or without hidden layers.
    pub first: Option<FirstLayer>,
    /// None unless the allocation is global (with assembly pruning).
    pub global: Option<GlobalCosts>,
    /// Pre-activations [rows, n_out] of dense layers 1.. of the uncut model, in chain order; None
    /// unless refitting (with assembly pruning).
    pub refit_targets: Option<Vec<Array2<f32>>>,
}

impl Calibration {
    /// The calibration of `model` (whose chain is `view`) on `calib` under `cfg` (its ratio
    /// ignored).
    pub fn new(model: &Model, view: &MlpView, calib: &Dataset, cfg: &PruneConfig) -> Result<Self> {
        let rows = calib.evenly_spaced(cfg.calib_rows);
        if rows.rows() < 2 && cfg.method == Method::Assembly {
            return Err(Error::data(
                &rows.path,
                "pruning needs at least 2 calibration rows",
            ));
        }
        let hidden = view.layers.len() > 1;
        let assembly = cfg.method == Method::Assembly;
        let first = (hidden && assembly)
            .then(|| first_layer(model, view, &rows, cfg))
            .transpose()?;
        let global = (hidden && assembly && cfg.allocation == Allocation::Global)
            .then(|| global_costs(model, view, &rows, cfg))
            .transpose()?;
        let refit_targets = (hidden && assembly && cfg.refit)
            .then(|| pre_activations_after_first(model, view, &rows, cfg))
            .transpose()?;
        Ok(Calibration {
            rows,
            first,
            global,
            refit_targets,
        })
    }
}

fn first_layer(
    model: &Model,
    view: &MlpView,
    rows: &Dataset,
    cfg: &PruneConfig,
) -> Result<FirstLayer> {
    let output = view.layers[0].output.as_str();
    let h = eval::tensors_on(model, &[output], rows, cfg.engine, &cfg.engine_opts)?.remove(0);
    require_finite(&h, "hidden layer 0", rows)?;
    let labels = cfg
        .merge
        .then(|| assemblies::louvain(&assemblies::activity_similarity(h.view())));
    Ok(FirstLayer { h, labels })
}

fn pre_activations_after_first(
    model: &Model,
    view: &MlpView,
    rows: &Dataset,
    cfg: &PruneConfig,
) -> Result<Vec<Array2<f32>>> {
    let names: Vec<&str> = view.layers[1..]
        .iter()
        .map(|l| l.pre_activation.as_str())
        .collect();
    let z = eval::tensors_on(model, &names, rows, cfg.engine, &cfg.engine_opts)?;
    for (k, zk) in z.iter().enumerate() {
        require_finite(zk, &format!("dense layer {} pre-activation", k + 1), rows)?;
    }
    Ok(z)
}

/// Each hidden neuron's cost relative to its layer's median cost: a layer full of dead or
/// duplicated neurons gives up more than a layer whose neurons all matter.
fn global_costs(
    model: &Model,
    view: &MlpView,
    rows: &Dataset,
    cfg: &PruneConfig,
) -> Result<GlobalCosts> {
    let h = hidden_activations(model, view, rows, cfg.engine, &cfg.engine_opts)?;
    for (k, hk) in h.iter().enumerate() {
        require_finite(hk, &format!("hidden layer {k}"), rows)?;
    }
    let mut costs: Vec<(f64, usize)> = Vec::new();
    let mut sizes = Vec::new();
    for (k, hk) in h.iter().enumerate() {
        let w_next = view.layers[k + 1].weight_matrix(&model.graph);
        let labels = cfg
            .merge
            .then(|| assemblies::louvain(&assemblies::activity_similarity(hk.view())));
        let layer_costs = boundary::initial_costs(
            hk.view(),
            w_next.view(),
            view.layers[k + 1].bias_trainable(),
            labels.as_deref(),
        );
        let mut sorted = layer_costs.clone();
        sorted.sort_by(f64::total_cmp);
        let scale = sorted[sorted.len() / 2].max(1e-12);
        costs.extend(layer_costs.into_iter().map(|c| (c / scale, k)));
        sizes.push(hk.ncols());
    }
    costs.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(GlobalCosts { costs, sizes })
}
