//! The fine-tuning loop: seeded shuffling, steps through a [`StepRunner`], per-epoch metrics,
//! best-on-validation weights, checkpoints for `--resume`, clean stops on Ctrl-C and on a loss
//! that turns NaN/Inf (the runner keeps the last good state).
use super::data_prep;
use super::step_graph::{
    Baseline, Bean, BeanVariant, LayerSpec, LossKind, Optimizer, StepSpec, OUTPUT_NAMES,
};
use crate::assemblies;
use crate::data::Dataset;
use crate::engine::{self, EngineKind, EngineOptions, StepRunner, Value};
use crate::error::{Error, Result};
use crate::eval::{self, single_input};
use crate::ir::Model;
use crate::mlp::MlpView;
use ndarray::{Array1, Array2, ArrayD, Axis};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Gamma {
    /// γ = 1/std(W) of each layer's starting weights.
    Auto,
    Fixed(f64),
}

/// Which layers get the regularizers. A layer's regularizer acts on its input neurons, so
/// `Hidden` (every layer but the first) shapes exactly the neurons that pruning removes.
#[derive(Debug, Clone, PartialEq)]
pub enum LayerSelection {
    Hidden,
    All,
    List(Vec<usize>),
}

impl LayerSelection {
    fn contains(&self, layer: usize) -> bool {
        match self {
            LayerSelection::Hidden => layer > 0,
            LayerSelection::All => true,
            LayerSelection::List(v) => v.contains(&layer),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
pub enum OptimizerKind {
    Adam,
    Sgd,
}

#[derive(Debug, Clone)]
pub struct FinetuneConfig {
    pub bean: Option<BeanVariant>,
    pub alpha: f64,
    pub gamma: Gamma,
    pub layers: LayerSelection,
    pub baseline: Option<(Baseline, f64)>,
    /// None: cross-entropy for class labels or a teacher, MSE for float targets.
    pub loss: Option<LossKind>,
    /// Distil from the original model's outputs even when the data has labels.
    pub teacher: bool,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub optimizer: OptimizerKind,
    pub momentum: f64,
    pub engine: EngineKind,
    pub engine_opts: EngineOptions,
    pub seed: u64,
    pub progress: bool,
}

impl FinetuneConfig {
    /// Refuses settings no run can use (every command that fine-tunes calls this first).
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str, v: f64, need: &str| {
            Error::Invalid(format!("{what} must be {need}, got {v}"))
        };
        if self.batch_size == 0 || self.epochs == 0 {
            return Err(Error::Invalid(
                "--epochs and --batch-size must be at least 1".into(),
            ));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(bad("--lr", self.lr, "a positive number"));
        }
        if !(self.alpha >= 0.0 && self.alpha.is_finite()) {
            return Err(bad("--alpha", self.alpha, "a non-negative number"));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(bad("--momentum", self.momentum, "in [0, 1)"));
        }
        if let Gamma::Fixed(g) = self.gamma {
            if !(g > 0.0 && g.is_finite()) {
                return Err(bad("--gamma", g, "a positive number or auto"));
            }
        }
        if let Some((_, w)) = self.baseline {
            if !(w >= 0.0 && w.is_finite()) {
                return Err(bad("--reg-weight", w, "a non-negative number"));
            }
        }
        Ok(())
    }
}

impl Default for FinetuneConfig {
    fn default() -> Self {
        FinetuneConfig {
            bean: Some(BeanVariant::One),
            alpha: 0.05,
            gamma: Gamma::Auto,
            layers: LayerSelection::Hidden,
            baseline: None,
            loss: None,
            teacher: false,
            epochs: 5,
            batch_size: 128,
            lr: 1e-3,
            optimizer: OptimizerKind::Adam,
            momentum: 0.9,
            engine: EngineKind::Tract,
            engine_opts: EngineOptions::default(),
            seed: 0,
            progress: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub task_loss: f64,
    pub bean: f64,
    pub baseline: f64,
    pub train_accuracy: f64,
    pub val_accuracy: Option<f64>,
    pub samples_per_second: f64,
    pub seconds: f64,
}

/// Assembly figures of a layer's input neurons (see `assemblies`), before and after fine-tuning.
#[derive(Debug, Clone, Serialize)]
pub struct LayerFigures {
    /// Hidden layer k: the outputs of dense layer k (the input neurons of dense layer k + 1).
    pub layer: usize,
    pub gamma: f64,
    /// Modularity of the co-connectivity graph M = ÂÂᵀ under its Louvain assemblies.
    pub modularity_before: f64,
    pub modularity_after: f64,
    pub assemblies_before: usize,
    pub assemblies_after: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StopReason {
    Completed,
    Interrupted,
    /// The loss turned NaN/Inf at this epoch and step; the weights are the last good ones.
    Diverged {
        epoch: usize,
        step: usize,
    },
}

impl StopReason {
    /// Ok when the run completed; otherwise the error that says why `what` stopped
    /// ([`Error::Interrupted`] for a signal).
    pub fn into_result(self, what: &str) -> Result<()> {
        match self {
            StopReason::Completed => Ok(()),
            // An observer may stop a run without a signal: report it as an interrupt (SIGINT).
            StopReason::Interrupted => Err(Error::Interrupted {
                signal: crate::interrupt::requested().unwrap_or(libc::SIGINT),
            }),
            StopReason::Diverged { epoch, step } => Err(Error::Invalid(format!(
                "{what} stopped: the loss became NaN or infinite at epoch {epoch}, step {step}"
            ))),
        }
    }
}

pub struct Outcome {
    /// The input model with the chosen weights (best on validation, else the last).
    pub model: Model,
    pub stop: StopReason,
    pub history: Vec<EpochMetrics>,
    pub best_epoch: Option<usize>,
    pub steps: usize,
    pub engine: String,
    pub figures: Vec<LayerFigures>,
    pub initial_val_accuracy: Option<f64>,
}

impl Outcome {
    /// Mean training throughput over the epochs run.
    pub fn samples_per_second(&self) -> f64 {
        let seconds: f64 = self.history.iter().map(|m| m.seconds).sum();
        let samples: f64 = self
            .history
            .iter()
            .map(|m| m.samples_per_second * m.seconds)
            .sum();
        if seconds > 0.0 {
            samples / seconds
        } else {
            0.0
        }
    }

    /// Validation accuracy of the weights written: the best epoch's, else the last epoch's.
    pub fn val_accuracy(&self) -> Option<f64> {
        match self.best_epoch {
            Some(e) => self.history.iter().find(|m| m.epoch == e),
            None => self.history.last(),
        }
        .and_then(|m| m.val_accuracy)
    }
}

/// An observer that reports nothing and never stops (short fine-tunes inside other commands).
pub struct Silent;

impl Observer for Silent {
    fn epoch_end(&mut self, _: &EpochMetrics, _: &Checkpoint) -> Result<()> {
        Ok(())
    }
    fn interrupted(&self) -> bool {
        false
    }
}

/// A short plain fine-tune after pruning: `cfg` with BEAN and baselines off, for `epochs` at
/// `lr`, on labelled `data`. Returns `model` unchanged when `epochs` is 0.
pub fn heal(
    model: Model,
    data: &Dataset,
    cfg: &FinetuneConfig,
    epochs: usize,
    lr: f64,
) -> Result<Model> {
    if epochs == 0 {
        return Ok(model);
    }
    let heal_cfg = FinetuneConfig {
        bean: None,
        baseline: None,
        epochs,
        lr,
        progress: false,
        ..cfg.clone()
    };
    let o = finetune(&model, data, None, &heal_cfg, None, &mut Silent)?;
    o.stop.into_result("healing")?;
    Ok(o.model)
}

/// Everything needed to continue a run: written after every epoch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Epochs completed.
    pub epoch: usize,
    pub steps: usize,
    /// Settings that must match for a resume to continue the same run.
    pub signature: String,
    pub history: Vec<EpochMetrics>,
    pub best_epoch: Option<usize>,
    pub best_val: Option<f64>,
    #[serde(skip)]
    pub state: Vec<ArrayD<f32>>,
    #[serde(skip)]
    pub best_params: Option<Vec<ArrayD<f32>>>,
}

/// Called by the loop; the CLI implements it with files and Ctrl-C.
pub trait Observer {
    fn epoch_end(&mut self, metrics: &EpochMetrics, checkpoint: &Checkpoint) -> Result<()>;
    fn interrupted(&self) -> bool;
    /// A pipeline (compress) entering a stage, such as "search" or "validate".
    fn stage(&mut self, _stage: &str) {}
}

/// The training plan for `model`: its chain, the step spec, each layer's γ.
pub struct Plan {
    pub view: MlpView,
    pub spec: StepSpec,
    pub gammas: Vec<f64>,
}

pub fn plan(model: &Model, cfg: &FinetuneConfig, float_targets: bool) -> Result<Plan> {
    let view = MlpView::find(&model.graph)?;
    view.require_whole()?;
    for (i, l) in view.layers.iter().enumerate() {
        if let Err(why) = l.trainable() {
            let node = &model.graph.nodes[l.nodes()[0]];
            return Err(Error::Node {
                node: node.label().into(),
                op: node.op_type.clone(),
                reason: format!("dense layer {i} cannot be fine-tuned: {why}"),
            });
        }
    }
    if let LayerSelection::List(v) = &cfg.layers {
        if let Some(bad) = v.iter().find(|&&l| l >= view.layers.len()) {
            return Err(Error::Invalid(format!(
                "layer {bad} does not exist: the model has {} dense layers (0..{})",
                view.layers.len(),
                view.layers.len() - 1
            )));
        }
    }
    let mut gammas = Vec::new();
    let mut layers = Vec::new();
    for (i, l) in view.layers.iter().enumerate() {
        let w = l.weight_matrix(&model.graph);
        let gamma = match cfg.gamma {
            Gamma::Auto => assemblies::auto_gamma(w.view()),
            Gamma::Fixed(g) => g,
        };
        gammas.push(gamma);
        let selected = cfg.layers.contains(i);
        layers.push(LayerSpec {
            n_in: l.n_in,
            n_out: l.n_out,
            activation: l.activation,
            has_bias: l.bias_trainable(),
            bean: cfg
                .bean
                .filter(|_| selected && cfg.alpha > 0.0)
                .map(|variant| Bean {
                    variant,
                    alpha: cfg.alpha,
                    gamma,
                }),
            baseline: cfg.baseline.filter(|_| selected),
        });
    }
    let loss = cfg.loss.unwrap_or(if float_targets && !cfg.teacher {
        LossKind::Mse
    } else {
        LossKind::CrossEntropy
    });
    if loss == LossKind::CrossEntropy && view.n_classes() < 2 {
        return Err(Error::Invalid(format!(
            "the dense chain ends in a single output (a binary sigmoid head such as scikit-learn's): \
             fine-tuning needs a class-score head with at least 2 outputs, or --loss mse with float targets \
             (node '{}')",
            model.graph.nodes[view.layers.last().expect("a layer").nodes()[0]].label()
        )));
    }
    let optimizer = match cfg.optimizer {
        OptimizerKind::Adam => Optimizer::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        },
        OptimizerKind::Sgd => Optimizer::Sgd {
            momentum: cfg.momentum,
        },
    };
    Ok(Plan {
        view,
        spec: StepSpec {
            layers,
            loss,
            optimizer,
        },
        gammas,
    })
}

/// Starting state: each layer's effective weights (and biases), then zeroed optimizer slots.
pub fn initial_state(model: &Model, plan: &Plan) -> Vec<ArrayD<f32>> {
    let mut state: Vec<ArrayD<f32>> = Vec::new();
    for p in plan.spec.params() {
        let l = &plan.view.layers[p.layer];
        state.push(if p.is_bias {
            l.bias_vector(&model.graph).into_dyn()
        } else {
            l.weight_matrix(&model.graph).into_dyn()
        });
    }
    let n = state.len();
    for _ in plan.spec.optimizer.slots() {
        for i in 0..n {
            state.push(ArrayD::zeros(state[i].shape()));
        }
    }
    state
}

/// The model with the trained params (the first entries of a state) written back.
pub fn apply_params(model: &Model, plan: &Plan, params: &[ArrayD<f32>]) -> Result<Model> {
    let mut m = model.clone();
    let specs = plan.spec.params();
    for (i, layer) in plan.view.layers.iter().enumerate() {
        let w_index = specs
            .iter()
            .position(|p| p.layer == i && !p.is_bias)
            .expect("every layer has a weight");
        let w: Array2<f32> = params[w_index]
            .clone()
            .into_dimensionality()
            .map_err(|e| Error::Invalid(format!("weight {i}: {e}")))?;
        let b: Option<Array1<f32>> = specs
            .iter()
            .position(|p| p.layer == i && p.is_bias)
            .map(|j| params[j].clone().into_dimensionality())
            .transpose()
            .map_err(|e| Error::Invalid(format!("bias {i}: {e}")))?;
        layer.write_back(&mut m.graph, &w, b.as_ref())?;
    }
    Ok(m)
}

/// Training targets for `data` under `plan` (checks labels against the model's classes).
pub fn targets(
    model: &Model,
    plan: &Plan,
    data: &Dataset,
    cfg: &FinetuneConfig,
) -> Result<Array2<f32>> {
    let n_classes = plan.view.n_classes();
    if plan.spec.loss == LossKind::Mse {
        if let Some(v) = &data.y_values {
            if v.ncols() != n_classes {
                return Err(Error::data(
                    &data.path,
                    format!(
                        "targets have {} columns but the model outputs {n_classes}",
                        v.ncols()
                    ),
                ));
            }
            return Ok(v.clone());
        }
    }
    match (&data.y, cfg.teacher) {
        (Some(labels), false) => {
            let class_labels = eval::find_target(model).ok().and_then(|t| t.class_labels);
            data_prep::one_hot(data, labels, n_classes, class_labels.as_deref())
        }
        _ => data_prep::teacher_targets(model, &plan.view, data, cfg.engine, &cfg.engine_opts),
    }
}

/// What a resumed run must share with the checkpoint: settings, the model's bytes and the data.
fn signature(
    cfg: &FinetuneConfig,
    spec: &StepSpec,
    model: &Model,
    features: &Array2<f32>,
    targets: &Array2<f32>,
) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    crate::onnx::to_bytes(model).hash(&mut h);
    for a in [features, targets] {
        a.shape().hash(&mut h);
        a.iter().for_each(|v| v.to_bits().hash(&mut h));
    }
    format!(
        "{spec:?} seed={} batch={} lr={} teacher={} content={:016x}",
        cfg.seed,
        cfg.batch_size,
        cfg.lr,
        cfg.teacher,
        h.finish()
    )
}

fn figures(model: &Model, plan: &Plan, tuned: &Model) -> Vec<LayerFigures> {
    let tuned_view = MlpView::find(&tuned.graph).ok();
    plan.view
        .layers
        .iter()
        .enumerate()
        .skip(1) // input neurons of layer 0 are the data's features, not hidden neurons
        .filter_map(|(i, l)| {
            let after_layer = tuned_view.as_ref()?.layers.get(i)?;
            let gamma = plan.gammas[i];
            let before = assemblies::from_weights(l.weight_matrix(&model.graph).view(), gamma);
            let after =
                assemblies::from_weights(after_layer.weight_matrix(&tuned.graph).view(), gamma);
            Some(LayerFigures {
                layer: i - 1,
                gamma,
                modularity_before: before.modularity,
                modularity_after: after.modularity,
                assemblies_before: before.assemblies.len(),
                assemblies_after: after.assemblies.len(),
            })
        })
        .collect()
}

/// Fine-tunes `model` on `train`. `resume` continues from a checkpoint of the same settings.
pub fn finetune(
    model: &Model,
    train: &Dataset,
    val: Option<&Dataset>,
    cfg: &FinetuneConfig,
    resume: Option<Checkpoint>,
    observer: &mut dyn Observer,
) -> Result<Outcome> {
    cfg.validate()?;
    single_input(model)?;
    let plan = plan(model, cfg, train.y_values.is_some())?;
    let features =
        data_prep::chain_features(model, &plan.view, train, cfg.engine, &cfg.engine_opts)?;
    let targets = targets(model, &plan, train, cfg)?;
    if let Some(v) = val {
        if v.y.is_none() {
            return Err(Error::data(
                &v.path,
                "validation data needs class labels (array y)",
            ));
        }
    }
    let rows = features.nrows();
    if rows == 0 {
        return Err(Error::data(&train.path, "has no rows"));
    }

    let step_model = plan.spec.step_graph();
    let state_names: Vec<String> = plan
        .spec
        .state_names()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let mut runner: Box<dyn StepRunner> = engine::load_step_runner(
        cfg.engine,
        &crate::onnx::to_bytes(&step_model),
        state_names,
        OUTPUT_NAMES.len(),
        &cfg.engine_opts,
    )?;
    let sig = signature(cfg, &plan.spec, model, &features, &targets);
    let n_params = plan.spec.params().len();

    let mut ck = match resume {
        Some(ck) => {
            if ck.signature != sig {
                return Err(Error::Invalid(
                    "the checkpoint was made with other settings, model or data; start without --resume".into(),
                ));
            }
            ck
        }
        None => Checkpoint {
            epoch: 0,
            steps: 0,
            signature: sig,
            history: vec![],
            best_epoch: None,
            best_val: None,
            state: initial_state(model, &plan),
            best_params: None,
        },
    };
    runner.set_state(&ck.state)?;
    let initial_val_accuracy = match val {
        Some(v) => Some(eval::evaluate(model, v, cfg.engine, &cfg.engine_opts)?.accuracy),
        None => None,
    };

    let mut stop = StopReason::Completed;
    let batches_per_epoch = rows.div_ceil(cfg.batch_size);
    let lr = Value::F32(ndarray::arr0(cfg.lr as f32).into_dyn());
    'epochs: for epoch in ck.epoch + 1..=cfg.epochs {
        let mut order: Vec<usize> = (0..rows).collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(
            cfg.seed
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .wrapping_add(epoch as u64),
        );
        order.shuffle(&mut rng);
        let bar = progress_bar(cfg.progress, batches_per_epoch, epoch, cfg.epochs);
        let started = std::time::Instant::now();
        let (mut task, mut bean, mut base, mut correct) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
        for (b, chunk) in order.chunks(cfg.batch_size).enumerate() {
            if observer.interrupted() || crate::interrupt::requested().is_some() {
                stop = StopReason::Interrupted;
                bar.abandon();
                break 'epochs;
            }
            let x = features.select(Axis(0), chunk).into_dyn();
            let t = targets.select(Axis(0), chunk).into_dyn();
            let step = Value::F32(ndarray::arr0((ck.steps + 1) as f32).into_dyn());
            let out = runner.step(&[
                ("x", Value::F32(x)),
                ("target", Value::F32(t)),
                ("lr", lr.clone()),
                ("step", step),
            ])?;
            if out.iter().any(|v| !v.is_finite()) {
                stop = StopReason::Diverged { epoch, step: b + 1 };
                bar.abandon();
                break 'epochs;
            }
            ck.steps += 1;
            let n = chunk.len() as f64;
            task += out[0] as f64 * n;
            bean += out[1] as f64 * n;
            base += out[2] as f64 * n;
            correct += out[3] as f64;
            bar.set_message(format!(
                "loss {:.4}  bean {:.4}  acc {:.3}",
                out[0],
                out[1],
                out[3] as f64 / n
            ));
            bar.inc(1);
        }
        let seconds = started.elapsed().as_secs_f64();
        bar.finish_and_clear();
        ck.state = runner.state()?;
        let params = &ck.state[..n_params];
        let val_accuracy = match val {
            Some(v) => {
                let m = apply_params(model, &plan, params)?;
                Some(eval::evaluate(&m, v, cfg.engine, &cfg.engine_opts)?.accuracy)
            }
            None => None,
        };
        let metrics = EpochMetrics {
            epoch,
            task_loss: task / rows as f64,
            bean: bean / rows as f64,
            baseline: base / rows as f64,
            train_accuracy: correct / rows as f64,
            val_accuracy,
            samples_per_second: rows as f64 / seconds.max(1e-9),
            seconds,
        };
        if let Some(acc) = val_accuracy {
            if ck.best_val.is_none_or(|b| acc > b) {
                ck.best_val = Some(acc);
                ck.best_epoch = Some(epoch);
                ck.best_params = Some(params.to_vec());
            }
        }
        ck.epoch = epoch;
        ck.history.push(metrics.clone());
        observer.epoch_end(&metrics, &ck)?;
    }

    // The last good state (the runner never accepts a non-finite step).
    let last = runner.state()?;
    // Best on validation when there is one (also after a divergence), else the last good state.
    let chosen = match (&stop, &ck.best_params) {
        (StopReason::Completed | StopReason::Diverged { .. }, Some(best)) => best.clone(),
        _ => last[..n_params].to_vec(),
    };
    let tuned = apply_params(model, &plan, &chosen)?;
    let figures = figures(model, &plan, &tuned);
    Ok(Outcome {
        model: tuned,
        stop,
        best_epoch: ck.best_epoch,
        history: ck.history,
        steps: ck.steps,
        engine: runner.describe(),
        figures,
        initial_val_accuracy,
    })
}

fn progress_bar(enabled: bool, len: usize, epoch: usize, epochs: usize) -> indicatif::ProgressBar {
    if !enabled {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed}<{eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("epoch {epoch}/{epochs}"));
    bar
}
