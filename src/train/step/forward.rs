//! The forward pass over the dense chain: h₀ = x, z_l = h_l·W_l (+ b_l), h_{l+1} = act_l(z_l).
//! Weights are the effective `[n_in, n_out]` matrices (see `mlp::DenseLayer::weight_matrix`).
use super::{activation, LayerSpec};
use crate::ir::builder::{GraphBuilder, Wire};

/// A layer's trainable tensors in the graph.
pub struct LayerParams {
    pub w: Wire,
    pub b: Option<Wire>,
}

/// Every pre-activation z_l and activation h_l (h₀ = x; the last h is the chain's output).
pub struct Forward {
    pub z: Vec<Wire>,
    pub h: Vec<Wire>,
}

impl Forward {
    pub fn output(&self) -> &Wire {
        self.h.last().expect("h₀ at least")
    }
}

pub fn forward(
    g: &mut GraphBuilder,
    layers: &[LayerSpec],
    x: &Wire,
    params: &[LayerParams],
) -> Forward {
    let mut h = vec![x.clone()];
    let mut z = Vec::new();
    for (l, (s, p)) in layers.iter().zip(params).enumerate() {
        let mut zl = g.matmul(&h[l], &p.w);
        if let Some(b) = &p.b {
            zl = g.add(&zl, b);
        }
        let hl = activation::forward(g, s.activation, &zl);
        z.push(zl);
        h.push(hl);
    }
    Forward { z, h }
}
