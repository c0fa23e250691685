//! The training step as one ONNX graph: forward over the dense chain, loss, BEAN and baseline
//! regularizers, explicit backward, and the optimizer update — one file per concept, each
//! emitting into a [`GraphBuilder`] through typed [`Wire`]s. [`StepSpec::step_graph`] returns a
//! [`StepGraph`]: the model with the names of its per-step inputs (`x` [B, n₀], `target` [B, C]:
//! class probabilities, or regression targets for MSE; `lr`; `step`, from 1), its scalar outputs
//! (task loss, BEAN term, baseline term, correct count) and its state bindings (every trainable
//! tensor, then the optimizer's slots; each fed as an input and read back from `<name>.next`).
//! Weights are the effective `[n_in, n_out]` matrices (see `mlp::DenseLayer::weight_matrix`);
//! layout conversion happens outside the graph. The maths are in docs/DESIGN.md §3–4.
mod activation;
mod backward;
mod baseline;
mod bean;
mod forward;
mod loss;
mod optimizer;

pub use baseline::GROUP_LASSO_EPS;

use crate::engine::fused_update::UpdateRule;
use crate::engine::step::{HostUpdate, ScalarOutputs, StateBinding, StepGraph, StepInputs};
use crate::ir::builder::{GraphBuilder, Wire};
use crate::ir::Model;
use crate::mlp::Activation;
use crate::tensor::DataType;
use forward::{Forward, LayerParams};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BeanVariant {
    /// M = ÂÂᵀ (shared downstream neighbours); evaluated in O(B·n·m) without any n×n matrix.
    One,
    /// M = (ÂÂᵀ)∘(ÂÂᵀ) (4-cycles); needs the n×n matrices.
    Two,
}

crate::names::named!(BeanVariant, "BEAN variant", [One => "1", Two => "2"]);

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bean {
    pub variant: BeanVariant,
    pub alpha: f64,
    /// Â = |tanh(γW)|.
    pub gamma: f64,
}

/// Baseline regularizers on each input neuron's outgoing weights (the rows of W).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    L1,
    L2,
    GroupLasso,
}

crate::names::named!(Baseline, "regularizer", [L1 => "l1", L2 => "l2", GroupLasso => "group-lasso"]);

