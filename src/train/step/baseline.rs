//! Baseline regularizers on a weight W [n, m] whose rows are the outgoing weights of the layer's
//! input neurons, each scaled by its weight λ:
//!
//! - L1: λ Σ |w|, gradient λ·sign(W)
//! - L2: λ Σ w², gradient 2λW
//! - group lasso: λ Σ_i ‖W_i‖ with ‖W_i‖ = √(Σ_j w_ij² + ε), gradient λ W_i / ‖W_i‖ (ε keeps the
//!   gradient defined at a zero row)
use super::Baseline;
use crate::ir::builder::{GraphBuilder, Wire};

/// Group lasso takes sqrt(Σ w² + this) per row so its gradient exists at zero.
pub const GROUP_LASSO_EPS: f64 = 1e-12;

/// The regularizer's value and its gradient with respect to `w`.
pub fn baseline_term(g: &mut GraphBuilder, w: &Wire, kind: Baseline, weight: f64) -> (Wire, Wire) {
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
