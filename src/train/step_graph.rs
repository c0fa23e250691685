//! The training step as one ONNX graph: forward over the dense chain, loss, BEAN and baseline
//! regularizers, explicit backward, and the optimizer update (DESIGN.md §3–4).
//!
//! Inputs: `x` [B, n_0], `target` [B, C] (class probabilities: one-hot labels or a teacher's
//! outputs; or regression targets for MSE), `lr` and `step` (scalars; `step` counts from 1), then
//! the state: every trainable tensor and the optimizer's slots, in [`StepSpec::state_names`] order.
//! Outputs: `loss_task`, `reg_bean`, `reg_base`, `correct` (scalars), then the updated state in the
//! same order (`<name>.next`). Weights are the effective `[n_in, n_out]` matrices (see
//! `mlp::DenseLayer::weight_matrix`); layout conversion happens outside the graph.
use super::builder::{attr_int, GraphBuilder};
use crate::ir::Model;
use crate::mlp::Activation;
use crate::tensor::DataType;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BeanVariant {
    /// M = ÂÂᵀ (shared downstream neighbours); evaluated in O(B·n·m) without any n×n matrix.
    One,
    /// M = (ÂÂᵀ)∘(ÂÂᵀ) (4-cycles); needs the n×n matrices.
    Two,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bean {
    pub variant: BeanVariant,
    pub alpha: f64,
    /// Â = |tanh(γW)|.
    pub gamma: f64,
}

/// Baseline regularizers on each input neuron's outgoing weights (the rows of W).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Baseline {
    L1,
    L2,
    GroupLasso,
}

/// Group lasso takes sqrt(Σ w² + this) per row so its gradient exists at zero.
pub const GROUP_LASSO_EPS: f64 = 1e-12;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LossKind {
    /// Softmax cross-entropy against class probabilities (one-hot labels or a teacher).
    CrossEntropy,
    /// Mean squared error of the chain's output.
    Mse,
}

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

pub const OUTPUT_NAMES: [&str; 4] = ["loss_task", "reg_bean", "reg_base", "correct"];

