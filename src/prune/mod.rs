//! Pruning a model's hidden neurons along assemblies (and optionally its unused input features),
//! and the search for the largest cut within a budget: accuracy points on labels (also the
//! original's predicted classes, for agreement) or RMSE on float targets.
pub mod boundary;
mod calibration;
pub mod margin;
pub mod refit;
pub mod selection;

pub use boundary::{BoundaryReport, Method};

use crate::assemblies;
use crate::data::Dataset;
use crate::engine::{EngineKind, EngineOptions};
use crate::error::{Error, Result};
use crate::eval;
use crate::gate::GateMetric;
use crate::ir::{AttrValue, Attribute, Graph, GraphPatch, Model, Node};
use crate::mlp::{DenseLayer, DenseOp, MlpView};
use crate::progress::Progress;
use crate::tensor::{DataType, Storage, Tensor, TensorData};
use calibration::{Calibration, GlobalCosts};
use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;

#[derive(Debug, Clone)]
pub struct PruneConfig {
    /// Fraction of each hidden layer's neurons to remove, in [0, 1).
    pub ratio: f64,
    /// Kept widths are multiples of this (1: any width).
    pub round_to: usize,
    pub method: Method,
    /// Merge near-duplicate neurons within an assembly (Method::Assembly).
    pub merge: bool,
    /// Refit each cut boundary's next layer on the kept neurons by ridge regression onto the
    /// uncut model's pre-activations (Method::Assembly; refit.rs).
    pub refit: bool,
    /// Also drop input features that are constant on the data or unused, behind a Gather.
    pub inputs: bool,
    /// Calibration rows used (evenly spaced over the data).
    pub calib_rows: usize,
    pub allocation: Allocation,
    pub engine: EngineKind,
    pub engine_opts: EngineOptions,
}

/// How a ratio of hidden neurons is shared among the hidden layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Allocation {
    /// The same fraction of every hidden layer.
    Uniform,
    /// The cheapest neurons of the whole chain, each cost relative to its layer's median cost
    /// (needs data; the magnitude method always shares uniformly).
    Global,
}

crate::names::named!(Allocation, "allocation", [Uniform => "uniform", Global => "global"]);

