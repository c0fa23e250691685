//! The backward pass by the chain rule, from dL/do (o the chain's output) to every weight and
//! bias, with the regularizers' own gradients added where they act:
//!
//! g_{L−1} = act′_{L−1}(z_{L−1}) ∘ dL/do;  for l = L−1 … 0:
//! dW_l = h_lᵀ g_l (+ ∂R/∂W_l),  db_l = Σ_b g_l,  dh_l = g_l W_lᵀ (+ ∂R/∂h_l),
//! g_{l−1} = act′_{l−1}(z_{l−1}) ∘ dh_l.
use super::forward::{Forward, LayerParams};
use super::{activation, Flavor, LayerSpec, Regularizers};
use crate::ir::builder::{attr_int, GraphBuilder, Wire};

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
    flavor: Flavor,
) -> Gradients {
    let last = layers.len() - 1;
    let mut sums = ColumnSums::new(flavor, &fwd.h[0]);
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
            b[l] = Some(sums.of(g, &g_z));
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

/// How the graph sums the rows of a [B, n] matrix (the bias gradients Σ_b g_bj).
enum ColumnSums {
    /// ReduceSum over axis 0.
    Reduce,
    /// 1ᵀG with a [1, B] row of ones, made from `x` [B, …] at the first sum (a graph without
    /// biases gets none): a different order of the same sum, about 4× faster than ReduceSum over
    /// axis 0 in ONNX Runtime (40 µs instead of 150 µs on [512, 300]).
    OnesProduct { x: Wire, ones: Option<Wire> },
}

impl ColumnSums {
    fn new(flavor: Flavor, x: &Wire) -> Self {
        match flavor {
            Flavor::Portable => ColumnSums::Reduce,
            Flavor::OnnxRuntime => ColumnSums::OnesProduct {
                x: x.clone(),
                ones: None,
            },
        }
    }

    /// Σ_b m_bj as [n].
    fn of(&mut self, g: &mut GraphBuilder, m: &Wire) -> Wire {
        match self {
            ColumnSums::Reduce => g.reduce_sum(m, &[0], false),
            ColumnSums::OnesProduct { x, ones } => {
                let ones = ones.get_or_insert_with(|| {
                    let shape = g.op("Shape", &[x], vec![attr_int("end", 1)]); // [B]
                    let one = g.ints(&[1]);
                    let row_shape = g.op("Concat", &[&one, &shape], vec![attr_int("axis", 0)]);
                    let unit = g.scalar(1.0);
                    g.op("Expand", &[&unit, &row_shape], vec![])
                });
                let row = g.matmul(ones, m); // [1, n]
                let axes = g.ints(&[0]);
                g.op("Squeeze", &[&row, &axes], vec![])
            }
        }
    }
}
