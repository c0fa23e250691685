//! `--alpha auto`: the BEAN strength set from the model and its data, so that the BEAN term starts
//! at a fixed fraction of a loss scale that means the same on every model:
//!
//!   α = AUTO_FRACTION · L₀ / R₁(θ₀)
//!
//! - R₁: the BEAN term at α = 1 (R is linear in α) at the starting weights θ₀, the mean over
//!   batches of the training batch size (BEAN-1's D is a batch's, as the steps see it) of up to
//!   AUTO_ROWS evenly spaced training rows, computed by the step's own loss graph;
//! - L₀: the task loss of a model that knows nothing — for cross-entropy over C classes a uniform
//!   guess's, ln C; for MSE predicting the targets' average, their mean variance per output.
//!
//! Not the starting task loss itself: a model that fits its training rows (scikit-learn's digits
//! MLP starts at 0.0015) would get almost no BEAN at all. A fixed α means different things on
//! different models: α = 0.05 starts the term at 2.6 on the Fashion-MNIST LeNet but at 63 on the
//! digits MLP, whose fine-tune then loses 17 points (docs/RESULTS.md).
use super::plan::{initial_state, Plan};
use super::step::LossKind;
use super::trainer::TrainingSet;
use super::FinetuneConfig;
use crate::engine::{self, Value};
use crate::error::{Error, Result};
use crate::ir::Model;
use crate::tensor::DataType;
use ndarray::{ArrayView2, Axis};

/// The BEAN term's starting value under `--alpha auto`, as a fraction of L₀ (chosen on
/// validation rows carved from the training data, docs/RESULTS.md).
pub const AUTO_FRACTION: f64 = 0.3;
/// Rows the starting losses are measured on (evenly spaced over the training rows).
pub const AUTO_ROWS: usize = 4096;

/// What `--alpha auto` measured and chose.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct AutoAlpha {
    pub alpha: f64,
    /// L₀: ln C for cross-entropy, the targets' mean variance for MSE.
    pub uninformed_loss: f64,
    /// R₁: the BEAN term at α = 1 at the starting weights.
    pub bean_at_alpha_1: f64,
    /// The task loss at the starting weights (on the same rows as R₁).
    pub task_loss: f64,
    /// AUTO_FRACTION: R/L₀ at the start with the chosen α.
    pub fraction: f64,
    /// Rows R₁ and the task loss were measured on.
    pub rows: usize,
}

/// Sets α as the module docs say on `plan` (whose BEAN layers carry α = 1).
pub fn auto_alpha(
    model: &Model,
    plan: &Plan,
    set: &TrainingSet,
    cfg: &FinetuneConfig,
) -> Result<AutoAlpha> {
    let (task_loss, bean_at_alpha_1, rows) = starting_losses(model, plan, set, cfg)?;
    let uninformed_loss =
        uninformed_loss(set.targets.view(), plan.spec.loss, plan.spec.n_classes());
    let usable = |v: f64| v > 0.0 && v.is_finite();
    if !(usable(bean_at_alpha_1) && usable(uninformed_loss)) {
        return Err(Error::Invalid(format!(
            "--alpha auto cannot set the BEAN strength: at the starting weights the BEAN term at \
             α = 1 is {bean_at_alpha_1}, and the loss of an uninformed model is \
             {uninformed_loss}; give --alpha"
        )));
    }
    Ok(AutoAlpha {
        alpha: AUTO_FRACTION * uninformed_loss / bean_at_alpha_1,
        uninformed_loss,
        task_loss,
        bean_at_alpha_1,
        fraction: AUTO_FRACTION,
        rows,
    })
}

/// L₀ of `targets` [N, C] for a chain with `n_outputs` outputs (module docs).
pub fn uninformed_loss(targets: ArrayView2<f32>, loss: LossKind, n_outputs: usize) -> f64 {
    match loss {
        LossKind::CrossEntropy => (n_outputs as f64).ln(),
        LossKind::Mse => targets
            .mapv(f64::from)
            .var_axis(Axis(0), 0.0)
            .mean()
            .expect("at least one output"),
    }
}

/// (mean task loss, mean BEAN term at α = 1, rows measured) at the starting weights.
fn starting_losses(
    model: &Model,
    plan: &Plan,
    set: &TrainingSet,
    cfg: &FinetuneConfig,
) -> Result<(f64, f64, usize)> {
    let unit = plan.spec.with_alpha(1.0);
    let graph = unit.loss_graph(DataType::Float);
    let bytes = crate::onnx::to_bytes(&graph.model);
    let mut session = engine::load(cfg.engine, &bytes, &cfg.engine_opts)?;
    let position = |name: &str| {
        let outputs = &graph.model.graph.outputs;
        outputs
            .iter()
            .position(|o| o.name == name)
            .expect("a scalar output of the loss graph")
    };
    let (task_at, bean_at) = (
        position(&graph.scalars.task_loss),
        position(&graph.scalars.bean),
    );
    let n_params = plan.spec.params().len();
    let params = initial_state(model, plan);
    let n = set.rows();
    let k = n.min(AUTO_ROWS);
    let rows: Vec<usize> = (0..k).map(|i| i * n / k).collect();
    let (mut task, mut bean) = (0.0, 0.0);
    for chunk in rows.chunks(cfg.batch_size) {
        let x = set.features.batch(chunk)?;
        let target = set.targets.select(Axis(0), chunk).into_dyn();
        let mut feed = vec![
            (graph.x.as_str(), Value::F32(x)),
            (graph.target.as_str(), Value::F32(target)),
        ];
        feed.extend(
            graph
                .params
                .iter()
                .zip(&params[..n_params])
                .map(|(name, p)| (name.as_str(), Value::F32(p.clone()))),
        );
        let out = session.run(&feed)?;
        let scalar = |i: usize| {
            out[i]
                .clone()
                .into_f32()
                .and_then(|a| a.iter().next().copied())
        };
        let missing = || Error::Graph("the loss graph gave no float scalar".into());
        task += scalar(task_at).ok_or_else(missing)? as f64 * chunk.len() as f64;
        bean += scalar(bean_at).ok_or_else(missing)? as f64 * chunk.len() as f64;
    }
    Ok((task / k as f64, bean / k as f64, k))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn uninformed_loss_is_a_uniform_guess_or_the_target_variance() {
        // Whatever the labels: a uniform guess over the 3 outputs.
        let one_class = array![[1.0f32, 0.0, 0.0], [1.0, 0.0, 0.0]];
        let l0 = uninformed_loss(one_class.view(), LossKind::CrossEntropy, 3);
        assert!((l0 - 3f64.ln()).abs() < 1e-12);
        // Variances 1 and 4: their mean.
        let floats = array![[1.0f32, 2.0], [-1.0, -2.0]];
        assert!((uninformed_loss(floats.view(), LossKind::Mse, 2) - 2.5).abs() < 1e-12);
    }
}
