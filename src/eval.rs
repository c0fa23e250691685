//! Accuracy of a model on labelled data, through either engine.
//!
//! The model is first reduced to the graph that computes its class scores (exporter tails such as
//! scikit-learn's ZipMap are cut off, so tract can run it), with a symbolic batch dimension.
use crate::data::{Dataset, Features};
use crate::engine::{self, EngineKind, EngineOptions, Value};
use crate::error::{Error, Result};
use crate::ir::{Dim, Model, ValueInfo, ValueType};
use crate::mlp::MlpView;
use crate::tensor::{DataType, TensorData};
use ndarray::{ArrayD, Axis};

/// Rows per engine call.
const EVAL_BATCH: usize = 2048;

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

/// The model's single runtime input.
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

/// The model reduced to what computes `target`, with its input's batch dimension symbolic and its
/// other dims taken from the data when the model leaves them open.
pub fn scoring_model(model: &Model, target: &Target, sample_shape: &[usize]) -> Result<Model> {
    let out_type = match target.kind {
        TargetKind::Scores => DataType::Float,
        TargetKind::Labels => DataType::Int64,
    };
    subgraph_model(model, &target.tensor, out_type, sample_shape)
}

/// The model reduced to what computes tensor `output` (of type `out_type`), batch dim symbolic.
pub fn subgraph_model(
    model: &Model,
    output: &str,
    out_type: DataType,
    sample_shape: &[usize],
) -> Result<Model> {
    subgraph_model_multi(model, &[output], out_type, sample_shape)
}

/// The model reduced to what computes `outputs` (all of type `out_type`), batch dim symbolic.
pub fn subgraph_model_multi(
    model: &Model,
    outputs: &[&str],
    out_type: DataType,
    sample_shape: &[usize],
) -> Result<Model> {
    let input = single_input(model)?;
    let (elem_type, shape) = input
        .tensor_shape()
        .ok_or_else(|| Error::Graph(format!("input '{}' is not a tensor", input.name)))?;
    let mut dims = vec![Dim::Param("N".into())];
    match shape {
        Some(s) if s.len() == sample_shape.len() + 1 => {
            for (d, &x) in s[1..].iter().zip(sample_shape) {
                dims.push(match d {
                    Dim::Value(v) => Dim::Value(*v),
                    _ => Dim::Value(x as i64),
                })
            }
        }
        _ => dims.extend(sample_shape.iter().map(|&x| Dim::Value(x as i64))),
    }
    let input_name = input.name.clone();
    let mut m = model.clone();
    for i in m.graph.inputs.iter_mut().filter(|i| i.name == input_name) {
        i.ty = ValueType::Tensor {
            elem_type,
            shape: Some(dims.clone()),
        };
    }
    m.graph.outputs = outputs
        .iter()
        .map(|&name| {
            let existing = m.graph.outputs.iter().find(|o| o.name == name).cloned();
            existing.unwrap_or_else(|| ValueInfo::tensor(name, out_type, None))
        })
        .collect();
    // Engines get plain graphs: tract runs no local functions.
    crate::onnx::inline_functions(&mut m)?;
    m.graph.remove_dead_nodes();
    // Value infos of the cut-off tail and intermediate shapes may pin the batch; let engines infer.
    m.graph.value_info.clear();
    Ok(m)
}

/// The values of tensors `names` (float32, `[N, k]` each) when `model` runs on `data`: the model
/// is cut down to what computes them and run batch by batch.
pub fn tensors_on(
    model: &Model,
    names: &[&str],
    data: &Dataset,
    kind: EngineKind,
    opts: &EngineOptions,
) -> Result<Vec<ndarray::Array2<f32>>> {
    let input = single_input(model)?;
    let (elem_type, shape) = input.tensor_shape().expect("checked by single_input");
    let x = data.features_for_input(&input.name, shape)?;
    let sub = subgraph_model_multi(model, names, DataType::Float, &x.shape()[1..])?;
    let mut session = engine::load(kind, &crate::onnx::to_bytes(&sub), opts)?;
    let outs = run_batches_all(session.as_mut(), &input.name, elem_type, &x)?;
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
    let labels = data
        .y
        .as_ref()
        .ok_or_else(|| Error::data(&data.path, "has no labels to evaluate against"))?;
    let input = single_input(model)?.clone();
    let (elem_type, shape) = input.tensor_shape().expect("checked by single_input");
    let x = data.features_for_input(&input.name, shape)?;
    let target = find_target(model)?;
    let scoring = scoring_model(model, &target, &x.shape()[1..])?;
    let mut session = engine::load(kind, &crate::onnx::to_bytes(&scoring), opts)?;
    let predictions = predict(session.as_mut(), &input.name, elem_type, &x, &target)?;
    check_label_range(data, labels, &target, &predictions)?;
    let correct = predictions
        .labels
        .iter()
        .zip(labels)
        .filter(|(p, y)| p == y)
        .count();
    Ok(EvalResult {
        samples: labels.len(),
        correct,
        accuracy: correct as f64 / labels.len().max(1) as f64,
        engine: session.describe(),
    })
}

