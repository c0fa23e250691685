//! The dense chain's input rows for training, read a batch at a time. When the chain starts at
//! the model's input they are the data's own rows, read from where they are (a mapped file stays
//! mapped). When a frozen prelude stands in front of the chain (a Cast, a Flatten, a Conv
//! backbone …), its output is computed once and held in memory if the memory budget holds it;
//! otherwise the prelude is run on each batch's rows, so that a mapped data set larger than
//! memory fine-tunes through a prelude too, at the cost of one prelude run a step.
use super::data_prep;
use crate::data::{Dataset, Features};
use crate::engine::{EngineKind, EngineOptions, Value};
use crate::error::{Error, Result};
use crate::eval::single_input;
use crate::ir::Model;
use crate::memory;
use crate::mlp::MlpView;
use crate::runner::ModelRunner;
use crate::tensor::DataType;
use ndarray::{ArrayD, IxDyn};
use std::cell::RefCell;

pub enum ChainInput {
    /// `[N, n₀]`, in memory or mapped.
    Rows(Features),
    /// The prelude, run on each batch of `data`'s rows; its output has `n_in` values a row.
    Prelude {
        runner: RefCell<ModelRunner>,
        data: Features,
        n_in: usize,
    },
}

impl ChainInput {
    /// The chain input of `data` under `model` (see the module comment for which form).
    pub fn new(
        model: &Model,
        view: &MlpView,
        data: &Dataset,
        kind: EngineKind,
        opts: &EngineOptions,
    ) -> Result<ChainInput> {
        let starts_at_input = view.input() == single_input(model)?.name;
        if starts_at_input || memory::available() >= data_prep::prelude_bytes(data, view) {
            let f = data_prep::chain_features(model, view, data, kind, opts)?;
            return Ok(ChainInput::Rows(f));
        }
        let runner = ModelRunner::new(model, &[view.input()], DataType::Float, data, kind, opts)?;
        let input = ChainInput::Prelude {
            runner: RefCell::new(runner),
            data: data.x.clone(),
            n_in: view.layers[0].n_in,
        };
        // The prelude's width, checked on the first row before any training.
        input.batch(&[0]).map_err(|e| match e {
            Error::Graph(why) => Error::data(&data.path, why),
            e => e,
        })?;
        Ok(input)
    }

    pub fn rows(&self) -> usize {
        match self {
            ChainInput::Rows(f) => f.rows(),
            ChainInput::Prelude { data, .. } => data.rows(),
        }
    }

    /// The given rows, `[rows.len(), n₀]`.
    pub fn batch(&self, rows: &[usize]) -> Result<ArrayD<f32>> {
        match self {
            ChainInput::Rows(f) => Ok(f.gather_f32(rows)),
            ChainInput::Prelude { runner, n_in, .. } => {
                let out = runner.borrow_mut().run_rows(rows)?;
                let a = out.into_iter().next().and_then(Value::into_f32);
                let a =
                    a.ok_or_else(|| Error::Graph("the prelude's output is not float32".into()))?;
                a.into_shape_with_order(IxDyn(&[rows.len(), *n_in]))
                    .map_err(|_| {
                        Error::Graph(format!(
                            "rows give other than {n_in} values at the dense chain's input, which \
                             its first layer takes"
                        ))
                    })
            }
        }
    }

    /// What a checkpoint's signature covers: the rows given to the chain, or (when the prelude
    /// runs a batch at a time) the data the prelude reads.
    pub fn signed(&self) -> &Features {
        match self {
            ChainInput::Rows(f) => f,
            ChainInput::Prelude { data, .. } => data,
        }
    }
}