impl StepSpec {
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
                    .map(|p| (format!("{}.{slot}", p.name), p.shape.clone())),
            );
        }
        v
    }

    pub fn n_classes(&self) -> usize {
        self.layers.last().map(|l| l.n_out).unwrap_or(0)
    }

    /// The step graph in f32.
    pub fn step_graph(&self) -> Model {
        self.build(DataType::Float, Mode::Step)
    }

    /// The same graph in `elem` precision with the gradients as extra outputs (`grad.<param>`).
    pub fn step_graph_with_gradients(&self, elem: DataType) -> Model {
        self.build(elem, Mode::StepWithGradients)
    }

    /// Forward, loss and regularizers only: outputs `loss_task`, `reg_bean`, `reg_base`, `correct`.
    pub fn loss_graph(&self, elem: DataType) -> Model {
        self.build(elem, Mode::Loss)
    }

    fn build(&self, elem: DataType, mode: Mode) -> Model {
        let mut g = GraphBuilder::new("bean_step", elem);
        let n0 = self.layers[0].n_in;
        let x = g.input("x", &[None, Some(n0)]);
        let target = g.input("target", &[None, Some(self.n_classes())]);
        let (lr, step) = if mode == Mode::Loss {
            (String::new(), String::new())
        } else {
            (g.input("lr", &[]), g.input("step", &[]))
        };
        let params = self.params();
        for p in &params {
            let dims: Vec<Option<usize>> = p.shape.iter().map(|&d| Some(d)).collect();
            g.input(&p.name, &dims);
        }
        let batch = g.batch_size(&x);

        // Forward: h[0] = x, z[l] = h[l]·W + b, h[l+1] = act(z[l]).
        let mut h = vec![x.clone()];
        let mut z = Vec::new();
        for (l, s) in self.layers.iter().enumerate() {
            let mut zl = g.matmul(&h[l], &format!("W{l}"));
            if s.has_bias {
                zl = g.add(&zl, &format!("b{l}"));
            }
            let hl = activation(&mut g, s.activation, &zl);
            z.push(zl);
            h.push(hl);
        }
        let out = h.last().expect("one layer at least").clone();

        // Loss and its gradient with respect to the chain's output.
        let (loss, grad_out) = match self.loss {
            LossKind::CrossEntropy => {
                let logp = g.op("LogSoftmax", &[&out], vec![attr_int("axis", -1)]);
                let tl = g.mul(&target, &logp);
                let sum = g.reduce_sum(&tl, &[], false);
                let neg = g.op("Neg", &[&sum], vec![]);
                let loss = g.div(&neg, &batch);
                let p = g.op("Softmax", &[&out], vec![attr_int("axis", -1)]);
                let d = g.sub(&p, &target);
                (loss, g.div(&d, &batch))
            }
            LossKind::Mse => {
                let c = g.scalar(self.n_classes() as f64);
                let bc = g.mul(&batch, &c);
                let diff = g.sub(&out, &target);
                let sq = g.square(&diff);
                let sum = g.reduce_sum(&sq, &[], false);
                let loss = g.div(&sum, &bc);
                let twice = g.mul_scalar(&diff, 2.0);
                (loss, g.div(&twice, &bc))
            }
        };
        let correct = {
            let a = g.op(
                "ArgMax",
                &[&out],
                vec![attr_int("axis", 1), attr_int("keepdims", 0)],
            );
            let b = g.op(
                "ArgMax",
                &[&target],
                vec![attr_int("axis", 1), attr_int("keepdims", 0)],
            );
            let eq = g.op("Equal", &[&a, &b], vec![]);
            let f = g.op("Cast", &[&eq], vec![attr_int("to", elem.code() as i64)]);
            g.reduce_sum(&f, &[], false)
        };

        // Regularizers: values, and gradients for W[l] and for h[l] (BEAN is not detached).
        let zero = g.scalar(0.0);
        let mut reg_bean = zero.clone();
        let mut reg_base = zero.clone();
        let mut d_w_reg: Vec<Option<String>> = vec![None; self.layers.len()];
        let mut d_h_reg: Vec<Option<String>> = vec![None; self.layers.len()];
        for (l, s) in self.layers.iter().enumerate() {
            let w = format!("W{l}");
            if let Some(bean) = s.bean {
                let r = bean_term(&mut g, &h[l], &w, s.n_in, &batch, bean);
                reg_bean = g.add(&reg_bean, &r.value);
                d_w_reg[l] = Some(r.d_w);
                d_h_reg[l] = Some(r.d_h);
            }
            if let Some((kind, weight)) = s.baseline {
                let (value, d_w) = baseline_term(&mut g, &w, kind, weight);
                reg_base = g.add(&reg_base, &value);
                d_w_reg[l] = Some(match d_w_reg[l].take() {
                    Some(prev) => g.add(&prev, &d_w),
                    None => d_w,
                });
            }
        }
        for (value, name) in [
            (&loss, "loss_task"),
            (&reg_bean, "reg_bean"),
            (&reg_base, "reg_base"),
            (&correct, "correct"),
        ] {
            g.output(value, name);
        }
        if mode == Mode::Loss {
            return g.into_model();
        }

        // Backward.
        let last = self.layers.len() - 1;
        let mut g_z = activation_grad(
            &mut g,
            self.layers[last].activation,
            &z[last],
            &h[last + 1],
            &grad_out,
        );
        let mut grads: Vec<(String, String)> = Vec::new();
        for l in (0..self.layers.len()).rev() {
            let w = format!("W{l}");
            let mut d_w = g.gemm(&h[l], &g_z, true, false);
            if let Some(r) = &d_w_reg[l] {
                d_w = g.add(&d_w, r);
            }
            grads.push((w.clone(), d_w));
            if self.layers[l].has_bias {
                let d_b = g.reduce_sum(&g_z, &[0], false);
                grads.push((format!("b{l}"), d_b));
            }
            if l == 0 {
                break;
            }
            let mut d_h = g.gemm(&g_z, &w, false, true);
            if let Some(r) = &d_h_reg[l] {
                d_h = g.add(&d_h, r);
            }
            g_z = activation_grad(
                &mut g,
                self.layers[l - 1].activation,
                &z[l - 1],
                &h[l],
                &d_h,
            );
        }
        let grad_of = |name: &str| -> String {
            grads
                .iter()
                .find(|(p, _)| p == name)
                .map(|(_, d)| d.clone())
                .expect("every param has a gradient")
        };

        // Optimizer.
        let mut next: Vec<(String, String)> = Vec::new(); // (state name, new value)
        match self.optimizer {
            Optimizer::Sgd { momentum } => {
                let mut bufs = Vec::new();
                for p in &params {
                    let buf_in = g.input(
                        &format!("{}.buf", p.name),
                        &p.shape.iter().map(|&d| Some(d)).collect::<Vec<_>>(),
                    );
                    let scaled = g.mul_scalar(&buf_in, momentum);
                    let buf = g.add(&scaled, &grad_of(&p.name));
                    let step_v = g.mul(&lr, &buf);
                    next.push((p.name.clone(), g.sub(&p.name, &step_v)));
                    bufs.push((format!("{}.buf", p.name), buf));
                }
                next.extend(bufs);
            }
            Optimizer::Adam { beta1, beta2, eps } => {
                // PyTorch's Adam with the bias corrections folded into two scalars, so each
                // parameter costs as few elementwise passes as possible:
                // p ← p − (lr·√bc2/bc1)·m / (√v + eps·√bc2)
                let b1 = g.scalar(beta1);
                let b2 = g.scalar(beta2);
                let one = g.scalar(1.0);
                let p1 = g.op("Pow", &[&b1, &step], vec![]);
                let p2 = g.op("Pow", &[&b2, &step], vec![]);
                let bc1 = g.sub(&one, &p1);
                let bc2 = g.sub(&one, &p2);
                let root_bc2 = g.op("Sqrt", &[&bc2], vec![]);
                let lr_root = g.mul(&lr, &root_bc2);
                let step_size = g.div(&lr_root, &bc1);
                let eps_hat = g.mul_scalar(&root_bc2, eps);
                let (mut ms, mut vs) = (Vec::new(), Vec::new());
                for p in &params {
                    let dims: Vec<Option<usize>> = p.shape.iter().map(|&d| Some(d)).collect();
                    let m_in = g.input(&format!("{}.m", p.name), &dims);
                    let v_in = g.input(&format!("{}.v", p.name), &dims);
                    let grad = grad_of(&p.name);
                    let m1 = g.mul_scalar(&m_in, beta1);
                    let m2 = g.mul_scalar(&grad, 1.0 - beta1);
                    let m = g.add(&m1, &m2);
                    let v1 = g.mul_scalar(&v_in, beta2);
                    let g2 = g.square(&grad);
                    let v2 = g.mul_scalar(&g2, 1.0 - beta2);
                    let v = g.add(&v1, &v2);
                    let root = g.op("Sqrt", &[&v], vec![]);
                    let denom = g.add(&root, &eps_hat);
                    let ratio = g.div(&m, &denom);
                    let step_v = g.mul(&step_size, &ratio);
                    next.push((p.name.clone(), g.sub(&p.name, &step_v)));
                    ms.push((format!("{}.m", p.name), m));
                    vs.push((format!("{}.v", p.name), v));
                }
                next.extend(ms);
                next.extend(vs);
            }
        }
        for (name, value) in &next {
            g.output(value, &format!("{name}.next"));
        }
        if mode == Mode::StepWithGradients {
            for p in &params {
                g.output(&grad_of(&p.name), &format!("grad.{}", p.name));
            }
        }
        g.into_model()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Step,
    StepWithGradients,
    Loss,
}

