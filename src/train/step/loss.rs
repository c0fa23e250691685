//! The task loss over a batch of B rows and its gradient with respect to the chain's output o:
//!
//! - cross-entropy against class probabilities t (one-hot labels or a teacher's outputs):
//!   L = −(1/B) Σ_b Σ_c t_bc · log softmax(o_b)_c,  dL/do = (softmax(o) − t) / B
//! - mean squared error over B rows and C outputs:
//!   L = (1/(B·C)) Σ (o − t)²,  dL/do = 2(o − t) / (B·C)
//!
//! and the number of rows whose arg-max output is the target's arg-max.
use super::LossKind;
use crate::ir::builder::{attr_int, GraphBuilder, Wire};

/// The loss value and dL/d(output).
pub struct Loss {
    pub value: Wire,
    pub grad_output: Wire,
}

pub fn loss(
    g: &mut GraphBuilder,
    kind: LossKind,
    out: &Wire,
    target: &Wire,
    batch: &Wire,
    n_classes: usize,
) -> Loss {
    match kind {
        LossKind::CrossEntropy => {
            let logp = g.op("LogSoftmax", &[out], vec![attr_int("axis", -1)]);
            let tl = g.mul(target, &logp);
            let sum = g.reduce_sum(&tl, &[], false);
            let neg = g.op("Neg", &[&sum], vec![]);
            let value = g.div(&neg, batch);
            let p = g.op("Softmax", &[out], vec![attr_int("axis", -1)]);
            let d = g.sub(&p, target);
            let grad_output = g.div(&d, batch);
            Loss { value, grad_output }
        }
        LossKind::Mse => {
            let c = g.scalar(n_classes as f64);
            let bc = g.mul(batch, &c);
            let diff = g.sub(out, target);
            let sq = g.square(&diff);
            let sum = g.reduce_sum(&sq, &[], false);
            let value = g.div(&sum, &bc);
            let twice = g.mul_scalar(&diff, 2.0);
            let grad_output = g.div(&twice, &bc);
            Loss { value, grad_output }
        }
    }
}

/// Rows whose arg-max output equals the target's arg-max, as a scalar of the graph's type.
pub fn correct(g: &mut GraphBuilder, out: &Wire, target: &Wire) -> Wire {
    let argmax = |g: &mut GraphBuilder, t: &Wire| {
        g.op(
            "ArgMax",
            &[t],
            vec![attr_int("axis", 1), attr_int("keepdims", 0)],
        )
    };
    let a = argmax(g, out);
    let b = argmax(g, target);
    let eq = g.op("Equal", &[&a, &b], vec![]);
    let to = g.elem().code() as i64;
    let f = g.op("Cast", &[&eq], vec![attr_int("to", to)]);
    g.reduce_sum(&f, &[], false)
}
