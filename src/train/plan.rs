//! The training plan of a model: its dense chain, the step spec built from the configuration, each
//! layer's γ; the state it starts from; the targets of a data set; and writing trained params back.
use super::data_prep;
use super::step::{Bean, LayerSpec, LossKind, Optimizer, StepSpec};
use crate::assemblies;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::eval;
use crate::ir::Model;
use crate::mlp::MlpView;
use crate::train::{Alpha, FinetuneConfig, Gamma, LayerSelection, OptimizerKind};
use ndarray::{Array1, Array2, ArrayD};

/// The training plan for `model`: its chain, the step spec, each layer's γ.
pub struct Plan {
    pub view: MlpView,
    pub spec: StepSpec,
    pub gammas: Vec<f64>,
}

/// With `Alpha::Auto` the plan's BEAN layers carry α = 1 until `train::alpha` sets it.
pub fn plan(model: &Model, cfg: &FinetuneConfig, float_targets: bool) -> Result<Plan> {
    let view = MlpView::find(&model.graph)?;
    view.require_whole()?;
    for (i, l) in view.layers.iter().enumerate() {
        if let Err(why) = l.trainable() {
            let node = &model.graph.nodes[l.nodes()[0]];
            return Err(Error::node(
                node,
                format!("dense layer {i} cannot be fine-tuned: {why}"),
            ));
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
                .filter(|_| selected && planned_alpha(cfg.alpha) > 0.0)
                .map(|variant| Bean {
                    variant,
                    alpha: planned_alpha(cfg.alpha),
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
             fine-tuning needs a class-score head with at least 2 outputs, or the MSE loss with float targets \
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

/// The α a plan's BEAN layers carry: the given one, or 1 until `train::alpha` sets it.
fn planned_alpha(alpha: Alpha) -> f64 {
    match alpha {
        Alpha::Auto => 1.0,
        Alpha::Fixed(a) => a,
    }
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
