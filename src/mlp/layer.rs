//! A dense layer of the chain: how its weight is laid out, its activation, the effective
//! weight W [n_in, n_out] and bias b [n_out] it computes with (Gemm's α and β folded in), and
//! writing new values back in the layer's own layout and storage.
use crate::error::{Error, Result};
use crate::ir::{Graph, GraphPatch};
use ndarray::{Array1, Array2};

/// How the weight initializer is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// Stored `[n_in, n_out]` (MatMul, Gemm transB=0).
    InOut,
    /// Stored `[n_out, n_in]` (Gemm transB=1, the PyTorch Linear layout).
    OutIn,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    None,
    Relu,
    LeakyRelu(f32),
    Sigmoid,
    Tanh,
    /// `tanh_approx`: Gelu with approximate="tanh".
    Gelu {
        tanh_approx: bool,
    },
}

impl Activation {
    pub fn name(&self) -> String {
        match self {
            Activation::None => "none".into(),
            Activation::Relu => "relu".into(),
            Activation::LeakyRelu(a) => format!("leaky_relu({a})"),
            Activation::Sigmoid => "sigmoid".into(),
            Activation::Tanh => "tanh".into(),
            Activation::Gelu { tanh_approx: false } => "gelu".into(),
            Activation::Gelu { tanh_approx: true } => "gelu(tanh)".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    Logits,
    Softmax,
    LogSoftmax,
}

impl Head {
    pub fn name(&self) -> &'static str {
        match self {
            Head::Logits => "logits",
            Head::Softmax => "softmax",
            Head::LogSoftmax => "log_softmax",
        }
    }
}

/// The op(s) that compute a dense layer's pre-activation.
#[derive(Debug, Clone, PartialEq)]
pub enum DenseOp {
    Gemm {
        node: usize,
        alpha: f32,
        beta: f32,
        trans_a: bool,
    },
    MatMul {
        node: usize,
        /// The bias Add, if any, and which of its inputs is the bias.
        add: Option<(usize, usize)>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct DenseLayer {
    pub op: DenseOp,
    /// The stored tensor holding the weight (an initializer, or a Constant node's value).
    pub weight: String,
    pub layout: Layout,
    /// The stored tensor holding the bias (any shape that broadcasts per output: [], [1],
    /// [n_out], [1,n_out]).
    pub bias: Option<String>,
    pub n_in: usize,
    pub n_out: usize,
    /// Tensor the layer reads (the previous layer's output, or the chain's input).
    pub input: String,
    /// Pre-activation tensor.
    pub pre_activation: String,
    pub activation: Activation,
    /// The activation node, if any.
    pub activation_node: Option<usize>,
    /// Tensor the layer produces (after its activation).
    pub output: String,
    /// Ops between this layer's output and the next layer's input that pass values through
    /// unchanged (Identity, Dropout in inference, Cast to float, Flatten, Reshape to [N, C]).
    pub pass_through: Vec<usize>,
}

impl DenseLayer {
    /// Node indices this layer spans, in graph order.
    pub fn nodes(&self) -> Vec<usize> {
        let mut v = match self.op {
            DenseOp::Gemm { node, .. } => vec![node],
            DenseOp::MatMul { node, add } => {
                let mut v = vec![node];
                v.extend(add.map(|(a, _)| a));
                v
            }
        };
        v.extend(self.activation_node);
        v.extend(&self.pass_through);
        v
    }

    pub fn op_name(&self) -> &'static str {
        match self.op {
            DenseOp::Gemm { .. } => "Gemm",
            DenseOp::MatMul { add: Some(_), .. } => "MatMul+Add",
            DenseOp::MatMul { add: None, .. } => "MatMul",
        }
    }

    pub fn params(&self) -> usize {
        self.n_in * self.n_out + if self.bias.is_some() { self.n_out } else { 0 }
    }

    /// Multiply-accumulates per sample.
    pub fn macs(&self) -> usize {
        self.n_in * self.n_out
    }

    /// The effective weight as `[n_in, n_out]` (Gemm's alpha folded in).
    pub fn weight_matrix(&self, graph: &Graph) -> Array2<f32> {
        let t = graph
            .stored(&self.weight)
            .expect("checked by MlpView::find");
        let values = t.as_f32().expect("checked by MlpView::find").to_vec();
        let stored = match self.layout {
            Layout::InOut => Array2::from_shape_vec((self.n_in, self.n_out), values),
            Layout::OutIn => Array2::from_shape_vec((self.n_out, self.n_in), values),
        }
        .expect("checked by MlpView::find");
        let w = match self.layout {
            Layout::InOut => stored,
            Layout::OutIn => stored.reversed_axes().as_standard_layout().into_owned(),
        };
        match self.op {
            DenseOp::Gemm { alpha, .. } if alpha != 1.0 => w * alpha,
            _ => w,
        }
    }

    /// The effective bias as `[n_out]` (Gemm's beta folded in; zeros without a bias).
    pub fn bias_vector(&self, graph: &Graph) -> Array1<f32> {
        let Some(name) = &self.bias else {
            return Array1::zeros(self.n_out);
        };
        let v = graph
            .stored(name)
            .and_then(|t| t.as_f32())
            .expect("checked by MlpView::find");
        let b = if v.len() == 1 {
            Array1::from_elem(self.n_out, v[0])
        } else {
            Array1::from_vec(v.to_vec())
        };
        match self.op {
            DenseOp::Gemm { beta, .. } if beta != 1.0 => b * beta,
            _ => b,
        }
    }

    /// Gemm's alpha and beta (1 for MatMul).
    fn scales(&self) -> (f32, f32) {
        match self.op {
            DenseOp::Gemm { alpha, beta, .. } => (alpha, beta),
            DenseOp::MatMul { .. } => (1.0, 1.0),
        }
    }

    /// Whether the weight can be trained and written back (Gemm alpha ≠ 0, no transposed input).
    pub fn trainable(&self) -> std::result::Result<(), String> {
        match self.op {
            DenseOp::Gemm { alpha: 0.0, .. } => Err("Gemm alpha is 0".into()),
            DenseOp::Gemm { trans_a: true, .. } => {
                Err("Gemm transA=1 is not supported for training".into())
            }
            _ => Ok(()),
        }
    }

    /// Whether the bias can be trained (present, and Gemm beta ≠ 0).
    pub fn bias_trainable(&self) -> bool {
        self.bias.is_some() && self.scales().1 != 0.0
    }

    /// Writes an effective weight `[n_in', n_out']` and bias `[n_out']` back into the layer's
    /// stored tensors at once (see [`DenseLayer::stage`]).
    pub fn write_back(
        &self,
        graph: &mut Graph,
        w: &Array2<f32>,
        b: Option<&Array1<f32>>,
    ) -> Result<()> {
        let mut patch = GraphPatch::default();
        self.stage(graph, &mut patch, w, b)?;
        patch.apply(graph)
    }

    /// Adds to `patch` the layer's stored tensors holding an effective weight `[n_in', n_out']`
    /// and bias `[n_out']`, in the layer's own layout, α and β undone, names and storage kept.
    /// Sizes may differ from the current ones (pruning); `n_in`/`n_out` are not updated here.
    /// Stored values that are not finite (also after undoing a tiny α or β) are refused, naming
    /// the tensor: written silently, they would spread NaN through every consumer of the model.
    /// α = 0 (β = 0) ignores the weight (bias): zeros of the right size are stored.
    pub fn stage(
        &self,
        graph: &Graph,
        patch: &mut GraphPatch,
        w: &Array2<f32>,
        b: Option<&Array1<f32>>,
    ) -> Result<()> {
        let (alpha, _) = self.scales();
        let (n_in, n_out) = w.dim();
        let stored = match self.layout {
            Layout::InOut => w.as_standard_layout().into_owned(),
            Layout::OutIn => w.t().as_standard_layout().into_owned(),
        };
        let stored = stored.mapv(|v| undo_scale(v, alpha));
        if stored.iter().any(|v| !v.is_finite()) {
            return Err(Error::tensor(
                &self.weight,
                "the computed weights hold NaN or infinity (not written)",
            ));
        }
        let dims = match self.layout {
            Layout::InOut => vec![n_in as i64, n_out as i64],
            Layout::OutIn => vec![n_out as i64, n_in as i64],
        };
        patch.set_f32(&self.weight, dims, stored.into_raw_vec_and_offset().0);
        if let (Some(name), Some(b)) = (&self.bias, b) {
            self.stage_bias(graph, patch, name, b)?;
        }
        Ok(())
    }

    /// The bias part of [`DenseLayer::stage`]: β undone, and the stored shape kept when it stays
    /// valid (a broadcast scalar that is no longer uniform becomes a per-output vector, still a
    /// valid Gemm C).
    fn stage_bias(
        &self,
        graph: &Graph,
        patch: &mut GraphPatch,
        name: &str,
        b: &Array1<f32>,
    ) -> Result<()> {
        let t = graph
            .stored(name)
            .ok_or_else(|| Error::Graph(format!("bias '{name}' disappeared")))?;
        let (_, beta) = self.scales();
        let values: Vec<f32> = b.iter().map(|&v| undo_scale(v, beta)).collect();
        if values.iter().any(|v| !v.is_finite()) {
            return Err(Error::tensor(
                name,
                "the computed bias holds NaN or infinity (not written)",
            ));
        }
        let n_out = b.len();
        let uniform = values.windows(2).all(|p| p[0] == p[1]);
        let broadcast_scalar = t.len() == 1 && self.n_out != 1;
        if broadcast_scalar && uniform && !values.is_empty() {
            patch.set_f32(name, t.dims.clone(), vec![values[0]]);
            return Ok(());
        }
        let dims = if broadcast_scalar {
            vec![n_out as i64]
        } else {
            match t.dims.len() {
                0 => vec![],
                1 => vec![n_out as i64],
                _ => vec![1, n_out as i64],
            }
        };
        patch.set_f32(name, dims, values);
        Ok(())
    }
}

/// The stored value whose scaling by Gemm's α (or β) gives the effective value `v`. A scale of 0
/// ignores the stored value, so 0 stands for any.
fn undo_scale(v: f32, scale: f32) -> f32 {
    match scale {
        0.0 => 0.0,
        1.0 => v,
        s => v / s,
    }
}