impl Default for PruneConfig {
    fn default() -> Self {
        PruneConfig {
            ratio: 0.5,
            round_to: 1,
            method: Method::Assembly,
            merge: true,
            refit: true,
            inputs: false,
            calib_rows: 10_000,
            allocation: Allocation::Uniform,
            engine: EngineKind::Tract,
            engine_opts: EngineOptions::default(),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LayerPruneReport {
    /// Index of the dense layer whose outputs (hidden neurons) were pruned.
    pub layer: usize,
    #[serde(flatten)]
    pub counts: BoundaryReport,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct InputReport {
    pub before: usize,
    pub after: usize,
    pub constant: usize,
    pub unused: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PruneReport {
    pub ratio: f64,
    pub method: Method,
    pub allocation: Allocation,
    pub hidden_before: usize,
    pub hidden_after: usize,
    pub layers: Vec<LayerPruneReport>,
    pub inputs: Option<InputReport>,
}

/// Kept width of a layer of `n` neurons.
pub fn kept_width(n: usize, ratio: f64, round_to: usize) -> usize {
    let k = ((1.0 - ratio) * n as f64).round() as usize;
    let k = if round_to > 1 {
        let r = ((k as f64 / round_to as f64).round() as usize) * round_to;
        if r == 0 {
            round_to
        } else {
            r
        }
    } else {
        k
    };
    k.clamp(1, n.max(1))
}

/// Outputs of every hidden layer (dense layers 0..L-2) on `data`, in one pass.
pub fn hidden_activations(
    model: &Model,
    view: &MlpView,
    data: &Dataset,
    kind: EngineKind,
    opts: &EngineOptions,
) -> Result<Vec<Array2<f32>>> {
    let names: Vec<&str> = view.layers[..view.layers.len() - 1]
        .iter()
        .map(|l| l.output.as_str())
        .collect();
    if names.is_empty() {
        return Ok(vec![]);
    }
    eval::tensors_on(model, &names, data, kind, opts)
}

/// Refuses activations that are not finite: every cost, fit and folded bias computed from them
/// would be NaN. `what` names them ("hidden layer 1").
pub(crate) fn require_finite(h: &Array2<f32>, what: &str, calib: &Dataset) -> Result<()> {
    match h
        .rows()
        .into_iter()
        .position(|r| r.iter().any(|v| !v.is_finite()))
    {
        None => Ok(()),
        Some(row) => Err(Error::data(
            &calib.path,
            format!(
                "the {what} activations overflow to NaN or infinity on calibration row {row} \
                 (are the features scaled as the model expects?)"
            ),
        )),
    }
}

/// Adds to `patch` the last dimension `width` for the recorded shapes of a layer's tensors (and
/// of the tensors its pass-through ops carry), and for an explicit width in a pass-through
/// Reshape's shape.
fn stage_widths(graph: &Graph, layer: &DenseLayer, width: usize, patch: &mut GraphPatch) {
    let mut names = vec![layer.pre_activation.clone(), layer.output.clone()];
    if let DenseOp::MatMul { node, .. } = layer.op {
        names.extend(graph.nodes[node].outputs.first().cloned());
    }
    for &n in &layer.pass_through {
        let node = &graph.nodes[n];
        names.extend(node.outputs.iter().filter(|o| !o.is_empty()).cloned());
        let shape = (node.op_type == "Reshape").then(|| node.input(1)).flatten();
        if let Some((name, [rows, cols])) =
            shape.and_then(|s| Some((s, graph.stored(s)?.as_i64()?)))
        {
            if *cols > 0 {
                patch.set_i64(name, vec![*rows, width as i64]);
            }
        }
    }
    for name in names {
        patch.set_width(&name, width);
    }
}

/// Prunes every hidden layer of `model` to `1 - ratio` of its width, layer after layer (each
/// layer's activations are measured on the model pruned so far).
pub fn prune(model: &Model, calib: &Dataset, cfg: &PruneConfig) -> Result<(Model, PruneReport)> {
    prune_with(model, &MlpView::find(&model.graph)?, calib, cfg)
}

/// [`prune`] with `model`'s chain already found (`view`, of this very graph).
pub fn prune_with(
    model: &Model,
    view: &MlpView,
    calib: &Dataset,
    cfg: &PruneConfig,
) -> Result<(Model, PruneReport)> {
    if !(0.0..1.0).contains(&cfg.ratio) {
        return Err(Error::Invalid(format!(
            "the pruning ratio must be in [0, 1), got {}",
            cfg.ratio
        )));
    }
    view.require_whole()?;
    let calibration = Calibration::new(model, view, calib, cfg)?;
    prune_calibrated(model, view, &calibration, cfg)
}

/// [`prune_with`] on what was measured of `model` beforehand ([`Calibration`], of this very
/// model and `cfg` but for the ratio).
fn prune_calibrated(
    model: &Model,
    view: &MlpView,
    calibration: &Calibration,
    cfg: &PruneConfig,
) -> Result<(Model, PruneReport)> {
    let calib = &calibration.rows;
    let mut m = model.clone();
    // Kept in step with the model as layers shrink (pruning adds and removes no nodes).
    let mut view = view.clone();
    let n_layers = view.layers.len();
    if n_layers < 2 && !cfg.inputs {
        return Err(Error::NoDenseChain(
            "the dense chain has a single layer: no hidden neurons to prune".into(),
        ));
    }
    let hidden_before: usize = view.layers[..n_layers - 1].iter().map(|l| l.n_out).sum();
    let widths: Vec<usize> = match &calibration.global {
        Some(g) if cfg.ratio > 0.0 => global_widths(g, cfg),
        _ => view.layers[..n_layers - 1]
            .iter()
            .map(|l| kept_width(l.n_out, cfg.ratio, cfg.round_to))
            .collect(),
    };
    let mut layers = Vec::new();
    for (l, &keep_n) in widths.iter().enumerate() {
        crate::interrupt::check()?;
        layers.push(LayerPruneReport {
            layer: l,
            counts: prune_layer(&mut m, &mut view, l, keep_n, calibration, cfg)?,
        });
    }
    let inputs = if cfg.inputs {
        Some(prune_inputs(&mut m, &view, calib, cfg)?)
    } else {
        None
    };
    m.graph.sync_stored_types();
    Ok((
        m,
        PruneReport {
            ratio: cfg.ratio,
            method: cfg.method,
            allocation: cfg.allocation,
            hidden_before,
            hidden_after: layers.iter().map(|l| l.counts.n_after).sum(),
            layers,
            inputs,
        },
    ))
}

/// Cuts hidden layer `l` of `m` to `keep_n` neurons, its activations measured on the calibration
/// rows in the model pruned so far (the first layer's as measured beforehand): the layer's kept
/// columns, the next layer compensated, the recorded widths.
fn prune_layer(
    m: &mut Model,
    view: &mut MlpView,
    l: usize,
    keep_n: usize,
    calibration: &Calibration,
    cfg: &PruneConfig,
) -> Result<BoundaryReport> {
    let calib = &calibration.rows;
    let (layer, next) = (&view.layers[l], &view.layers[l + 1]);
    let n = layer.n_out;
    if keep_n == n {
        return Ok(BoundaryReport {
            n_before: n,
            n_after: n,
            ..Default::default()
        });
    }
    let (h, labels) = match (cfg.method, &calibration.first) {
        (Method::Assembly, Some(first)) if l == 0 => (first.h.clone(), first.labels.clone()),
        (Method::Assembly, _) => {
            let h = eval::tensors_on(m, &[&layer.output], calib, cfg.engine, &cfg.engine_opts)?
                .remove(0);
            require_finite(&h, &format!("hidden layer {l}"), calib)?;
            let labels = cfg
                .merge
                .then(|| assemblies::louvain(&assemblies::activity_similarity(h.view())));
            (h, labels)
        }
        (Method::Magnitude, _) => (Array2::zeros((0, n)), None),
    };
    let w_next = next.weight_matrix(&m.graph);
    let b_next = next.bias_trainable().then(|| next.bias_vector(&m.graph));
    let p = boundary::plan(
        h.view(),
        w_next.view(),
        b_next.as_ref(),
        keep_n,
        cfg.method,
        labels.as_deref(),
    );
    let p = match &calibration.refit_targets {
        Some(targets) => refitted(p, h.view(), targets[l].view(), next.bias_trainable()),
        None => p,
    };
    let w_l = layer.weight_matrix(&m.graph).select(Axis(1), &p.keep);
    let b_l = layer
        .bias
        .is_some()
        .then(|| layer.bias_vector(&m.graph).select(Axis(0), &p.keep));
    let mut patch = GraphPatch::default();
    layer.stage(&m.graph, &mut patch, &w_l, b_l.as_ref())?;
    let b_next_out = p
        .b_next
        .clone()
        .or_else(|| next.bias.is_some().then(|| next.bias_vector(&m.graph)));
    next.stage(&m.graph, &mut patch, &p.w_next, b_next_out.as_ref())?;
    stage_widths(&m.graph, layer, p.keep.len(), &mut patch);
    patch.apply(&mut m.graph)?;
    view.layers[l].n_out = p.keep.len();
    view.layers[l + 1].n_in = p.keep.len();
    Ok(p.report)
}

/// `p` with its next layer refitted on the kept columns of `h` to `target` (refit.rs), or as it
/// is when the fit cannot be solved.
fn refitted(
    mut p: boundary::BoundaryPlan,
    h: ArrayView2<f32>,
    target: ArrayView2<f32>,
    fit_bias: bool,
) -> boundary::BoundaryPlan {
    let h_kept = h.select(Axis(1), &p.keep);
    if let Some(r) = refit::ridge(h_kept.view(), target, p.w_next.view(), fit_bias) {
        p.w_next = r.w_next;
        p.b_next = r.b_next.or(p.b_next);
        p.report.refitted = true;
        p.report.refit_ridge = Some(r.ridge);
    }
    p
}

/// Kept width of each hidden layer when the cheapest `ratio` of all hidden neurons go (`g`: each
/// neuron's cost relative to its layer's median cost, cheapest first).
fn global_widths(g: &GlobalCosts, cfg: &PruneConfig) -> Vec<usize> {
    let sizes = &g.sizes;
    let total: usize = sizes.iter().sum();
    let mut to_remove = (cfg.ratio * total as f64).round() as usize;
    let min_keep = cfg.round_to.max(1);
    let mut widths = sizes.clone();
    for &(_, k) in &g.costs {
        if to_remove == 0 {
            break;
        }
        if widths[k] > min_keep.min(sizes[k]) {
            widths[k] -= 1;
            to_remove -= 1;
        }
    }
    widths
        .iter()
        .zip(sizes)
        .map(|(&w, &n)| kept_width(n, 1.0 - w as f64 / n as f64, cfg.round_to))
        .collect()
}

/// Drops input features of the first dense layer that are constant on the data (their value
/// folded into its bias) or have no outgoing weight, and gathers the kept ones in front of the
/// layer so the model's interface stays the same.
fn prune_inputs(
    m: &mut Model,
    view: &MlpView,
    calib: &Dataset,
    cfg: &PruneConfig,
) -> Result<InputReport> {
    let first = view.layers[0].clone();
    if let DenseOp::Gemm { trans_a: true, .. } = first.op {
        return Err(Error::Invalid(
            "dropping input features does not support a first Gemm with transA=1".into(),
        ));
    }
    let x = crate::train::data_prep::chain_features_in_memory(
        m,
        view,
        calib,
        cfg.engine,
        &cfg.engine_opts,
    )?;
    require_finite(&x, "input feature", calib)?;
    let w = first.weight_matrix(&m.graph);
    let mut b = first.bias_trainable().then(|| first.bias_vector(&m.graph));
    let mean = x.mean_axis(Axis(0)).expect("rows");
    let sd = x.std_axis(Axis(0), 0.0);
    let (mut constant, mut unused, mut keep) = (0, 0, Vec::new());
    for j in 0..first.n_in {
        let row = w.row(j);
        if row.iter().all(|&v| v == 0.0) {
            unused += 1;
        } else if crate::stats::is_constant(sd[j] as f64, mean[j] as f64)
            && (b.is_some() || mean[j] == 0.0)
        {
            if let Some(b) = &mut b {
                b.scaled_add(mean[j], &row);
            }
            constant += 1;
        } else {
            keep.push(j);
        }
    }
    let report = InputReport {
        before: first.n_in,
        after: keep.len(),
        constant,
        unused,
    };
    if keep.len() == first.n_in || keep.is_empty() {
        return Ok(InputReport {
            after: first.n_in,
            constant: 0,
            unused: 0,
            ..report
        });
    }
    let w_kept = w.select(Axis(0), &keep);
    let b_out = b.or_else(|| first.bias.is_some().then(|| first.bias_vector(&m.graph)));
    let mut patch = GraphPatch::default();
    first.stage(&m.graph, &mut patch, &w_kept, b_out.as_ref())?;
    stage_gather(&m.graph, &first, &keep, &mut patch);
    patch.apply(&mut m.graph)?;
    Ok(report)
}

fn unique_name(graph: &Graph, base: &str) -> String {
    let taken = |n: &str| {
        graph.initializers.iter().any(|t| t.name == n)
            || graph
                .nodes
                .iter()
                .any(|x| x.name == n || x.outputs.iter().any(|o| o == n))
            || graph.inputs.iter().any(|i| i.name == n)
    };
    let mut name = base.to_string();
    let mut i = 1;
    while taken(&name) {
        name = format!("{base}_{i}");
        i += 1;
    }
    name
}

/// Adds to `patch` a Gather of the `keep` columns of the first layer's input, in front of it.
fn stage_gather(graph: &Graph, first: &DenseLayer, keep: &[usize], patch: &mut GraphPatch) {
    let indices = unique_name(graph, "bean_onnx_kept_inputs");
    let gathered = unique_name(graph, &format!("{}_kept", first.input));
    patch.add_initializer(Tensor {
        name: indices.clone(),
        elem_type: DataType::Int64,
        dims: vec![keep.len() as i64],
        data: TensorData::I64(keep.iter().map(|&k| k as i64).collect()),
        storage: Storage::Raw,
        extra: Default::default(),
    });
    let mut gather = Node::new(
        "Gather",
        vec![first.input.clone(), indices],
        vec![gathered.clone()],
    );
    gather.name = unique_name(graph, "bean_onnx_gather_inputs");
    gather.attributes = vec![Attribute {
        name: "axis".into(),
        value: AttrValue::Int(1),
    }];
    patch.insert_before(first.nodes()[0], gather, 0, &gathered);
}

/// One evaluated pruning ratio: its accuracy on the validation labels (accuracy and agreement
/// searches), or its RMSE against the validation targets (regression).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Candidate {
    pub ratio: f64,
    pub accuracy: Option<f64>,
    pub rmse: Option<f64>,
    /// The candidate's parameters and dense MACs per sample (as `inspect` counts them).
    pub params: usize,
    pub macs: usize,
    /// Points its drop must stay under the budget by (margin.rs), with a paired margin.
    pub margin: Option<f64>,
    /// With a paired margin: its verdict on each validation row (selection.rs needs them).
    #[serde(skip)]
    pub right: Option<std::sync::Arc<[bool]>>,
    /// It removes something (widths that round back to the original's do not).
    #[serde(skip)]
    pub cuts: bool,
}

impl Candidate {
    fn new(
        ratio: f64,
        metric: GateMetric,
        judged: Judged,
        size: &crate::inspect::Report,
        cuts: bool,
    ) -> Candidate {
        let Judged {
            value,
            margin,
            right,
        } = judged;
        let (accuracy, rmse) = match metric {
            GateMetric::Regression => (None, Some(value)),
            _ => (Some(value), None),
        };
        Candidate {
            ratio,
            accuracy,
            rmse,
            params: size.params_total,
            macs: size.macs_total,
            margin,
            right,
            cuts,
        }
    }

    /// The measured value, higher better: accuracy, or −RMSE.
    pub fn quality(&self) -> f64 {
        match (self.accuracy, self.rmse) {
            (Some(a), _) => a,
            (None, Some(r)) => -r,
            (None, None) => f64::NEG_INFINITY,
        }
    }
}

/// The search's outcome. Accuracy and agreement searches fill the accuracy fields (agreement:
/// accuracy on the original's predicted classes, with budgets in points), regression searches
/// the RMSE fields (budget: RMSE increase).
#[derive(Debug, Clone, serde::Serialize)]
pub struct SearchReport {
    pub baseline_accuracy: Option<f64>,
    pub max_accuracy_drop: Option<f64>,
    pub chosen_ratio: f64,
    pub chosen_accuracy: Option<f64>,
    pub candidates: Vec<Candidate>,
    pub metric: GateMetric,
    pub baseline_rmse: Option<f64>,
    pub max_rmse_increase: Option<f64>,
    pub chosen_rmse: Option<f64>,
    /// Points one validation row is worth (accuracy and agreement searches).
    pub resolution_points: Option<f64>,
    /// With a paired margin: its z and the gate's rows it allows for (margin.rs).
    pub margin_z: Option<f64>,
    pub gate_rows: Option<usize>,
    /// With a paired margin, in compress: ω, the bootstrap estimate of how much choosing among
    /// every search's candidates flatters the chosen one, added to each margin (selection.rs).
    pub optimism: Option<f64>,
}

impl SearchReport {
    /// The same search's report with `c`, one of its candidates, chosen instead.
    pub fn choosing(&self, c: &Candidate) -> SearchReport {
        SearchReport {
            chosen_ratio: c.ratio,
            chosen_accuracy: c.accuracy,
            chosen_rmse: c.rmse,
            margin_z: c.margin.map(|_| margin::Z_ONE_SIDED_95),
            ..self.clone()
        }
    }

    /// The chosen candidate's value, higher better (accuracy, or −RMSE).
    pub fn chosen_quality(&self) -> f64 {
        self.candidates
            .iter()
            .find(|c| c.ratio == self.chosen_ratio)
            .map_or(f64::NEG_INFINITY, Candidate::quality)
    }
}

/// Applied to every pruned candidate before it is evaluated (healing), or nothing.
pub type PostProcess<'a> = &'a (dyn Fn(Model) -> Result<Model> + Sync);

/// How a candidate's loss on the validation data is held against the budget.
#[derive(Debug, Clone)]
pub enum SearchMargin {
    /// As measured.
    None,
    /// Plus the paired margin of margin.rs, for a gate on `gate_rows` other rows; `original`:
    /// whether the original model predicts each validation row right (accuracy, agreement).
    Paired {
        original: Vec<bool>,
        gate_rows: usize,
    },
}

/// What a search for the largest cut within a budget works with.
pub struct Search<'a> {
    /// Activations are measured on it.
    pub calib: &'a Dataset,
    /// Candidates are judged on it: on its labels (accuracy; agreement when they are the
    /// original's predictions), or on its float targets (regression).
    pub val: &'a Dataset,
    /// How each candidate is cut (its `ratio` is what the search varies).
    pub cfg: &'a PruneConfig,
    /// What the budget bounds: accuracy points lost (accuracy, agreement) or RMSE gained
    /// (regression).
    pub metric: GateMetric,
    /// Accuracy points a candidate may lose against the baseline on `val`, or RMSE it may gain.
    pub max_drop_points: f64,
    /// The accuracy (or RMSE) to measure against (None: the model's own on `val`).
    pub baseline: Option<f64>,
    /// Applied to every candidate before it is judged (healing), or nothing.
    pub post: Option<PostProcess<'a>>,
    pub margin: SearchMargin,
    pub progress: &'a dyn Progress,
}

/// A candidate's value on the validation data, its margin in points and its verdict on each row
/// (None: no margin).
struct Judged {
    value: f64,
    margin: Option<f64>,
    right: Option<std::sync::Arc<[bool]>>,
}

impl Search<'_> {
    /// `model`'s value on `val`: accuracy, or RMSE for a regression search.
    fn measure(&self, model: &Model) -> Result<f64> {
        let (kind, opts) = (self.cfg.engine, &self.cfg.engine_opts);
        match self.metric {
            GateMetric::Regression => eval::rmse_on(model, self.val, kind, opts),
            _ => Ok(eval::evaluate(model, self.val, kind, opts)?.accuracy),
        }
    }

    /// Refuses a budget or margin the search cannot use.
    fn check(&self) -> Result<()> {
        if !(self.max_drop_points >= 0.0 && self.max_drop_points.is_finite()) {
            return Err(Error::Invalid(format!(
                "the {} budget must be a non-negative number, got {}",
                budget_name(self.metric),
                self.max_drop_points
            )));
        }
        match &self.margin {
            SearchMargin::Paired { original, .. }
                if original.len() != self.val.rows() || self.metric == GateMetric::Regression =>
            {
                Err(Error::Invalid(
                    "a paired search margin needs the original's verdict on every validation \
                     row of an accuracy search"
                        .into(),
                ))
            }
            _ => Ok(()),
        }
    }

    /// The report of a search that chose `best` among `candidates`.
    fn report(&self, baseline: f64, best: &Candidate, candidates: Vec<Candidate>) -> SearchReport {
        let regression = self.metric == GateMetric::Regression;
        SearchReport {
            baseline_accuracy: (!regression).then_some(baseline),
            max_accuracy_drop: (!regression).then_some(self.max_drop_points),
            chosen_ratio: best.ratio,
            chosen_accuracy: best.accuracy,
            candidates,
            metric: self.metric,
            baseline_rmse: regression.then_some(baseline),
            max_rmse_increase: regression.then_some(self.max_drop_points),
            chosen_rmse: best.rmse,
            resolution_points: (!regression).then(|| margin::resolution_points(self.val.rows())),
            margin_z: best.margin.map(|_| margin::Z_ONE_SIDED_95),
            gate_rows: match &self.margin {
                SearchMargin::Paired { gate_rows, .. } => Some(*gate_rows),
                SearchMargin::None => None,
            },
            optimism: None,
        }
    }

    /// `model`'s value and, with a paired margin, its margin.
    fn judge(&self, model: &Model) -> Result<Judged> {
        let SearchMargin::Paired {
            original,
            gate_rows,
        } = &self.margin
        else {
            let value = self.measure(model)?;
            return Ok(Judged {
                value,
                margin: None,
                right: None,
            });
        };
        let (kind, opts) = (self.cfg.engine, &self.cfg.engine_opts);
        let (right, _) = eval::verdicts(model, self.val, kind, opts)?;
        let rows = right.len();
        let sd = margin::paired_sd(original, &right);
        Ok(Judged {
            value: right.iter().filter(|&&r| r).count() as f64 / rows.max(1) as f64,
            margin: Some(margin::margin_points(
                sd,
                rows,
                *gate_rows,
                margin::Z_ONE_SIDED_95,
            )),
            right: Some(right.into()),
        })
    }

    /// What a candidate of value `v` lost against `baseline`, in the budget's unit.
    fn loss(&self, baseline: f64, v: f64) -> f64 {
        match self.metric {
            GateMetric::Regression => v - baseline,
            _ => (baseline - v) * 100.0,
        }
    }
}

/// A pruned, post-processed and evaluated candidate.
struct Evaluated {
    candidate: Candidate,
    value: f64,
    model: Model,
    report: PruneReport,
    /// Seconds spent pruning it (calibration activations, assemblies, compensation).
    prune_seconds: f64,
}

impl Evaluated {
    fn cuts(&self) -> bool {
        cuts(&self.report)
    }
}

/// A candidate whose widths round back to the original is no cut at all.
fn cuts(r: &PruneReport) -> bool {
    r.hidden_after < r.hidden_before || r.inputs.as_ref().is_some_and(|i| i.after < i.before)
}

/// The largest uniform ratio whose pruned (and post-processed) model stays within the budget:
/// a 5% grid, then 1% steps above the best, candidates evaluated in parallel. A budget no cut
/// meets is an error.
pub fn search(model: &Model, s: &Search) -> Result<(Model, PruneReport, SearchReport)> {
    let searched = search_candidates(model, s)?;
    searched
        .best
        .ok_or_else(|| nothing_within(s, searched.baseline, searched.best_cut))
}

/// What a search evaluated: every candidate, sorted by ratio, and the chosen cut when one is
/// within the budget (else `why` says why none is).
pub struct Searched {
    pub baseline: f64,
    pub candidates: Vec<Candidate>,
    pub best: Option<(Model, PruneReport, SearchReport)>,
    /// The other candidates within the budget, by their index in `candidates` (a stricter
    /// choice among them needs no second pruning: selection.rs).
    pub within: Vec<(usize, Model, PruneReport)>,
    best_cut: f64,
    /// Seconds spent calibrating and pruning the candidates (before `post`), summed.
    pub prune_seconds: f64,
}

impl Searched {
    /// Why no cut was chosen by the search `s` (meaningful when `best` is None).
    pub fn why(&self, s: &Search) -> Error {
        nothing_within(s, self.baseline, self.best_cut)
    }
}

/// [`search`], keeping every candidate whether or not one is within the budget.
pub fn search_candidates(model: &Model, s: &Search) -> Result<Searched> {
    s.check()?;
    let baseline = match s.baseline {
        Some(b) => b,
        None => s.measure(model)?,
    };
    let within = |e: &Evaluated| {
        let margin = e.candidate.margin.unwrap_or(0.0);
        s.loss(baseline, e.value) + margin <= s.max_drop_points + 1e-9 && e.cuts()
    };
    let grid: Vec<f64> = (1..20).map(|i| i as f64 * 0.05).collect();
    let view = MlpView::find(&model.graph)?;
    view.require_whole()?;
    let t = std::time::Instant::now();
    let calibration = Calibration::new(model, &view, s.calib, s.cfg)?;
    let calibration_seconds = t.elapsed().as_secs_f64();
    let source = (model, &view, &calibration);
    let mut results = evaluate_ratios(source, s, "pruning candidates, 5% grid", grid)?;
    let best_grid = results
        .iter()
        .filter(|e| within(e))
        .map(|e| e.candidate.ratio)
        .fold(0.0, f64::max);
    let fine: Vec<f64> = (1..5)
        .map(|i| best_grid + i as f64 * 0.01)
        .filter(|&r| r < 0.995)
        .collect();
    results.extend(evaluate_ratios(
        source,
        s,
        "pruning candidates, 1% steps",
        fine,
    )?);
    results.sort_by(|a, b| a.candidate.ratio.total_cmp(&b.candidate.ratio));
    let candidates: Vec<Candidate> = results.iter().map(|e| e.candidate.clone()).collect();
    let prune_seconds = calibration_seconds + results.iter().map(|e| e.prune_seconds).sum::<f64>();
    let best_cut = results
        .iter()
        .filter(|e| e.cuts())
        .map(|e| e.candidate.quality())
        .fold(f64::NAN, f64::max);
    // Sorted by ratio: the last one within the budget is the largest cut.
    let mut within_budget: Vec<(usize, Evaluated)> = results
        .into_iter()
        .enumerate()
        .filter(|(_, e)| within(e))
        .collect();
    let best = within_budget.pop().map(|(_, best)| {
        let report = s.report(baseline, &best.candidate, candidates.clone());
        (best.model, best.report, report)
    });
    let within = within_budget
        .into_iter()
        .map(|(k, e)| (k, e.model, e.report))
        .collect();
    Ok(Searched {
        baseline,
        candidates,
        best,
        within,
        best_cut,
        prune_seconds,
    })
}

fn budget_name(metric: GateMetric) -> &'static str {
    match metric {
        GateMetric::Regression => "RMSE",
        _ => "accuracy",
    }
}

/// Prunes (on `model`'s calibration), post-processes and evaluates `model` at each ratio, in
/// parallel.
fn evaluate_ratios(
    (model, view, calibration): (&Model, &MlpView, &Calibration),
    s: &Search,
    label: &str,
    ratios: Vec<f64>,
) -> Result<Vec<Evaluated>> {
    s.progress.begin(label, ratios.len() as u64);
    let results = ratios
        .into_par_iter()
        .map(|ratio| {
            crate::interrupt::check()?;
            let cfg = PruneConfig {
                ratio,
                ..s.cfg.clone()
            };
            let t = std::time::Instant::now();
            let (m, report) = prune_calibrated(model, view, calibration, &cfg)?;
            let prune_seconds = t.elapsed().as_secs_f64();
            let m = match s.post {
                Some(f) => f(m)?,
                None => m,
            };
            let judged = s.judge(&m)?;
            let value = judged.value;
            let name = match s.metric {
                GateMetric::Regression => "RMSE",
                _ => "accuracy",
            };
            let size = crate::inspect::report(&m)?;
            s.progress
                .advance(&format!("ratio {ratio:.2}: {name} {value:.4}"));
            Ok(Evaluated {
                candidate: Candidate::new(ratio, s.metric, judged, &size, cuts(&report)),
                value,
                model: m,
                report,
                prune_seconds,
            })
        })
        .collect();
    s.progress.end();
    results
}

/// Why no candidate was chosen: none cut anything, or none stayed within the budget. `best_cut`
/// is the best candidate's quality (accuracy, or −RMSE), NaN when none cut.
fn nothing_within(s: &Search, baseline: f64, best_cut: f64) -> Error {
    if best_cut.is_nan() {
        return Error::Invalid(
            "no ratio from 5% to 95% removes a neuron: the hidden layers are too narrow".into(),
        );
    }
    let budget = s.max_drop_points;
    Error::Invalid(match s.metric {
        GateMetric::Regression => format!(
            "no cut keeps the RMSE within {budget} of {baseline:.6}: the best pruned candidate \
             reaches {:.6} (ratios 5% to 95% tried)",
            -best_cut
        ),
        _ => format!(
            "no cut keeps accuracy within {budget} points of {baseline:.4}: the most \
             accurate pruned candidate reaches {best_cut:.4} (ratios 5% to 95% tried)"
        ),
    })
}
