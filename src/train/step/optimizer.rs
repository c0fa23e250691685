//! Optimizer updates, PyTorch's rules, for each trainable tensor p with gradient g:
//!
//! - SGD with momentum μ: buf ← μ·buf + g;  p ← p − lr·buf
//! - Adam (β₁, β₂, ε), at step t (from 1): m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²;
//!   p ← p − lr·m̂ / (√v̂ + ε) with m̂ = m / (1 − β₁ᵗ), v̂ = v / (1 − β₂ᵗ). The bias corrections
//!   are folded into two scalars so each tensor costs as few elementwise passes as possible:
//!   p ← p − (lr·√bc₂ / bc₁) · m / (√v + ε·√bc₂), bc₁ = 1 − β₁ᵗ, bc₂ = 1 − β₂ᵗ.
//!
//! Each slot (buf; m and v) is a state tensor named `<param>.<slot>` (see [`super::slot_name`]).
use super::{slot_name, Optimizer};
use crate::ir::builder::{GraphBuilder, Wire};

/// A trainable tensor as the update sees it.
pub struct Trainable<'a> {
    pub name: &'a str,
    pub shape: &'a [usize],
    pub value: &'a Wire,
    pub grad: &'a Wire,
}

/// The next value of every param, then of every slot (slot by slot), each with the name of the
/// state input it replaces: the state order of [`super::StepSpec::state_names`].
pub fn update(
    g: &mut GraphBuilder,
    optimizer: Optimizer,
    params: &[Trainable],
    lr: &Wire,
    step: &Wire,
) -> Vec<(String, Wire)> {
    match optimizer {
        Optimizer::Sgd { momentum } => sgd(g, momentum, params, lr),
        Optimizer::Adam { beta1, beta2, eps } => adam(g, (beta1, beta2, eps), params, lr, step),
    }
}

fn slot_input(g: &mut GraphBuilder, p: &Trainable, slot: &str) -> Wire {
    let dims: Vec<Option<usize>> = p.shape.iter().map(|&d| Some(d)).collect();
    g.input(&slot_name(p.name, slot), &dims)
}

fn sgd(
    g: &mut GraphBuilder,
    momentum: f64,
    params: &[Trainable],
    lr: &Wire,
) -> Vec<(String, Wire)> {
    let mut next = Vec::new();
    let mut bufs = Vec::new();
    for p in params {
        let buf_in = slot_input(g, p, "buf");
        let scaled = g.mul_scalar(&buf_in, momentum);
        let buf = g.add(&scaled, p.grad);
        let step_v = g.mul(lr, &buf);
        next.push((p.name.to_string(), g.sub(p.value, &step_v)));
        bufs.push((slot_name(p.name, "buf"), buf));
    }
    next.extend(bufs);
    next
}

fn adam(
    g: &mut GraphBuilder,
    (beta1, beta2, eps): (f64, f64, f64),
    params: &[Trainable],
    lr: &Wire,
    step: &Wire,
) -> Vec<(String, Wire)> {
    let b1 = g.scalar(beta1);
    let b2 = g.scalar(beta2);
    let one = g.scalar(1.0);
    let p1 = g.op("Pow", &[&b1, step], vec![]);
    let p2 = g.op("Pow", &[&b2, step], vec![]);
    let bc1 = g.sub(&one, &p1);
    let bc2 = g.sub(&one, &p2);
    let root_bc2 = g.op("Sqrt", &[&bc2], vec![]);
    let lr_root = g.mul(lr, &root_bc2);
    let step_size = g.div(&lr_root, &bc1);
    let eps_hat = g.mul_scalar(&root_bc2, eps);
    let (mut next, mut ms, mut vs) = (Vec::new(), Vec::new(), Vec::new());
    for p in params {
        let m_in = slot_input(g, p, "m");
        let v_in = slot_input(g, p, "v");
        let m1 = g.mul_scalar(&m_in, beta1);
        let m2 = g.mul_scalar(p.grad, 1.0 - beta1);
        let m = g.add(&m1, &m2);
        let v1 = g.mul_scalar(&v_in, beta2);
        let g2 = g.square(p.grad);
        let v2 = g.mul_scalar(&g2, 1.0 - beta2);
        let v = g.add(&v1, &v2);
        let root = g.op("Sqrt", &[&v], vec![]);
        let denom = g.add(&root, &eps_hat);
        let ratio = g.div(&m, &denom);
        let step_v = g.mul(&step_size, &ratio);
        next.push((p.name.to_string(), g.sub(p.value, &step_v)));
        ms.push((slot_name(p.name, "m"), m));
        vs.push((slot_name(p.name, "v"), v));
    }
    next.extend(ms);
    next.extend(vs);
    next
}
