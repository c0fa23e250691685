//! What a model predicts and how accurate it is on labelled data (or how far its outputs are from
//! float targets, as an RMSE), through either engine: the
//! class output is found (`find_target`), the model is cut down to it and run
//! ([`crate::runner::ModelRunner`]), and each row's class is the arg-max score's.
use crate::data::Dataset;
use crate::engine::{EngineKind, EngineOptions, Value};
use crate::error::{Error, Result};
use crate::ir::{Model, ValueInfo};
use crate::mlp::MlpView;
use crate::runner::ModelRunner;
use crate::tensor::{DataType, TensorData};
use ndarray::{ArrayD, Axis};

/// Which tensor of the model gives its prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Tensor name.
    pub tensor: String,
    /// Per-class scores `[N, C]` (probabilities, logits or log-probabilities), or labels `[N]`.
    pub kind: TargetKind,
    /// Class label of each score column, when the model maps indices to labels
    /// (scikit-learn's `ArgMax → ArrayFeatureExtractor(classes)`).
    pub class_labels: Option<Vec<i64>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Scores,
    Labels,
}

/// The model's single runtime input, which must be a tensor (its `tensor_shape()` is Some).
pub fn single_input(model: &Model) -> Result<&ValueInfo> {
    let inputs: Vec<&ValueInfo> = model.graph.runtime_inputs().collect();
    match inputs.as_slice() {
        [one] if one.tensor_shape().is_some() => Ok(one),
        [one] => Err(Error::Graph(format!(
            "input '{}' has type {}; a tensor input is needed",
            one.name,
            one.type_string()
        ))),
        _ => Err(Error::Graph(format!(
            "the model has {} inputs ({}); this needs a model with exactly one",
            inputs.len(),
            inputs
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Picks the class output: a float `[N, C]` graph output, else the dense chain's scores, else an
/// integer label output.
pub fn find_target(model: &Model) -> Result<Target> {
    let g = &model.graph;
    let rank = |v: &ValueInfo| v.tensor_shape().and_then(|(_, s)| s.map(|s| s.len()));
    let float_out = g.outputs.iter().find(|o| {
        matches!(
            o.tensor_shape(),
            Some((DataType::Float | DataType::Double, _))
        ) && matches!(rank(o), Some(2) | None)
    });
    let scores = match float_out {
        Some(o) => Some(o.name.clone()),
        None => MlpView::find(g).ok().map(|v| v.scores),
    };
    if let Some(tensor) = scores {
        let class_labels = class_labels_for(model, &tensor);
        return Ok(Target {
            tensor,
            kind: TargetKind::Scores,
            class_labels,
        });
    }
    let label_out = g.outputs.iter().find(|o| {
        matches!(
            o.tensor_shape(),
            Some((DataType::Int64 | DataType::Int32, _))
        )
    });
    match label_out {
        Some(o) => Ok(Target {
            tensor: o.name.clone(),
            kind: TargetKind::Labels,
            class_labels: None,
        }),
        None => Err(Error::Graph(
            "found no class output: no float [N, C] output, no dense chain and no integer label output".into(),
        )),
    }
}

/// scikit-learn maps score columns to labels with `ArgMax(scores) → ArrayFeatureExtractor(classes, ·)`.
fn class_labels_for(model: &Model, scores: &str) -> Option<Vec<i64>> {
    let g = &model.graph;
    let argmax_out = g
        .nodes
        .iter()
        .find(|n| n.op_type == "ArgMax" && n.input(0) == Some(scores))?
        .outputs
        .first()?;
    let afe = g.nodes.iter().find(|n| {
        n.op_type == "ArrayFeatureExtractor" && n.input(1) == Some(argmax_out.as_str())
    })?;
    let classes = g.initializer(afe.input(0)?)?;
    match &classes.data {
        TensorData::I64(v) => Some(v.clone()),
        TensorData::I32(v) => Some(v.iter().map(|&c| c as i64).collect()),
        _ => None,
    }
}

impl Target {
    /// The type of the target tensor: float scores or int64 labels.
    pub fn out_type(&self) -> DataType {
        match self.kind {
            TargetKind::Scores => DataType::Float,
            TargetKind::Labels => DataType::Int64,
        }
    }
}

/// The values of tensors `names` (float32, `[N, k]` each) when `model` runs on `data`.
pub fn tensors_on(
    model: &Model,
    names: &[&str],
    data: &Dataset,
    kind: EngineKind,
    opts: &EngineOptions,
) -> Result<Vec<ndarray::Array2<f32>>> {
    let mut runner = ModelRunner::new(model, names, DataType::Float, data, kind, opts)?;
    let outs = runner.run_all()?;
    names
        .iter()
        .zip(outs)
        .map(|(name, v)| {
            let Value::F32(a) = v else {
                return Err(Error::Graph(format!("tensor '{name}' is not float32")));
            };
            let rows = a.shape().first().copied().unwrap_or(0);
            let cols = a.len().checked_div(rows).unwrap_or(0);
            a.into_shape_with_order((rows, cols))
                .map_err(|_| Error::Graph(format!("tensor '{name}' is not [N, k]")))
        })
        .collect()
}

/// The predicted class of every row: the arg-max score's column (mapped through the model's
/// class labels when it has them), or the label output itself.
pub struct Predictions {
    pub labels: Vec<i64>,
    /// The scores `[N, C]` when the target gives scores.
    pub scores: Option<ArrayD<f64>>,
}

/// `target`'s values on `data` and the predicted classes.
pub fn predict(
    model: &Model,
    target: &Target,
    data: &Dataset,
    kind: EngineKind,
    opts: &EngineOptions,
) -> Result<(Predictions, String)> {
    let mut runner = ModelRunner::new(
        model,
        &[&target.tensor],
        target.out_type(),
        data,
        kind,
        opts,
    )?;
    let out = runner.run_all()?.swap_remove(0);
    Ok((predictions(target, out)?, runner.describe()))
}

/// The predicted classes (and scores) in `out`, the value of `target` on every row.
pub(crate) fn predictions(target: &Target, out: Value) -> Result<Predictions> {
    let scores = match (target.kind, out) {
        (TargetKind::Labels, Value::I64(a)) => {
            return Ok(Predictions {
                labels: a.iter().copied().collect(),
                scores: None,
            })
        }
        (TargetKind::Scores, Value::F32(a)) => a.mapv(f64::from),
        (TargetKind::Scores, Value::F64(a)) => a,
        (_, v) => {
            return Err(Error::Graph(format!(
                "output '{}' has an unexpected type/shape {:?}",
                target.tensor,
                v.shape()
            )))
        }
    };
    if scores.ndim() != 2 || scores.shape()[1] == 0 {
        return Err(Error::Graph(format!(
            "class output '{}' has shape {:?}; expected [N, classes]",
            target.tensor,
            scores.shape()
        )));
    }
    let labels = scores
        .axis_iter(Axis(0))
        .map(|row| {
            let best = argmax(row.iter().copied());
            match &target.class_labels {
                Some(c) => c.get(best).copied().unwrap_or(best as i64),
                None => best as i64,
            }
        })
        .collect();
    Ok(Predictions {
        labels,
        scores: Some(scores),
    })
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct EvalResult {
    pub samples: usize,
    pub correct: usize,
    pub accuracy: f64,
    pub engine: String,
}

/// Runs `model` over `data` and counts correct predictions.
pub fn evaluate(
    model: &Model,
    data: &Dataset,
    kind: EngineKind,
    opts: &EngineOptions,
) -> Result<EvalResult> {
    let (right, engine) = verdicts(model, data, kind, opts)?;
    let correct = right.iter().filter(|&&r| r).count();
    Ok(EvalResult {
        samples: right.len(),
        correct,
        accuracy: correct as f64 / right.len().max(1) as f64,
        engine,
    })
}

/// Whether `model` predicts each row of `data` right, and the engine that ran it.
pub fn verdicts(
    model: &Model,
    data: &Dataset,
    kind: EngineKind,
    opts: &EngineOptions,
) -> Result<(Vec<bool>, String)> {
    let labels = data
        .y
        .as_ref()
        .ok_or_else(|| Error::data(&data.path, "has no labels to evaluate against"))?;
    let target = find_target(model)?;
    let (predictions, engine) = predict(model, &target, data, kind, opts)?;
    check_label_range(data, labels, &target, &predictions)?;
    let right = predictions
        .labels
        .iter()
        .zip(labels)
        .map(|(p, y)| p == y)
        .collect();
    Ok((right, engine))
}

/// RMSE of `model`'s class output (its float outputs, for a regressor) against the float targets
/// of `data`, whose shape must be the output's ([`crate::gate::rmse`]).
pub fn rmse_on(
    model: &Model,
    data: &Dataset,
    kind: EngineKind,
    opts: &EngineOptions,
) -> Result<f64> {
    let y = data
        .y_values
        .as_ref()
        .ok_or_else(|| Error::data(&data.path, "has no float targets y to measure an RMSE on"))?;
    let target = find_target(model)?;
    let (predictions, _) = predict(model, &target, data, kind, opts)?;
    match predictions.scores {
        Some(s) if s.shape() == y.shape() => Ok(crate::gate::rmse(&s, y)),
        s => Err(Error::data(
            &data.path,
            format!(
                "targets have shape {:?} but the model's output '{}' has {}",
                y.shape(),
                target.tensor,
                s.map_or("class labels".to_string(), |s| format!("{:?}", s.shape()))
            ),
        )),
    }
}

/// Every label must be one of the model's classes (its class labels, else 0..classes).
pub(crate) fn check_label_range(
    data: &Dataset,
    labels: &[i64],
    target: &Target,
    preds: &Predictions,
) -> Result<()> {
    let n_classes = preds.scores.as_ref().map(|s| s.shape()[1]);
    let known: Option<Vec<i64>> = match (&target.class_labels, n_classes) {
        (Some(c), _) => Some(c.clone()),
        (None, Some(n)) => Some((0..n as i64).collect()),
        (None, None) => None,
    };
    if let Some(known) = known {
        if let Some((row, y)) = labels.iter().enumerate().find(|(_, y)| !known.contains(y)) {
            return Err(Error::data(
                &data.path,
                format!(
                    "label {y} in row {row} is not one of the model's {} classes",
                    known.len()
                ),
            ));
        }
    }
    Ok(())
}

/// Index of the largest value (the first one on ties; NaN never wins).
pub fn argmax(values: impl Iterator<Item = f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, v) in values.enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}
