//! MlpView: the chain of dense layers inside a graph, whatever exporter wrote it.
//!
//! A dense layer is `Gemm(x, W[, b])` (any legal transA/transB/alpha/beta) or `MatMul(x, W)`
//! optionally followed by `Add` with a per-output bias on either side, then optionally one
//! activation. Layers chain when one's output feeds only the next. Everything else in the graph
//! (preludes, a convolutional backbone, exporter tails) is left alone.
use crate::error::{Error, Result};
use crate::ir::{AttrValue, Graph, Node};
use crate::tensor::DataType;
use ndarray::{Array1, Array2};
use std::collections::HashMap;

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
    /// Initializer holding the weight.
    pub weight: String,
    pub layout: Layout,
    /// Initializer holding the bias (any shape that broadcasts per output: [], [1], [n_out], [1,n_out]).
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
            .initializer(&self.weight)
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
            .initializer(name)
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
    /// initializers in their own layout, undoing alpha/beta, keeping names and storage. Sizes may
    /// differ from the current ones (pruning); the layer's `n_in`/`n_out` are not updated here.
    pub fn write_back(
        &self,
        graph: &mut Graph,
        w: &Array2<f32>,
        b: Option<&Array1<f32>>,
    ) -> Result<()> {
        let (alpha, beta) = self.scales();
        // A computed value that is not finite would be written silently and spread NaN through
        // every consumer of the model: refuse it, naming the tensor.
        if w.iter().any(|v| !v.is_finite()) {
            return Err(Error::tensor(
                &self.weight,
                "the computed weights hold NaN or infinity (not written)",
            ));
        }
        if let (Some(name), Some(b)) = (&self.bias, b) {
            if b.iter().any(|v| !v.is_finite()) {
                return Err(Error::tensor(
                    name,
                    "the computed bias holds NaN or infinity (not written)",
                ));
            }
        }
        let (n_in, n_out) = w.dim();
        let stored = match self.layout {
            Layout::InOut => w.as_standard_layout().into_owned(),
            Layout::OutIn => w.t().as_standard_layout().into_owned(),
        };
        let stored = if alpha != 1.0 { stored / alpha } else { stored };
        let dims = match self.layout {
            Layout::InOut => vec![n_in as i64, n_out as i64],
            Layout::OutIn => vec![n_out as i64, n_in as i64],
        };
        let t = graph
            .initializer_mut(&self.weight)
            .ok_or_else(|| Error::Graph(format!("weight '{}' disappeared", self.weight)))?;
        t.set_f32(dims, stored.into_raw_vec_and_offset().0);
        if let (Some(name), Some(b)) = (&self.bias, b) {
            let t = graph
                .initializer_mut(name)
                .ok_or_else(|| Error::Graph(format!("bias '{name}' disappeared")))?;
            let values: Vec<f32> = b
                .iter()
                // beta = 0 ignores the bias: any values of the right size will do, zeros here.
                .map(|v| {
                    if beta == 0.0 {
                        0.0
                    } else if beta != 1.0 {
                        v / beta
                    } else {
                        *v
                    }
                })
                .collect();
            let uniform = values.windows(2).all(|p| p[0] == p[1]);
            // Keep the bias's shape when it stays valid; a broadcast scalar that is no longer
            // uniform becomes a per-output vector (still a valid Gemm C).
            let broadcast_scalar = t.len() == 1 && self.n_out != 1;
            let dims = if broadcast_scalar && uniform && !values.is_empty() {
                let d = t.dims.clone();
                t.set_f32(d, vec![values[0]]);
                return Ok(());
            } else if broadcast_scalar {
                vec![n_out as i64]
            } else {
                match t.dims.len() {
                    0 => vec![],
                    1 => vec![n_out as i64],
                    _ => vec![1, n_out as i64],
                }
            };
            t.set_f32(dims, values);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct MlpView {
    pub layers: Vec<DenseLayer>,
    pub head: Head,
    pub head_node: Option<usize>,
    /// The class-score tensor: the head's output, or the last layer's output for logits.
    pub scores: String,
    /// Dense-looking nodes that were not taken into the chain, with the reason.
    pub skipped: Vec<String>,
    /// Whether the chain's scores are the model's final dense computation.
    pub end: ChainEnd,
}

/// Where the dense chain ends, relative to the model's output.
#[derive(Debug, Clone, PartialEq)]
pub enum ChainEnd {
    /// Nothing with weights follows the chain: its scores are the model's class scores (an
    /// exporter tail such as ArgMax, ZipMap or Identity may follow).
    Output,
    /// More weighted ops follow the chain: training or pruning it alone would treat its last
    /// hidden layer as the classifier. `node` is the first one.
    Cut {
        /// The chain's last node.
        last: String,
        /// The first weighted node downstream, its op, and why it is not in the chain.
        node: String,
        op: String,
        reason: String,
    },
}

/// Ops that compute with weights: after the chain, they mean the chain was cut short.
const WEIGHTED_OPS: [&str; 6] = [
    "Gemm",
    "MatMul",
    "Conv",
    "ConvTranspose",
    "Einsum",
    "MatMulInteger",
];

impl MlpView {
    /// Finds the longest chain of dense layers. Errors name the node for structure that is
    /// invalid (a Gemm attribute out of range), and list why each candidate was rejected when no
    /// chain is found.
    pub fn find(graph: &Graph) -> Result<MlpView> {
        let consumers = graph.consumers();
        let mut skipped = Vec::new();
        let mut layers = Vec::new();
        for (i, node) in graph.nodes.iter().enumerate() {
            match match_dense(graph, &consumers, i, node)? {
                Candidate::Layer(l) => layers.push(l),
                Candidate::Skipped(reason) => skipped.push(format!(
                    "node '{}' ({}): {reason}",
                    node.label(),
                    node.op_type
                )),
                Candidate::NotDense => {}
            }
        }
        if layers.is_empty() {
            let why = if skipped.is_empty() {
                "the graph has no Gemm or MatMul node with a constant weight".to_string()
            } else {
                skipped.join("; ")
            };
            return Err(Error::NoDenseChain(why));
        }

        // Link layers into chains: b follows a when a's output feeds only b.
        let by_input: HashMap<&str, usize> = layers
            .iter()
            .enumerate()
            .map(|(i, l)| (l.input.as_str(), i))
            .collect();
        let mut next: Vec<Option<usize>> = vec![None; layers.len()];
        let mut has_prev = vec![false; layers.len()];
        for (a, la) in layers.iter().enumerate() {
            let Some(&b) = by_input.get(la.output.as_str()) else {
                continue;
            };
            let sole_reader = consumers.get(la.output.as_str()).map(Vec::len) == Some(1);
            let lb = &layers[b];
            let b_transposed = matches!(lb.op, DenseOp::Gemm { trans_a: true, .. });
            if sole_reader && !graph.is_graph_output(&la.output) && !b_transposed {
                if lb.n_in != la.n_out {
                    return Err(Error::node(
                        &graph.nodes[lb.nodes()[0]],
                        format!(
                            "reads {} features but the layer before it produces {}",
                            lb.n_in, la.n_out
                        ),
                    ));
                }
                next[a] = Some(b);
                has_prev[b] = true;
            }
        }
        let mut best: Vec<usize> = Vec::new();
        for start in (0..layers.len()).filter(|&i| !has_prev[i]) {
            let mut chain = vec![start];
            while let Some(n) = next[*chain.last().expect("non-empty")] {
                chain.push(n);
            }
            if chain.len() > best.len() {
                best = chain;
            }
        }
        let chain: Vec<DenseLayer> = best.iter().map(|&i| layers[i].clone()).collect();
        let last = chain.last().expect("at least one layer");
        let (head, head_node, scores) = find_head(graph, &consumers, last);
        let last_node = head_node.unwrap_or(*last.nodes().last().expect("a node"));
        let end = chain_end(graph, &consumers, &scores, last_node, &skipped);
        Ok(MlpView {
            layers: chain,
            head,
            head_node,
            scores,
            skipped,
            end,
        })
    }

    /// Refuses a chain that does not end at the model's output (see [`ChainEnd::Cut`]).
    pub fn require_whole(&self) -> Result<()> {
        match &self.end {
            ChainEnd::Output => Ok(()),
            ChainEnd::Cut {
                last,
                node,
                op,
                reason,
            } => Err(Error::Node {
                node: node.clone(),
                op: op.clone(),
                reason: format!(
                    "the dense chain stops at node '{last}' before this node ({reason}); using the \
                     chain alone would treat a hidden layer as the classifier, so this model is refused"
                ),
            }),
        }
    }

    /// Node indices of the whole chain (layers and head).
    pub fn nodes(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self.layers.iter().flat_map(|l| l.nodes()).collect();
        v.extend(self.head_node);
        v
    }

    pub fn input(&self) -> &str {
        &self.layers[0].input
    }

    pub fn n_classes(&self) -> usize {
        self.layers.last().map(|l| l.n_out).unwrap_or(0)
    }
}

enum Candidate {
    Layer(DenseLayer),
    Skipped(String),
    NotDense,
}

/// A 2-D f32 initializer used by this node alone: its dims.
fn constant_matrix(
    graph: &Graph,
    consumers: &HashMap<&str, Vec<usize>>,
    name: &str,
) -> std::result::Result<(usize, usize), String> {
    let t = graph
        .initializer(name)
        .ok_or_else(|| format!("weight '{name}' is computed at run time, not an initializer"))?;
    if t.elem_type != DataType::Float || t.as_f32().is_none() {
        return Err(format!(
            "weight '{name}' is {}, not float32",
            t.elem_type.name()
        ));
    }
    if t.dims.len() != 2 {
        return Err(format!("weight '{name}' has shape {:?}, not 2-D", t.dims));
    }
    if consumers.get(name).map(Vec::len).unwrap_or(0) > 1 {
        return Err(format!("weight '{name}' is shared with other nodes"));
    }
    Ok((t.dims[0] as usize, t.dims[1] as usize))
}

/// An f32 initializer that broadcasts as a per-output bias of `n_out`, used only by this node.
fn bias_ok(
    graph: &Graph,
    consumers: &HashMap<&str, Vec<usize>>,
    name: &str,
    n_out: usize,
    allow_scalar: bool,
) -> std::result::Result<(), String> {
    let t = graph
        .initializer(name)
        .ok_or_else(|| format!("bias '{name}' is computed at run time, not an initializer"))?;
    if t.as_f32().is_none() {
        return Err(format!(
            "bias '{name}' is {}, not float32",
            t.elem_type.name()
        ));
    }
    let d: Vec<i64> = t.dims.clone();
    let n = n_out as i64;
    let per_output = d == [n] || d == [1, n];
    let scalar = allow_scalar && (d.is_empty() || d == [1] || d == [1, 1]);
    if !(per_output || scalar) {
        return Err(format!(
            "bias '{name}' of shape {d:?} is not a per-output bias of {n_out}"
        ));
    }
    if consumers.get(name).map(Vec::len).unwrap_or(0) > 1 {
        return Err(format!("bias '{name}' is shared with other nodes"));
    }
    Ok(())
}

fn match_dense(
    graph: &Graph,
    consumers: &HashMap<&str, Vec<usize>>,
    i: usize,
    node: &Node,
) -> Result<Candidate> {
    if !node.domain.is_empty() && node.domain != "ai.onnx" {
        return Ok(Candidate::NotDense);
    }
    let skip = |r: String| Ok(Candidate::Skipped(r));
    let (Some(x), Some(w)) = (node.input(0), node.input(1)) else {
        return Ok(Candidate::NotDense);
    };
    let Some(out) = node.outputs.first().filter(|s| !s.is_empty()) else {
        return Ok(Candidate::NotDense);
    };
    let (op, layout, n_in, n_out, bias, pre) = match node.op_type.as_str() {
        "Gemm" => {
            let trans_a = node.flag_attr("transA", false)?;
            let trans_b = node.flag_attr("transB", false)?;
            let alpha = node.float_attr("alpha", 1.0)?;
            let beta = node.float_attr("beta", 1.0)?;
            if graph.initializer(x).is_some() {
                return skip("its data input is a constant".into());
            }
            let (r, c) = match constant_matrix(graph, consumers, w) {
                Ok(d) => d,
                Err(e) => return skip(e),
            };
            let (layout, n_in, n_out) = if trans_b {
                (Layout::OutIn, c, r)
            } else {
                (Layout::InOut, r, c)
            };
            let bias = node.input(2).map(str::to_string);
            if let Some(b) = &bias {
                if let Err(e) = bias_ok(graph, consumers, b, n_out, true) {
                    return skip(e);
                }
            }
            let op = DenseOp::Gemm {
                node: i,
                alpha,
                beta,
                trans_a,
            };
            (op, layout, n_in, n_out, bias, out.clone())
        }
        "MatMul" => {
            if graph.initializer(x).is_some() {
                return skip("its data input is a constant".into());
            }
            let (n_in, n_out) = match constant_matrix(graph, consumers, w) {
                Ok(d) => d,
                Err(e) => return skip(e),
            };
            // A bias Add that is the MatMul output's only reader.
            let mut add = None;
            let mut pre = out.clone();
            if let Some([c]) = consumers.get(out.as_str()).map(Vec::as_slice) {
                let a = &graph.nodes[*c];
                if a.op_type == "Add" && a.domain.is_empty() && !graph.is_graph_output(out) {
                    let side = if a.input(0) == Some(out) { 1 } else { 0 };
                    if let (Some(b), Some(a_out)) = (a.input(side), a.outputs.first()) {
                        if bias_ok(graph, consumers, b, n_out, false).is_ok() {
                            add = Some((*c, side));
                            pre = a_out.clone();
                        }
                    }
                }
            }
            let bias = add.map(|(a, side)| graph.nodes[a].inputs[side].clone());
            let op = DenseOp::MatMul { node: i, add };
            (op, Layout::InOut, n_in, n_out, bias, pre)
        }
        _ => return Ok(Candidate::NotDense),
    };
    let (activation, activation_node, output) = find_activation(graph, consumers, &pre)?;
    Ok(Candidate::Layer(DenseLayer {
        op,
        weight: w.to_string(),
        layout,
        bias,
        n_in,
        n_out,
        input: x.to_string(),
        pre_activation: pre,
        activation,
        activation_node,
        output,
    }))
}

fn find_activation(
    graph: &Graph,
    consumers: &HashMap<&str, Vec<usize>>,
    pre: &str,
) -> Result<(Activation, Option<usize>, String)> {
    let none = Ok((Activation::None, None, pre.to_string()));
    let Some([c]) = consumers.get(pre).map(Vec::as_slice) else {
        return none;
    };
    let n = &graph.nodes[*c];
    if graph.is_graph_output(pre) || !n.domain.is_empty() || n.input(0) != Some(pre) {
        return none;
    }
    let act = match n.op_type.as_str() {
        "Relu" => Activation::Relu,
        "LeakyRelu" => Activation::LeakyRelu(n.float_attr("alpha", 0.01)?),
        "Sigmoid" => Activation::Sigmoid,
        "Tanh" => Activation::Tanh,
        "Gelu" => match n.attr("approximate") {
            None => Activation::Gelu { tanh_approx: false },
            Some(AttrValue::String(s)) if s == b"none" => Activation::Gelu { tanh_approx: false },
            Some(AttrValue::String(s)) if s == b"tanh" => Activation::Gelu { tanh_approx: true },
            Some(_) => {
                return Err(Error::node(
                    n,
                    "attribute approximate: expected \"none\" or \"tanh\"",
                ))
            }
        },
        _ => return none,
    };
    match n.outputs.first() {
        Some(out) if !out.is_empty() => Ok((act, Some(*c), out.clone())),
        _ => none,
    }
}

/// Whether any weighted op reads, directly or through other ops, the chain's `scores`.
fn chain_end(
    graph: &Graph,
    consumers: &HashMap<&str, Vec<usize>>,
    scores: &str,
    last_node: usize,
    skipped: &[String],
) -> ChainEnd {
    let mut seen = vec![false; graph.nodes.len()];
    let mut queue: std::collections::VecDeque<&str> = [scores].into();
    while let Some(tensor) = queue.pop_front() {
        for &c in consumers.get(tensor).into_iter().flatten() {
            if std::mem::replace(&mut seen[c], true) {
                continue;
            }
            let n = &graph.nodes[c];
            if WEIGHTED_OPS.contains(&n.op_type.as_str()) {
                let label = n.label();
                let prefix = format!("node '{label}' ");
                let why = skipped
                    .iter()
                    .filter_map(|s| s.strip_prefix(&prefix)?.split_once("): "))
                    .map(|(_, r)| format!("it is not a dense layer the chain can take: {r}"))
                    .next()
                    .unwrap_or_else(|| "it reads the chain's output through other ops".into());
                return ChainEnd::Cut {
                    last: graph.nodes[last_node].label().to_string(),
                    node: label.to_string(),
                    op: n.op_type.clone(),
                    reason: why,
                };
            }
            queue.extend(
                n.outputs
                    .iter()
                    .filter(|o| !o.is_empty())
                    .map(String::as_str),
            );
        }
    }
    ChainEnd::Output
}

/// A Softmax / LogSoftmax over the last axis reading the last layer alone, else logits.
fn find_head(
    graph: &Graph,
    consumers: &HashMap<&str, Vec<usize>>,
    last: &DenseLayer,
) -> (Head, Option<usize>, String) {
    let logits = (Head::Logits, None, last.output.clone());
    let Some([c]) = consumers.get(last.output.as_str()).map(Vec::as_slice) else {
        return logits;
    };
    let n = &graph.nodes[*c];
    let axis = n.int_attr("axis", -1).unwrap_or(0);
    let head = match n.op_type.as_str() {
        "Softmax" => Head::Softmax,
        "LogSoftmax" => Head::LogSoftmax,
        _ => return logits,
    };
    if graph.is_graph_output(&last.output) || !(axis == -1 || axis == 1) {
        return logits;
    }
    match n.outputs.first() {
        Some(out) if !out.is_empty() => (head, Some(*c), out.clone()),
        _ => logits,
    }
}
