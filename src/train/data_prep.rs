//! What a data set becomes for training: the dense chain's input features (the frozen prelude run
//! once) and per-row targets (one-hot labels, a teacher's probabilities, or regression values).
use crate::data::{Dataset, Features};
use crate::engine::{EngineKind, EngineOptions};
use crate::error::{Error, Result};
use crate::eval::{self, single_input};
use crate::ir::Model;
use crate::memory;
use crate::mlp::{Head, MlpView};
use crate::tensor::DataType;
use ndarray::{Array2, Axis};

/// Features entering the dense chain, `[N, n_in]`. When the chain starts at the graph input they
/// are the data's own, read batch by batch from where they are (a mapped file stays mapped).
/// Otherwise the frozen part in front of the chain (Cast, Div, Flatten, a Conv backbone …) is run
/// once here and its output is held in memory (charged to the memory budget first; fine-tuning
/// runs the prelude a batch at a time instead when it does not fit, see `chain_input`).
pub fn chain_features(
    model: &Model,
    view: &MlpView,
    data: &Dataset,
    kind: EngineKind,
    opts: &EngineOptions,
) -> Result<Features> {
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
        let per_row = x.shape()[1..].iter().product::<usize>();
        x.reshaped(&[x.rows(), per_row])
    } else {
        memory::reserve(
            "the prelude's output (the dense chain's input features)",
            prelude_bytes(data, view),
        )?;
        let f = eval::tensors_on(model, &[view.input()], data, kind, opts)?.remove(0);
        Features::F32(f.into_dyn().into_shared())
    };
    let cols = features.shape()[1..].iter().product::<usize>();
    if cols != n_in {
        return Err(Error::data(
            &data.path,
            format!(
                "rows give {cols} values at the dense chain's input but its first layer takes {n_in}"
            ),
        ));
    }
    Ok(features)
}

/// Heap bytes of the prelude's output on `data`: the engine's output batches and their
/// concatenation live at once.
pub fn prelude_bytes(data: &Dataset, view: &MlpView) -> u64 {
    (data.rows() as u64)
        .saturating_mul(view.layers[0].n_in as u64)
        .saturating_mul(8)
}

/// [`chain_features`] as one array in memory (for statistics over the rows), charged to the
/// memory budget first.
pub fn chain_features_in_memory(
    model: &Model,
    view: &MlpView,
    data: &Dataset,
    kind: EngineKind,
    opts: &EngineOptions,
) -> Result<Array2<f32>> {
    let f = chain_features(model, view, data, kind, opts)?;
    let (rows, cols) = (f.rows(), f.shape()[1]);
    let bytes = (rows as u64).saturating_mul(cols as u64).saturating_mul(4);
    memory::reserve("the dense chain's input features", bytes)?;
    let a = match f {
        Features::F32(a) => a.into_owned(),
        other => other.slice_f32(0, rows),
    };
    Ok(a.into_dimensionality()
        .expect("chain features are [N, n_in]"))
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
