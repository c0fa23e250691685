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
//! The activations all come from one pass of the model over the rows, and each layer's
//! assemblies are found once (the first layer's serve both the cut and the global costs).
//! Each is computed exactly as a single `prune` computes it, so a search writes the same bytes.
use super::{boundary, require_finite, Allocation, Method, PruneConfig};
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
        if !(hidden && cfg.method == Method::Assembly) {
            return Ok(Calibration {
                rows,
                first: None,
                global: None,
                refit_targets: None,
            });
        }
        let global = cfg.allocation == Allocation::Global;
        let measured = Measured::new(model, view, &rows, cfg, global)?;
        let labels: Vec<Option<Vec<usize>>> = measured
            .hidden
            .iter()
            .map(|h| {
                cfg.merge
                    .then(|| assemblies::louvain(&assemblies::activity_similarity(h.view())))
            })
            .collect();
        let global = global.then(|| global_costs(model, view, &measured.hidden, &labels));
        let mut hidden = measured.hidden;
        let mut labels = labels;
        Ok(Calibration {
            rows,
            first: Some(FirstLayer {
                h: hidden.swap_remove(0),
                labels: labels.swap_remove(0),
            }),
            global,
            refit_targets: measured.pre_activations,
        })
    }
}

/// What one pass of the uncut model over the calibration rows gives: the first hidden layer's
/// outputs (every hidden layer's, for global allocation) and, when refitting, the
/// pre-activations of dense layers 1...
struct Measured {
    hidden: Vec<Array2<f32>>,
    pre_activations: Option<Vec<Array2<f32>>>,
}

impl Measured {
    fn new(
        model: &Model,
        view: &MlpView,
        rows: &Dataset,
        cfg: &PruneConfig,
        every_hidden: bool,
    ) -> Result<Self> {
        let n_hidden = if every_hidden {
            view.layers.len() - 1
        } else {
            1
        };
        let mut names: Vec<(&str, String)> = view.layers[..n_hidden]
            .iter()
            .enumerate()
            .map(|(k, l)| (l.output.as_str(), format!("hidden layer {k}")))
            .collect();
        if cfg.refit {
            names.extend(view.layers.iter().enumerate().skip(1).map(|(k, l)| {
                (
                    l.pre_activation.as_str(),
                    format!("dense layer {k} pre-activation"),
                )
            }));
        }
        let tensors: Vec<&str> = names.iter().map(|(t, _)| *t).collect();
        let mut hidden = eval::tensors_on(model, &tensors, rows, cfg.engine, &cfg.engine_opts)?;
        for (a, (_, what)) in hidden.iter().zip(&names) {
            require_finite(a, what, rows)?;
        }
        let pre_activations = cfg.refit.then(|| hidden.split_off(n_hidden));
        Ok(Measured {
            hidden,
            pre_activations,
        })
    }
}

/// Each hidden neuron's cost relative to its layer's median cost: a layer full of dead or
/// duplicated neurons gives up more than a layer whose neurons all matter. `h`: every hidden
/// layer's activations; `labels`: their assemblies when merging.
fn global_costs(
    model: &Model,
    view: &MlpView,
    h: &[Array2<f32>],
    labels: &[Option<Vec<usize>>],
) -> GlobalCosts {
    let mut costs: Vec<(f64, usize)> = Vec::new();
    let mut sizes = Vec::new();
    for (k, hk) in h.iter().enumerate() {
        let w_next = view.layers[k + 1].weight_matrix(&model.graph);
        let layer_costs = boundary::initial_costs(
            hk.view(),
            w_next.view(),
            view.layers[k + 1].bias_trainable(),
            labels[k].as_deref(),
        );
        let mut sorted = layer_costs.clone();
        sorted.sort_by(f64::total_cmp);
        let scale = sorted[sorted.len() / 2].max(1e-12);
        costs.extend(layer_costs.into_iter().map(|c| (c / scale, k)));
        sizes.push(hk.ncols());
    }
    costs.sort_by(|a, b| a.0.total_cmp(&b.0));
    GlobalCosts { costs, sizes }
}