fn check_label_range(
    data: &Dataset,
    labels: &[i64],
    target: &Target,
    preds: &Prediction,
) -> Result<()> {
    let known: Option<Vec<i64>> = match (&target.class_labels, preds.n_classes) {
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

struct Prediction {
    labels: Vec<i64>,
    n_classes: Option<usize>,
}

/// The model's first output on every row of `x`, batch by batch, concatenated.
pub fn run_batches(
    session: &mut dyn engine::Session,
    input_name: &str,
    elem_type: DataType,
    x: &Features,
) -> Result<Value> {
    Ok(run_batches_all(session, input_name, elem_type, x)?.swap_remove(0))
}

/// Every output of the model on every row of `x`, batch by batch, concatenated.
pub fn run_batches_all(
    session: &mut dyn engine::Session,
    input_name: &str,
    elem_type: DataType,
    x: &Features,
) -> Result<Vec<Value>> {
    let mut parts: Vec<Vec<Value>> = Vec::new();
    let rows = x.rows();
    let mut start = 0;
    while start < rows {
        crate::interrupt::check()?;
        let end = (start + EVAL_BATCH).min(rows);
        let value = match elem_type {
            DataType::Float => Value::F32(x.slice_f32(start, end)),
            DataType::Double => Value::F64(x.slice_f64(start, end)),
            t => {
                return Err(Error::Graph(format!(
                    "input '{input_name}' is {}; only float and double inputs are supported",
                    t.name()
                )))
            }
        };
        let out = session.run(&[(input_name, value)])?;
        if out.is_empty() {
            return Err(Error::engine("engine", "the graph returned no output"));
        }
        for (i, v) in out.into_iter().enumerate() {
            if parts.len() <= i {
                parts.push(Vec::new());
            }
            parts[i].push(v);
        }
        start = end;
    }
    if parts.is_empty() {
        return Err(Error::Invalid("no data rows".into()));
    }
    parts.into_iter().map(concat).collect()
}

fn concat(parts: Vec<Value>) -> Result<Value> {
    fn cat<T: Clone>(parts: Vec<ArrayD<T>>) -> Result<ArrayD<T>> {
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        ndarray::concatenate(Axis(0), &views)
            .map_err(|e| Error::engine("engine", format!("output batches do not line up: {e}")))
    }
    let first = parts
        .first()
        .ok_or_else(|| Error::Invalid("no data rows".into()))?;
    Ok(match first {
        Value::F32(_) => Value::F32(cat(parts
            .into_iter()
            .filter_map(Value::into_f32)
            .collect())?),
        Value::F64(_) => Value::F64(cat(parts
            .into_iter()
            .filter_map(|v| if let Value::F64(a) = v { Some(a) } else { None })
            .collect())?),
        Value::I64(_) => Value::I64(cat(parts
            .into_iter()
            .filter_map(|v| if let Value::I64(a) = v { Some(a) } else { None })
            .collect())?),
    })
}

fn predict(
    session: &mut dyn engine::Session,
    input_name: &str,
    elem_type: DataType,
    x: &Features,
    target: &Target,
) -> Result<Prediction> {
    let out = run_batches(session, input_name, elem_type, x)?;
    let scores = match (target.kind, out) {
        (TargetKind::Labels, Value::I64(a)) => {
            return Ok(Prediction {
                labels: a.iter().copied().collect(),
                n_classes: None,
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
    let n_classes = scores.shape()[1];
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
    Ok(Prediction {
        labels,
        n_classes: Some(n_classes),
    })
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
