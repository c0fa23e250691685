//! The backward pass by the chain rule, from dL/do (o the chain's output) to every weight and
//! bias, with the regularizers' own gradients added where they act:
//!
//! g_{L−1} = act′_{L−1}(z_{L−1}) ∘ dL/do;  for l = L−1 … 0:
//! dW_l = h_lᵀ g_l (+ ∂R/∂W_l),  db_l = Σ_b g_l,  dh_l = g_l W_lᵀ (+ ∂R/∂h_l),
//! g_{l−1} = act′_{l−1}(z_{l−1}) ∘ dh_l.
use super::forward::{Forward, LayerParams};
use super::{activation, LayerSpec, Regularizers};
use crate::ir::builder::{GraphBuilder, Wire};

/// The gradient of each layer's weight and bias.
pub struct Gradients {
    pub w: Vec<Wire>,
    pub b: Vec<Option<Wire>>,
}

pub fn backward(
    g: &mut GraphBuilder,
    layers: &[LayerSpec],
    fwd: &Forward,
    params: &[LayerParams],
    grad_output: &Wire,
    reg: &Regularizers,
) -> Gradients {
    let last = layers.len() - 1;
    let mut w: Vec<Option<Wire>> = vec![None; layers.len()];
    let mut b: Vec<Option<Wire>> = vec![None; layers.len()];
    let mut g_z = activation::backward(
        g,
        layers[last].activation,
        &fwd.z[last],
        &fwd.h[last + 1],
        grad_output,
    );
    for l in (0..layers.len()).rev() {
        let mut d_w = g.gemm(&fwd.h[l], &g_z, true, false);
        if let Some(r) = &reg.d_w[l] {
            d_w = g.add(&d_w, r);
        }
        w[l] = Some(d_w);
        if layers[l].has_bias {
            b[l] = Some(g.reduce_sum(&g_z, &[0], false));
        }
        if l == 0 {
            break;
        }
        let mut d_h = g.gemm(&g_z, &params[l].w, false, true);
        if let Some(r) = &reg.d_h[l] {
            d_h = g.add(&d_h, r);
        }
        g_z = activation::backward(g, layers[l - 1].activation, &fwd.z[l - 1], &fwd.h[l], &d_h);
    }
    Gradients {
        w: w.into_iter()
            .map(|d| d.expect("every layer visited"))
            .collect(),
        b,
    }
}