fn activation(g: &mut GraphBuilder, act: Activation, z: &str) -> String {
    match act {
        Activation::None => z.to_string(),
        Activation::Relu => g.op("Relu", &[z], vec![]),
        // Written out (tract has no f64 LeakyRelu): z if z > 0, else a·z.
        Activation::LeakyRelu(a) => {
            let zero = g.scalar(0.0);
            let pos = g.op("Greater", &[z, &zero], vec![]);
            let az = g.mul_scalar(z, a as f64);
            g.op("Where", &[&pos, z, &az], vec![])
        }
        // tract has no f64 Sigmoid: f64 graphs (gradient checks) spell it out as 1/(1+e^−z).
        Activation::Sigmoid if g.elem == DataType::Double => {
            let neg = g.op("Neg", &[z], vec![]);
            let e = g.op("Exp", &[&neg], vec![]);
            let one = g.scalar(1.0);
            let d = g.add(&one, &e);
            g.div(&one, &d)
        }
        Activation::Sigmoid => g.op("Sigmoid", &[z], vec![]),
        Activation::Tanh => g.op("Tanh", &[z], vec![]),
        // Opset 17 has no Gelu op: written out.
        Activation::Gelu { tanh_approx: false } => {
            let u = g.mul_scalar(z, std::f64::consts::FRAC_1_SQRT_2);
            let e = g.op("Erf", &[&u], vec![]);
            let one = g.scalar(1.0);
            let t = g.add(&one, &e);
            let zt = g.mul(z, &t);
            g.mul_scalar(&zt, 0.5)
        }
        Activation::Gelu { tanh_approx: true } => {
            let inner = gelu_tanh_inner(g, z);
            let t = g.op("Tanh", &[&inner], vec![]);
            let one = g.scalar(1.0);
            let t1 = g.add(&one, &t);
            let zt = g.mul(z, &t1);
            g.mul_scalar(&zt, 0.5)
        }
    }
}