#[derive(Debug, Clone, PartialEq)]
pub struct LayerSpec {
    pub n_in: usize,
    pub n_out: usize,
    pub activation: Activation,
    /// Whether the layer has a trainable bias.
    pub has_bias: bool,
    /// BEAN on this layer's input neurons (its input activations and its weight rows).
    pub bean: Option<Bean>,
    pub baseline: Option<(Baseline, f64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossKind {
    /// Softmax cross-entropy against class probabilities (one-hot labels or a teacher).
    CrossEntropy,
    /// Mean squared error of the chain's output.
    Mse,
}

crate::names::named!(LossKind, "loss", [CrossEntropy => "ce", Mse => "mse"]);

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Optimizer {
    /// PyTorch's SGD: buf ← μ·buf + g; p ← p − lr·buf.
    Sgd {
        momentum: f64,
    },
    Adam {
        beta1: f64,
        beta2: f64,
        eps: f64,
    },
}

impl Optimizer {
    pub fn slots(&self) -> &'static [&'static str] {
        match self {
            Optimizer::Sgd { .. } => &["buf"],
            Optimizer::Adam { .. } => &["m", "v"],
        }
    }

    /// The same rule, for an update computed by the host.
    pub fn rule(&self) -> UpdateRule {
        match *self {
            Optimizer::Sgd { momentum } => UpdateRule::Sgd { momentum },
            Optimizer::Adam { beta1, beta2, eps } => UpdateRule::Adam { beta1, beta2, eps },
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct StepSpec {
    pub layers: Vec<LayerSpec>,
    pub loss: LossKind,
    pub optimizer: Optimizer,
}

/// A trainable tensor of the step graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: String,
    pub layer: usize,
    pub is_bias: bool,
    pub shape: Vec<usize>,
}

/// The state name of an optimizer slot of a param (`W0.m`).
fn slot_name(param: &str, slot: &str) -> String {
    format!("{param}.{slot}")
}

/// The output holding a state tensor's next value.
fn next_name(state: &str) -> String {
    format!("{state}.next")
}

/// The per-step inputs, named once.
fn step_inputs() -> StepInputs {
    StepInputs {
        x: "x".into(),
        target: "target".into(),
        lr: "lr".into(),
        step: "step".into(),
    }
}

/// The scalar outputs, named once.
fn scalar_outputs() -> ScalarOutputs {
    ScalarOutputs {
        task_loss: "loss_task".into(),
        bean: "reg_bean".into(),
        baseline: "reg_base".into(),
        correct: "correct".into(),
    }
}

impl StepSpec {
    /// This spec with every BEAN layer's α set to `alpha` (the term is linear in α).
    pub fn with_alpha(&self, alpha: f64) -> StepSpec {
        let mut spec = self.clone();
        for bean in spec.layers.iter_mut().filter_map(|l| l.bean.as_mut()) {
            bean.alpha = alpha;
        }
        spec
    }

    pub fn params(&self) -> Vec<Param> {
        let mut v = Vec::new();
        for (l, s) in self.layers.iter().enumerate() {
            v.push(Param {
                name: format!("W{l}"),
                layer: l,
                is_bias: false,
                shape: vec![s.n_in, s.n_out],
            });
            if s.has_bias {
                v.push(Param {
                    name: format!("b{l}"),
                    layer: l,
                    is_bias: true,
                    shape: vec![s.n_out],
                });
            }
        }
        v
    }

    /// State tensor names and shapes: the params, then each optimizer slot of each param.
    pub fn state_names(&self) -> Vec<(String, Vec<usize>)> {
        let params = self.params();
        let mut v: Vec<(String, Vec<usize>)> = params
            .iter()
            .map(|p| (p.name.clone(), p.shape.clone()))
            .collect();
        for slot in self.optimizer.slots() {
            v.extend(
                params
                    .iter()
                    .map(|p| (slot_name(&p.name, slot), p.shape.clone())),
            );
        }
        v
    }

    /// Every setting of the step as stable text (floats as their bits): what a checkpoint's
    /// signature hashes.
    pub fn describe(&self) -> String {
        let bits = |v: f64| format!("{:016x}", v.to_bits());
        let mut lines: Vec<String> = self
            .layers
            .iter()
            .map(|l| {
                let bean = l.bean.map_or("-".into(), |b| {
                    format!("{} {} {}", b.variant, bits(b.alpha), bits(b.gamma))
                });
                let baseline = l
                    .baseline
                    .map_or("-".into(), |(k, w)| format!("{k} {}", bits(w)));
                let act = match l.activation {
                    Activation::LeakyRelu(a) => format!("leaky_relu {:08x}", a.to_bits()),
                    other => other.name(),
                };
                format!(
                    "layer {} {} {act} bias {} bean {bean} baseline {baseline}",
                    l.n_in, l.n_out, l.has_bias
                )
            })
            .collect();
        lines.push(format!("loss {}", self.loss));
        lines.push(match self.optimizer {
            Optimizer::Sgd { momentum } => format!("sgd {}", bits(momentum)),
            Optimizer::Adam { beta1, beta2, eps } => {
                format!("adam {} {} {}", bits(beta1), bits(beta2), bits(eps))
            }
        });
        lines.join("\n")
    }

    pub fn n_classes(&self) -> usize {
        self.layers.last().map(|l| l.n_out).unwrap_or(0)
    }

    /// The step graph in f32.
    pub fn step_graph(&self) -> StepGraph {
        self.step_graph_in(DataType::Float, Mode::Step)
    }

    /// The same step in `elem` precision, with each param's gradient as an extra output.
    pub fn step_graph_with_gradients(&self, elem: DataType) -> GradientGraph {
        GradientGraph {
            step: self.step_graph_in(elem, Mode::StepWithGradients),
            gradients: self
                .params()
                .iter()
                .map(|p| gradient_name(&p.name))
                .collect(),
        }
    }

    /// The step without its update, in f32: inputs `x`, `target` and the params; outputs the
    /// scalars and each param's gradient, for an update computed outside the graph. For ONNX
    /// Runtime only ([`Flavor::OnnxRuntime`]).
    pub fn gradient_graph(&self) -> GradientOnlyGraph {
        let inputs = step_inputs();
        let params = self.params();
        GradientOnlyGraph {
            model: self.build(DataType::Float, Mode::Gradients),
            x: inputs.x,
            target: inputs.target,
            gradients: params.iter().map(|p| gradient_name(&p.name)).collect(),
            params: params.into_iter().map(|p| p.name).collect(),
            scalars: scalar_outputs(),
        }
    }

    /// Forward, loss and regularizers only: inputs `x`, `target` and the params; the scalars.
    pub fn loss_graph(&self, elem: DataType) -> LossGraph {
        let inputs = step_inputs();
        LossGraph {
            model: self.build(elem, Mode::Loss),
            x: inputs.x,
            target: inputs.target,
            params: self.params().into_iter().map(|p| p.name).collect(),
            scalars: scalar_outputs(),
        }
    }

    fn step_graph_in(&self, elem: DataType, mode: Mode) -> StepGraph {
        let host_update = (elem == DataType::Float && mode == Mode::Step).then(|| {
            let g = self.gradient_graph();
            HostUpdate {
                model: g.model,
                gradients: g.gradients,
                rule: self.optimizer.rule(),
            }
        });
        StepGraph {
            host_update,
            model: self.build(elem, mode),
            inputs: step_inputs(),
            scalars: scalar_outputs(),
            state: self
                .state_names()
                .into_iter()
                .map(|(name, shape)| StateBinding {
                    output: next_name(&name),
                    input: name,
                    shape,
                })
                .collect(),
        }
    }

    fn build(&self, elem: DataType, mode: Mode) -> Model {
        let mut g = GraphBuilder::new("bean_step", elem);
        let io = self.declare_inputs(&mut g, mode);
        let batch = g.batch_size(&io.x);
        let fwd = forward::forward(&mut g, &self.layers, &io.x, &io.layers);
        let n_classes = self.n_classes();
        let loss = loss::loss(
            &mut g,
            self.loss,
            fwd.output(),
            &io.target,
            &batch,
            n_classes,
        );
        let correct = loss::correct(&mut g, fwd.output(), &io.target);
        let flavor = mode.flavor();
        let reg = self.regularize(&mut g, &fwd, &io.layers, &batch, flavor);
        let names = scalar_outputs();
        g.output(&loss.value, &names.task_loss);
        g.output(&reg.bean, &names.bean);
        g.output(&reg.baseline, &names.baseline);
        g.output(&correct, &names.correct);
        if mode == Mode::Loss {
            return g.into_model();
        }
        let grads = backward::backward(
            &mut g,
            &self.layers,
            &fwd,
            &io.layers,
            &loss.grad_output,
            &reg,
            flavor,
        );
        let params = self.params();
        let grad_of = |p: &Param| match p.is_bias {
            false => grads.w[p.layer].clone(),
            true => grads.b[p.layer]
                .clone()
                .expect("a bias param has a gradient"),
        };
        let grad_wires: Vec<Wire> = params.iter().map(grad_of).collect();
        let Some((lr, step)) = io.lr_step.clone() else {
            for (p, grad) in params.iter().zip(&grad_wires) {
                g.output(grad, &gradient_name(&p.name));
            }
            return g.into_model();
        };
        let trainables: Vec<optimizer::Trainable> = params
            .iter()
            .zip(&grad_wires)
            .map(|(p, grad)| optimizer::Trainable {
                name: &p.name,
                shape: &p.shape,
                value: io.param(p),
                grad,
            })
            .collect();
        for (state, next) in optimizer::update(&mut g, self.optimizer, &trainables, &lr, &step) {
            g.output(&next, &next_name(&state));
        }
        if mode == Mode::StepWithGradients {
            for (p, grad) in params.iter().zip(&grad_wires) {
                g.output(grad, &gradient_name(&p.name));
            }
        }
        g.into_model()
    }

    /// Declares the graph inputs in the order the graph has always had them: x, target, lr and
    /// step (not in the loss graph), the params.
    fn declare_inputs(&self, g: &mut GraphBuilder, mode: Mode) -> Inputs {
        let names = step_inputs();
        let x = g.input(&names.x, &[None, Some(self.layers[0].n_in)]);
        let target = g.input(&names.target, &[None, Some(self.n_classes())]);
        let lr_step = matches!(mode, Mode::Step | Mode::StepWithGradients)
            .then(|| (g.input(&names.lr, &[]), g.input(&names.step, &[])));
        let mut layers: Vec<LayerParams> = Vec::new();
        for p in self.params() {
            let dims: Vec<Option<usize>> = p.shape.iter().map(|&d| Some(d)).collect();
            let wire = g.input(&p.name, &dims);
            match p.is_bias {
                false => layers.push(LayerParams { w: wire, b: None }),
                true => layers.last_mut().expect("a weight before its bias").b = Some(wire),
            }
        }
        Inputs {
            x,
            target,
            lr_step,
            layers,
        }
    }

    /// Every layer's BEAN and baseline terms, summed, with their gradients by layer.
    fn regularize(
        &self,
        g: &mut GraphBuilder,
        fwd: &Forward,
        params: &[LayerParams],
        batch: &Wire,
        flavor: Flavor,
    ) -> Regularizers {
        let zero = g.scalar(0.0);
        let mut reg = Regularizers {
            bean: zero.clone(),
            baseline: zero,
            d_w: vec![None; self.layers.len()],
            d_h: vec![None; self.layers.len()],
        };
        for (l, s) in self.layers.iter().enumerate() {
            let w = &params[l].w;
            if let Some(b) = s.bean {
                let r = bean::bean_term(g, &fwd.h[l], w, s.n_in, batch, b, flavor);
                reg.bean = g.add(&reg.bean, &r.value);
                reg.d_w[l] = Some(r.d_w);
                reg.d_h[l] = Some(r.d_h);
            }
            if let Some((kind, weight)) = s.baseline {
                let (value, d_w) = baseline::baseline_term(g, w, kind, weight);
                reg.baseline = g.add(&reg.baseline, &value);
                reg.d_w[l] = Some(match reg.d_w[l].take() {
                    Some(prev) => g.add(&prev, &d_w),
                    None => d_w,
                });
            }
        }
        reg
    }
}

/// The output holding a param's gradient (gradient graphs only).
fn gradient_name(param: &str) -> String {
    format!("grad.{param}")
}

/// The inputs of a graph being built.
struct Inputs {
    x: Wire,
    target: Wire,
    lr_step: Option<(Wire, Wire)>,
    layers: Vec<LayerParams>,
}

impl Inputs {
    fn param(&self, p: &Param) -> &Wire {
        let l = &self.layers[p.layer];
        match p.is_bias {
            false => &l.w,
            true => l.b.as_ref().expect("a bias param has an input"),
        }
    }
}

/// The regularizers' total values, and their gradients with respect to each layer's weight and
/// input activations (None where a layer has none).
pub(crate) struct Regularizers {
    bean: Wire,
    baseline: Wire,
    d_w: Vec<Option<Wire>>,
    d_h: Vec<Option<Wire>>,
}

/// A step graph with each param's gradient as an output (for gradient checks).
pub struct GradientGraph {
    pub step: StepGraph,
    /// Output names of the gradients, in [`StepSpec::params`] order.
    pub gradients: Vec<String>,
}

/// The forward, loss and regularizer part of the step (for finite differences).
pub struct LossGraph {
    pub model: Model,
    pub x: String,
    pub target: String,
    /// Input names of the params, in [`StepSpec::params`] order.
    pub params: Vec<String>,
    pub scalars: ScalarOutputs,
}

/// The step without its update: scalars and gradients (for an update made outside the graph).
pub struct GradientOnlyGraph {
    pub model: Model,
    pub x: String,
    pub target: String,
    /// Input names of the params, in [`StepSpec::params`] order.
    pub params: Vec<String>,
    /// Output names of the gradients, in the same order.
    pub gradients: Vec<String>,
    pub scalars: ScalarOutputs,
}

/// The engines a graph is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    /// Ops that give the same values in every engine (the step graphs, which tract also runs).
    Portable,
    /// Faster forms for a graph only ONNX Runtime runs (the host update's gradient graph):
    /// BEAN's sign as a quotient (exact there, see `bean::sign_by_quotient`) and bias gradients
    /// as a product with a row of ones (`backward::ColumnSums`).
    OnnxRuntime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Step,
    StepWithGradients,
    Gradients,
    Loss,
}

impl Mode {
    /// The gradient graph runs only in ONNX Runtime (the host-update path); the others anywhere.
    fn flavor(self) -> Flavor {
        match self {
            Mode::Gradients => Flavor::OnnxRuntime,
            _ => Flavor::Portable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(optimizer: Optimizer, bean: bool) -> StepSpec {
        let layer = |n_in, n_out, activation, l| LayerSpec {
            n_in,
            n_out,
            activation,
            has_bias: l == 0,
            bean: (bean && l == 1).then_some(Bean {
                variant: BeanVariant::One,
                alpha: 0.1,
                gamma: 1.0,
            }),
            baseline: None,
        };
        StepSpec {
            layers: vec![
                layer(4, 3, Activation::Relu, 0),
                layer(3, 2, Activation::None, 1),
            ],
            loss: LossKind::CrossEntropy,
            optimizer,
        }
    }

    #[test]
    fn the_step_graph_binds_every_state_tensor_to_an_input_and_an_output() {
        let adam = Optimizer::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        };
        for (optimizer, slots) in [(adam, 2), (Optimizer::Sgd { momentum: 0.9 }, 1)] {
            let g = spec(optimizer, true).step_graph();
            let inputs: Vec<&str> = g
                .model
                .graph
                .inputs
                .iter()
                .map(|v| v.name.as_str())
                .collect();
            let outputs: Vec<&str> = g
                .model
                .graph
                .outputs
                .iter()
                .map(|v| v.name.as_str())
                .collect();
            // W0, b0, W1: three params, then their slots.
            assert_eq!(g.state.len(), 3 * (1 + slots));
            assert_eq!(g.state[0].input, "W0");
            assert_eq!(g.state[1].shape, vec![3]);
            for b in &g.state {
                assert!(inputs.contains(&b.input.as_str()), "{}", b.input);
                assert!(outputs.contains(&b.output.as_str()), "{}", b.output);
            }
            let i = &g.inputs;
            for name in [&i.x, &i.target, &i.lr, &i.step] {
                assert!(inputs.contains(&name.as_str()), "{name}");
            }
            for name in g.scalars.names() {
                assert!(outputs.contains(&name), "{name}");
            }
            assert_eq!(
                inputs.len(),
                4 + g.state.len(),
                "no input the protocol does not name"
            );
        }
    }

    #[test]
    fn the_description_hashed_by_checkpoints_is_stable_and_complete() {
        let adam = Optimizer::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        };
        let a = spec(adam, true).describe();
        assert_eq!(a, spec(adam, true).describe());
        assert_ne!(a, spec(adam, false).describe(), "BEAN is part of it");
        assert_ne!(a, spec(Optimizer::Sgd { momentum: 0.9 }, true).describe());
        assert!(a.starts_with("layer 4 3 relu bias true bean -"), "{a}");
    }
}
