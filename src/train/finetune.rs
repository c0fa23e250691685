//! Fine-tuning: the epochs of a [`Trainer`] with per-epoch metrics, the best weights on
//! validation data, checkpoints for resuming, and clean stops on a signal or a loss that turns
//! NaN/Inf (the trainer keeps the last good state).
use super::alpha::{auto_alpha, AutoAlpha};
use super::chain_input::ChainInput;
use super::checkpoint::Checkpoint;
use super::observer::{Observer, Silent};
use super::plan::{self, apply_params, initial_state, targets, Plan};
use super::prepared::PreparedRows;
use super::step::StepSpec;
use super::trainer::{EpochEnd, EpochSums, Trainer, TrainingSet};
use super::{Alpha, FinetuneConfig, KeptWeights};
use crate::assemblies;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::eval::{self, single_input};
use crate::ir::Model;
use serde::{Deserialize, Serialize};

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
    /// The α BEAN ran with (None without BEAN), and what `--alpha auto` measured to set it.
    pub alpha: Option<f64>,
    pub auto_alpha: Option<AutoAlpha>,
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

/// A short plain fine-tune after pruning: `cfg` with BEAN and baselines off, for `epochs` at
/// `lr`, on labelled `data`. Returns `model` unchanged when `epochs` is 0.
/// `prepared`: `data`'s rows prepared once for many heals (used when they serve `model`).
pub fn heal(
    model: Model,
    data: &Dataset,
    prepared: Option<&PreparedRows>,
    cfg: &FinetuneConfig,
    (epochs, lr): (usize, f64),
) -> Result<Model> {
    if epochs == 0 {
        return Ok(model);
    }
    let heal_cfg = FinetuneConfig {
        bean: None,
        baseline: None,
        epochs,
        lr,
        ..cfg.clone()
    };
    let o = finetune_rows(&model, data, prepared, None, &heal_cfg, None, &mut Silent)?;
    o.stop.into_result("healing")?;
    Ok(o.model)
}

/// What a resumed run must share with its checkpoint, as the hex SHA-256 of a stable encoding
/// (the same on every toolchain and machine): every setting that shapes the run, the model's
/// bytes, the training features and targets, and the validation data that picks the best epoch
/// (shapes, then little-endian values).
fn signature(
    cfg: &FinetuneConfig,
    spec: &StepSpec,
    model: &Model,
    set: &TrainingSet,
    val: Option<&Dataset>,
) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let settings = format!(
        "{}\nseed {}\nbatch {}\nlr {:016x}\nteacher {}\nkeep {:?}\n",
        spec.describe(),
        cfg.seed,
        cfg.batch_size,
        cfg.lr.to_bits(),
        cfg.teacher,
        cfg.keep
    );
    let model_bytes = crate::onnx::to_bytes(model);
    for part in [settings.as_bytes(), &model_bytes] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    hash_features(&mut h, set.features.signed());
    for d in set.targets.shape() {
        h.update((*d as u64).to_le_bytes());
    }
    for v in set.targets.iter() {
        h.update(v.to_le_bytes());
    }
    if let Some(v) = val {
        hash_dataset(&mut h, v);
    }
    format!("sha256:{:x}", h.finalize())
}

/// Feeds `data`'s feature shape and values and its labels to `h`.
fn hash_dataset(h: &mut sha2::Sha256, data: &Dataset) {
    use sha2::Digest;
    hash_features(h, &data.x);
    for y in data.y.iter().flatten() {
        h.update(y.to_le_bytes());
    }
    for y in data.y_values.iter().flatten() {
        h.update(y.to_le_bytes());
    }
}

/// Feeds the shape and the values of `x` (as f32, a block of rows at a time) to `h`.
fn hash_features(h: &mut sha2::Sha256, x: &crate::data::Features) {
    use sha2::Digest;
    const BLOCK_ROWS: usize = 4096;
    for d in x.shape() {
        h.update((*d as u64).to_le_bytes());
    }
    let rows = x.rows();
    for start in (0..rows).step_by(BLOCK_ROWS) {
        for v in x.slice_f32(start, (start + BLOCK_ROWS).min(rows)).iter() {
            h.update(v.to_le_bytes());
        }
    }
}