const GELU_K: f64 = 0.044715;

/// √(2/π)·(z + 0.044715·z³)
fn gelu_tanh_inner(g: &mut GraphBuilder, z: &str) -> String {
    let z2 = g.square(z);
    let z3 = g.mul(&z2, z);
    let k = g.mul_scalar(&z3, GELU_K);
    let s = g.add(z, &k);
    g.mul_scalar(&s, (2.0 / std::f64::consts::PI).sqrt())
}

/// dL/dz from dL/dh for h = act(z).
fn activation_grad(g: &mut GraphBuilder, act: Activation, z: &str, h: &str, d_h: &str) -> String {
    match act {
        Activation::None => d_h.to_string(),
        Activation::Relu | Activation::LeakyRelu(_) => {
            let zero = g.scalar(0.0);
            let pos = g.op("Greater", &[z, &zero], vec![]);
            let slope = match act {
                Activation::LeakyRelu(a) => g.scalar(a as f64),
                _ => zero.clone(),
            };
            let one = g.scalar(1.0);
            let k = g.op("Where", &[&pos, &one, &slope], vec![]);
            g.mul(d_h, &k)
        }
        Activation::Sigmoid => {
            let one = g.scalar(1.0);
            let om = g.sub(&one, h);
            let k = g.mul(h, &om);
            g.mul(d_h, &k)
        }
        Activation::Tanh => {
            let one = g.scalar(1.0);
            let h2 = g.square(h);
            let k = g.sub(&one, &h2);
            g.mul(d_h, &k)
        }
        Activation::Gelu { tanh_approx: false } => {
            // Φ(z) + z·φ(z)
            let u = g.mul_scalar(z, std::f64::consts::FRAC_1_SQRT_2);
            let e = g.op("Erf", &[&u], vec![]);
            let one = g.scalar(1.0);
            let t = g.add(&one, &e);
            let cdf = g.mul_scalar(&t, 0.5);
            let z2 = g.square(z);
            let ez = g.mul_scalar(&z2, -0.5);
            let ex = g.op("Exp", &[&ez], vec![]);
            let pdf = g.mul_scalar(&ex, 1.0 / (2.0 * std::f64::consts::PI).sqrt());
            let zp = g.mul(z, &pdf);
            let k = g.add(&cdf, &zp);
            g.mul(d_h, &k)
        }
        Activation::Gelu { tanh_approx: true } => {
            // 0.5(1+t) + 0.5·z·(1−t²)·√(2/π)·(1 + 3·0.044715·z²)
            let inner = gelu_tanh_inner(g, z);
            let t = g.op("Tanh", &[&inner], vec![]);
            let one = g.scalar(1.0);
            let t1 = g.add(&one, &t);
            let a = g.mul_scalar(&t1, 0.5);
            let t2 = g.square(&t);
            let sech2 = g.sub(&one, &t2);
            let z2 = g.square(z);
            let poly = g.mul_scalar(&z2, 3.0 * GELU_K);
            let poly1 = g.add(&one, &poly);
            let zs = g.mul(z, &sech2);
            let zsp = g.mul(&zs, &poly1);
            let b = g.mul_scalar(&zsp, 0.5 * (2.0 / std::f64::consts::PI).sqrt());
            let k = g.add(&a, &b);
            g.mul(d_h, &k)
        }
    }
}

