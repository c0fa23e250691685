//! What a data set becomes for training: the dense chain's input features (the frozen prelude run
//! once) and per-row targets (one-hot labels, a teacher's probabilities, or regression values).
use crate::data::Dataset;
use crate::engine::{EngineKind, EngineOptions};
use crate::error::{Error, Result};
use crate::eval::{self, single_input};
use crate::ir::Model;
use crate::mlp::{Head, MlpView};
use crate::tensor::DataType;
use ndarray::{Array2, Axis};

/// Features entering the dense chain, `[N, n_in]`. When the chain does not start at the graph
/// input, the frozen part in front of it (Cast, Div, Flatten, a Conv backbone …) is run once here.
pub fn chain_features(
    model: &Model,
    view: &MlpView,
    data: &Dataset,
    kind: EngineKind,
    opts: &EngineOptions,
) -> Result<Array2<f32>> {
    let input = single_input(model)?;
    let (elem_type, shape) = input.tensor_shape().expect("checked by single_input");
    let n_in = view.layers[0].n_in;
    let features = if view.input() == input.name {
        if !matches!(elem_type, DataType::Float | DataType::Double) {
            return Err(Error::Graph(format!(
                "input '{}' is {}; expected float",
                input.name,
                elem_type.name()
            )));
        }
        let x = data.features_for_input(&input.name, shape)?;
        let rows = x.rows();
        x.slice_f32(0, rows)
            .into_shape_with_order((rows, x.shape()[1..].iter().product::<usize>()))
            .expect("row-major rows")
    } else {
        eval::tensors_on(model, &[view.input()], data, kind, opts)?.remove(0)
    };
    if features.ncols() != n_in {
        return Err(Error::data(
            &data.path,
            format!(
                "rows give {} values at the dense chain's input but its first layer takes {n_in}",
                features.ncols()
            ),
        ));
    }
    Ok(features)
}

/// One-hot targets from class labels, mapped through the model's class labels when it has them.
pub fn one_hot(
    data: &Dataset,
    labels: &[i64],
    n_classes: usize,
    class_labels: Option<&[i64]>,
) -> Result<Array2<f32>> {
    let mut t = Array2::zeros((labels.len(), n_classes));
    for (row, &y) in labels.iter().enumerate() {
        let index = match class_labels {
            Some(c) => c.iter().position(|&v| v == y),
            None => usize::try_from(y).ok().filter(|&i| i < n_classes),
        };
        let Some(i) = index else {
            return Err(Error::data(
                &data.path,
                format!("label {y} in row {row} is not one of the model's {n_classes} classes"),
            ));
        };
        t[[row, i]] = 1.0;
    }
    Ok(t)
}

/// The original model's class probabilities on `data` (distillation targets).
pub fn teacher_targets(
    model: &Model,
    view: &MlpView,
    data: &Dataset,
    kind: EngineKind,
    opts: &EngineOptions,
) -> Result<Array2<f32>> {
    let s = eval::tensors_on(model, &[&view.scores], data, kind, opts)?.remove(0);
    let c = view.n_classes();
    if s.ncols() != c {
        return Err(Error::Graph(format!(
            "the teacher's scores are not [N, {c}]"
        )));
    }
    Ok(match view.head {
        Head::Softmax => s,
        Head::LogSoftmax => s.mapv(f32::exp),
        Head::Logits => softmax_rows(&s),
    })
}

fn softmax_rows(s: &Array2<f32>) -> Array2<f32> {
    let mut out = s.clone();
    for mut row in out.axis_iter_mut(Axis(0)) {
        let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        row.mapv_inplace(|v| (v - m).exp());
        let sum = row.sum();
        row.mapv_inplace(|v| v / sum);
    }
    out
}