/// Assembly figures before and after; `tuned` is `model` with new weights (the same graph, so
/// the plan's chain describes it too).
fn figures(model: &Model, plan: &Plan, tuned: &Model) -> Vec<LayerFigures> {
    plan.view
        .layers
        .iter()
        .enumerate()
        .skip(1) // input neurons of layer 0 are the data's features, not hidden neurons
        .map(|(i, l)| {
            let gamma = plan.gammas[i];
            let before = assemblies::from_weights(l.weight_matrix(&model.graph).view(), gamma);
            let after = assemblies::from_weights(l.weight_matrix(&tuned.graph).view(), gamma);
            LayerFigures {
                layer: i - 1,
                gamma,
                modularity_before: before.modularity,
                modularity_after: after.modularity,
                assemblies_before: before.assemblies.len(),
                assemblies_after: after.assemblies.len(),
            }
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
    finetune_rows(model, train, None, val, cfg, resume, observer)
}

/// [`finetune`] on `train`'s rows prepared once (`prepared`), when they serve `model`.
fn finetune_rows(
    model: &Model,
    train: &Dataset,
    prepared: Option<&PreparedRows>,
    val: Option<&Dataset>,
    cfg: &FinetuneConfig,
    resume: Option<Checkpoint>,
    observer: &mut dyn Observer,
) -> Result<Outcome> {
    cfg.validate()?;
    single_input(model)?;
    let mut plan = plan::plan(model, cfg, train.y_values.is_some())?;
    let reused = match prepared {
        Some(p) => p.training_set(model, &plan, train, cfg)?,
        None => None,
    };
    let set = match reused {
        Some(set) => set,
        None => training_set(model, &plan, train, cfg)?,
    };
    if let Some(v) = val.filter(|v| v.y.is_none()) {
        return Err(Error::data(
            &v.path,
            "validation data needs class labels (array y)",
        ));
    }
    if set.rows() == 0 {
        return Err(Error::data(&train.path, "has no rows"));
    }
    let has_bean = plan.spec.layers.iter().any(|l| l.bean.is_some());
    let auto_alpha = (has_bean && cfg.alpha == Alpha::Auto)
        .then(|| auto_alpha(model, &plan, &set, cfg))
        .transpose()?;
    if let Some(a) = &auto_alpha {
        plan.spec = plan.spec.with_alpha(a.alpha);
    }
    let mut outcome = run(model, &plan, &set, val, cfg, resume, observer)?;
    outcome.alpha = plan
        .spec
        .layers
        .iter()
        .find_map(|l| l.bean.map(|b| b.alpha));
    outcome.auto_alpha = auto_alpha;
    Ok(outcome)
}

/// The fine-tune of `model` on `set` (planned as `plan`).
fn run(
    model: &Model,
    plan: &Plan,
    set: &TrainingSet,
    val: Option<&Dataset>,
    cfg: &FinetuneConfig,
    resume: Option<Checkpoint>,
    observer: &mut dyn Observer,
) -> Result<Outcome> {
    let graph = plan.spec.step_graph();
    let n_params = plan.spec.params().len();
    let mut trainer = Trainer::new(cfg.engine, &graph, n_params, &cfg.engine_opts, cfg.lr)?;
    let sig = (resume.is_some() || observer.keeps_checkpoints())
        .then(|| signature(cfg, &plan.spec, model, set, val));
    let mut ck = match resume {
        Some(ck) if ck.signature != sig => {
            return Err(Error::Invalid(
                "the checkpoint was made with other settings, model or data: start anew".into(),
            ))
        }
        Some(ck) => ck,
        None => Checkpoint::start(sig, initial_state(model, plan)),
    };
    trainer.set_state(&ck.state, ck.steps)?;
    let initial_val_accuracy = match val {
        Some(v) => Some(eval::evaluate(model, v, cfg.engine, &cfg.engine_opts)?.accuracy),
        None => None,
    };
    let run = Run {
        model,
        plan,
        set,
        val,
        cfg,
    };
    let stop = run.epochs(&mut trainer, &mut ck, observer)?;
    // Best on validation when there is one and it is asked for (also after a divergence), else
    // the last good state.
    let best = (cfg.keep == KeptWeights::BestOnValidation)
        .then_some(ck.best_params.as_ref())
        .flatten();
    let chosen = match (&stop, best) {
        (StopReason::Completed | StopReason::Diverged { .. }, Some(best)) => best.clone(),
        _ => trainer.params()?,
    };
    let tuned = apply_params(model, plan, &chosen)?;
    let figures = figures(model, plan, &tuned);
    Ok(Outcome {
        model: tuned,
        stop,
        best_epoch: best.and(ck.best_epoch),
        history: ck.history,
        steps: ck.steps,
        engine: trainer.describe(),
        figures,
        initial_val_accuracy,
        alpha: None,
        auto_alpha: None,
    })
}

/// The dense chain's input features and the targets of `train`.
fn training_set(
    model: &Model,
    plan: &Plan,
    train: &Dataset,
    cfg: &FinetuneConfig,
) -> Result<TrainingSet> {
    let features = ChainInput::new(model, &plan.view, train, cfg.engine, &cfg.engine_opts)?;
    let targets = targets(model, plan, train, cfg)?;
    Ok(TrainingSet { features, targets })
}

/// One fine-tuning run's fixed inputs.
struct Run<'a> {
    model: &'a Model,
    plan: &'a Plan,
    set: &'a TrainingSet,
    val: Option<&'a Dataset>,
    cfg: &'a FinetuneConfig,
}

impl Run<'_> {
    /// The epochs after `ck.epoch`, each ending in metrics, a best-so-far update and a
    /// checkpoint handed to the observer.
    fn epochs(
        &self,
        trainer: &mut Trainer,
        ck: &mut Checkpoint,
        observer: &mut dyn Observer,
    ) -> Result<StopReason> {
        let cfg = self.cfg;
        let rows = self.set.rows();
        for epoch in ck.epoch + 1..=cfg.epochs {
            let progress = observer.progress();
            let label = format!("epoch {epoch}/{}", cfg.epochs);
            progress.begin(&label, rows.div_ceil(cfg.batch_size) as u64);
            let started = std::time::Instant::now();
            let order = self.set.shuffled(cfg.seed, epoch);
            let stop = || observer.interrupted() || crate::interrupt::requested().is_some();
            let mut show = |s: &crate::engine::StepScalars, n: usize| {
                let acc = s.correct as f64 / n as f64;
                let status = format!("loss {:.4}  bean {:.4}  acc {acc:.3}", s.task_loss, s.bean);
                progress.advance(&status);
            };
            let end = trainer.epoch(self.set, &order, cfg.batch_size, &stop, &mut show);
            progress.end();
            let sums = match end? {
                EpochEnd::Completed(sums) => sums,
                EpochEnd::Stopped => return Ok(StopReason::Interrupted),
                EpochEnd::Diverged { step } => return Ok(StopReason::Diverged { epoch, step }),
            };
            let seconds = started.elapsed().as_secs_f64();
            ck.steps = trainer.steps();
            ck.state = trainer.state()?;
            let metrics = self.end_epoch(epoch, sums, seconds, ck)?;
            observer.epoch_end(&metrics, ck)?;
        }
        Ok(StopReason::Completed)
    }

    /// The epoch's metrics (with validation accuracy), the best epoch so far, the checkpoint.
    fn end_epoch(
        &self,
        epoch: usize,
        sums: EpochSums,
        seconds: f64,
        ck: &mut Checkpoint,
    ) -> Result<EpochMetrics> {
        let rows = self.set.rows() as f64;
        let params = &ck.state[..self.plan.spec.params().len()];
        let val_accuracy = match self.val {
            Some(v) => {
                let m = apply_params(self.model, self.plan, params)?;
                Some(eval::evaluate(&m, v, self.cfg.engine, &self.cfg.engine_opts)?.accuracy)
            }
            None => None,
        };
        let metrics = EpochMetrics {
            epoch,
            task_loss: sums.task_loss / rows,
            bean: sums.bean / rows,
            baseline: sums.baseline / rows,
            train_accuracy: sums.correct / rows,
            val_accuracy,
            samples_per_second: rows / seconds.max(1e-9),
            seconds,
        };
        if let Some(acc) = val_accuracy {
            if ck.best_val.is_none_or(|b| acc > b) {
                ck.best_val = Some(acc);
                ck.best_epoch = Some(epoch);
                // Copied only when they will be returned (KeptWeights::Last never reads them).
                if self.cfg.keep == KeptWeights::BestOnValidation {
                    ck.best_params = Some(params.to_vec());
                }
            }
        }
        ck.epoch = epoch;
        ck.history.push(metrics.clone());
        Ok(metrics)
    }
}