struct RegTerm {
    value: String,
    d_w: String,
    d_h: String,
}

/// BEAN on a layer with input activations `h` [B, n] and weight `w` [n, m] (DESIGN.md §3):
/// R = α/n² Σ_ij M_ij D_ij, D_ij = mean_b (h_bi − h_bj)², Â = |tanh(γW)|.
fn bean_term(g: &mut GraphBuilder, h: &str, w: &str, n: usize, batch: &str, bean: Bean) -> RegTerm {
    let n2 = (n * n) as f64;
    let gw = g.mul_scalar(w, bean.gamma);
    let t = g.op("Tanh", &[&gw], vec![]);
    let a = g.op("Abs", &[&t], vec![]);
    let h2 = g.square(h);
    let s = g.reduce_mean(&h2, &[0], false); // s_i = mean_b h_bi², [n]
    let axis1 = g.ints(&[1]);
    let s_col = g.op("Unsqueeze", &[&s, &axis1], vec![]); // [n, 1]
    let (value, d_a, d_h) = match bean.variant {
        BeanVariant::One => {
            // Σ M D = 2·sᵀÂ(Âᵀ1) − (2/B)‖HÂ‖²
            let colsum = g.reduce_sum(&a, &[0], true); // Âᵀ1 as [1, m]
            let ac = g.mul(&a, &colsum);
            let c = g.reduce_sum(&ac, &[1], false); // M1 = Â(Âᵀ1), [n]
            let sc_v = g.mul(&s, &c);
            let sc = g.reduce_sum(&sc_v, &[], false);
            let ha = g.matmul(h, &a); // [B, m]
            let ha2 = g.square(&ha);
            let q = g.reduce_sum(&ha2, &[], false);
            let qb = g.div(&q, batch);
            let diff = g.sub(&sc, &qb);
            let value = g.mul_scalar(&diff, 2.0 * bean.alpha / n2);
            // ∂R/∂H = 4α/(n²B)·(H·diag(M1) − HÂÂᵀ)
            let hc = g.mul(h, &c);
            let haa = g.gemm(&ha, &a, false, true);
            let lap = g.sub(&hc, &haa);
            let lap_b = g.div(&lap, batch);
            let d_h = g.mul_scalar(&lap_b, 4.0 * bean.alpha / n2);
            // ∂R/∂Â = 2α/n²·DÂ, DÂ = s(Âᵀ1)ᵀ + 1(Âᵀs)ᵀ − (2/B)Hᵀ(HÂ)
            let outer = g.mul(&s_col, &colsum);
            let as_ = g.mul(&a, &s_col);
            let ats = g.reduce_sum(&as_, &[0], true); // (Âᵀs)ᵀ as [1, m]
            let hha = g.gemm(h, &ha, true, false);
            let hha_b = g.div(&hha, batch);
            let hha_2 = g.mul_scalar(&hha_b, 2.0);
            let sum1 = g.add(&outer, &ats);
            let da = g.sub(&sum1, &hha_2);
            let d_a = g.mul_scalar(&da, 2.0 * bean.alpha / n2);
            (value, d_a, d_h)
        }
        BeanVariant::Two => {
            let c = g.gemm(&a, &a, false, true); // C = ÂÂᵀ, [n, n]
            let m = g.square(&c);
            let gram = g.gemm(h, h, true, false);
            let gram_b = g.div(&gram, batch);
            let axis0 = g.ints(&[0]);
            let s_row = g.op("Unsqueeze", &[&s, &axis0], vec![]); // [1, n]
            let ss = g.add(&s_col, &s_row);
            let g2 = g.mul_scalar(&gram_b, 2.0);
            let d = g.sub(&ss, &g2); // D = s1ᵀ + 1sᵀ − 2G
            let md = g.mul(&m, &d);
            let sum = g.reduce_sum(&md, &[], false);
            let value = g.mul_scalar(&sum, bean.alpha / n2);
            // ∂R/∂H = 4α/(n²B)·(H·diag(M1) − HM)
            let m1 = g.reduce_sum(&m, &[1], false);
            let hm1 = g.mul(h, &m1);
            let hm = g.matmul(h, &m);
            let lap = g.sub(&hm1, &hm);
            let lap_b = g.div(&lap, batch);
            let d_h = g.mul_scalar(&lap_b, 4.0 * bean.alpha / n2);
            // ∂R/∂Â = 4α/n²·(C∘D)Â
            let cd = g.mul(&c, &d);
            let cda = g.matmul(&cd, &a);
            let d_a = g.mul_scalar(&cda, 4.0 * bean.alpha / n2);
            (value, d_a, d_h)
        }
    };
    // ∂Â/∂W = γ·sign(W)·(1 − tanh²(γW))
    let sign = g.op("Sign", &[&t], vec![]);
    let t2 = g.square(&t);
    let one = g.scalar(1.0);
    let sech2 = g.sub(&one, &t2);
    let k = g.mul(&sign, &sech2);
    let k = g.mul_scalar(&k, bean.gamma);
    let d_w = g.mul(&d_a, &k);
    RegTerm { value, d_w, d_h }
}

