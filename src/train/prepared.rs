//! Training rows prepared once for many fine-tunes on the same data. `compress` heals each of its
//! ~90 search candidates on the same rows, and `prune --heal-epochs` heals each of its candidates:
//! the dense chain's input features (the stored type converted and the frozen prelude run over
//! every row) and the one-hot targets are the same for all of them, so they are computed once.
//!
//! Contract: the rows serve a model exactly when its prelude (the graph cut at the dense chain's
//! input, serialized) is byte for byte the prelude they were computed with and its head has the
//! same class labels; [`PreparedRows::training_set`] checks both and returns None otherwise, and
//! the caller prepares afresh. Nothing that depends on the model's weights is kept: targets from a
//! teacher are computed per model.
use super::chain_input::ChainInput;
use super::plan::{self, Plan};
use super::trainer::TrainingSet;
use super::FinetuneConfig;
use crate::data::{Dataset, Features};
use crate::error::Result;
use crate::eval;
use crate::ir::Model;
use crate::mlp::MlpView;
use crate::tensor::DataType;
use ndarray::Array2;

pub struct PreparedRows {
    prelude: Vec<u8>,
    class_labels: Option<Vec<i64>>,
    features: Features,
    /// None when the targets come from a teacher (the model itself).
    targets: Option<Array2<f32>>,
}

impl PreparedRows {
    /// The rows of `data` for fine-tuning `model` under `cfg`; None when the prelude's output does
    /// not fit in memory (each fine-tune then runs the prelude a batch at a time, as it must).
    pub fn new(model: &Model, data: &Dataset, cfg: &FinetuneConfig) -> Result<Option<Self>> {
        let plan = plan::plan(model, cfg, data.y_values.is_some())?;
        let features = match ChainInput::new(model, &plan.view, data, cfg.engine, &cfg.engine_opts)?
        {
            ChainInput::Rows(f) => f,
            ChainInput::Prelude { .. } => return Ok(None),
        };
        let targets = (!cfg.teacher)
            .then(|| plan::targets(model, &plan, data, cfg))
            .transpose()?;
        Ok(Some(PreparedRows {
            prelude: prelude_bytes(model, &plan.view, data)?,
            class_labels: class_labels(model),
            features,
            targets,
        }))
    }

    /// The training set for `model` (planned as `plan`), when these rows serve it.
    pub(super) fn training_set(
        &self,
        model: &Model,
        plan: &Plan,
        data: &Dataset,
        cfg: &FinetuneConfig,
    ) -> Result<Option<TrainingSet>> {
        if !self.serves_view(model, &plan.view, data)? {
            return Ok(None);
        }
        let targets = match &self.targets {
            Some(t) => t.clone(),
            None => plan::targets(model, plan, data, cfg)?,
        };
        Ok(Some(TrainingSet {
            features: ChainInput::Rows(self.features.clone()),
            targets,
        }))
    }
}

impl PreparedRows {
    /// Whether these rows (of `data`) serve `model`: the same prelude and class labels.
    pub fn serves(&self, model: &Model, data: &Dataset) -> Result<bool> {
        self.serves_view(model, &MlpView::find(&model.graph)?, data)
    }

    fn serves_view(&self, model: &Model, view: &MlpView, data: &Dataset) -> Result<bool> {
        Ok(class_labels(model) == self.class_labels
            && prelude_bytes(model, view, data)? == self.prelude)
    }
}

fn class_labels(model: &Model) -> Option<Vec<i64>> {
    eval::find_target(model).ok().and_then(|t| t.class_labels)
}

/// The model cut at the dense chain's input, serialized: what the features depend on.
fn prelude_bytes(model: &Model, view: &MlpView, data: &Dataset) -> Result<Vec<u8>> {
    let sample_shape = &data.x.shape()[1..];
    let prelude = crate::runner::cut(model, &[view.input()], DataType::Float, sample_shape)?;
    Ok(crate::onnx::to_bytes(&prelude))
}