/// Baseline regularizer value and gradient for weight `w` [n, m], rows = outgoing weights.
fn baseline_term(g: &mut GraphBuilder, w: &str, kind: Baseline, weight: f64) -> (String, String) {
    match kind {
        Baseline::L1 => {
            let abs = g.op("Abs", &[w], vec![]);
            let sum = g.reduce_sum(&abs, &[], false);
            let sign = g.op("Sign", &[w], vec![]);
            (g.mul_scalar(&sum, weight), g.mul_scalar(&sign, weight))
        }
        Baseline::L2 => {
            let sq = g.square(w);
            let sum = g.reduce_sum(&sq, &[], false);
            (g.mul_scalar(&sum, weight), g.mul_scalar(w, 2.0 * weight))
        }
        Baseline::GroupLasso => {
            let sq = g.square(w);
            let rows = g.reduce_sum(&sq, &[1], true);
            let eps = g.scalar(GROUP_LASSO_EPS);
            let rows_e = g.add(&rows, &eps);
            let norms = g.op("Sqrt", &[&rows_e], vec![]);
            let sum = g.reduce_sum(&norms, &[], false);
            let unit = g.div(w, &norms);
            (g.mul_scalar(&sum, weight), g.mul_scalar(&unit, weight))
        }
    }
}
