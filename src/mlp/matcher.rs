//! Recognising dense layers in a graph, whatever exporter wrote them.
//!
//! A dense layer is `Gemm(x, W[, b])` (any legal transA/transB/alpha/beta) or `MatMul(x, W)`
//! optionally followed by an `Add` of a per-output bias on either side, then optionally one
//! activation. W and b are stored in the graph (initializers, or Constant nodes' values), used by
//! this layer alone. Between two layers, ops that pass values through unchanged may sit:
//! Identity, Dropout in inference mode, Cast to float, Flatten(axis=1), and Reshape to [N, C]
//! (a shape of two values [0 or −1, −1 or C]). A Softmax / LogSoftmax over the last axis may
//! follow the last layer as the head.
use super::layer::{Activation, DenseLayer, DenseOp, Head, Layout};
use crate::error::{Error, Result};
use crate::ir::{AttrValue, Graph, Node};
use crate::tensor::DataType;
use std::collections::HashMap;

/// For each tensor name, the indices of the nodes that read it.
pub type Consumers<'g> = HashMap<&'g str, Vec<usize>>;

/// What a node is to the chain.
pub enum Candidate {
    Layer(DenseLayer),
    /// Looks dense but cannot be taken into the chain, and why.
    Skipped(String),
    NotDense,
}

/// A 2-D f32 tensor stored in the graph and used by this node alone: its dims.
fn constant_matrix(
    graph: &Graph,
    consumers: &Consumers,
    name: &str,
) -> std::result::Result<(usize, usize), String> {
    let t = graph.stored(name).ok_or_else(|| {
        format!("weight '{name}' is computed at run time, not stored in the graph")
    })?;
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

/// An f32 tensor stored in the graph that broadcasts as a per-output bias of `n_out`, used only
/// by this node.
fn bias_ok(
    graph: &Graph,
    consumers: &Consumers,
    name: &str,
    n_out: usize,
    allow_scalar: bool,
) -> std::result::Result<(), String> {
    let t = graph
        .stored(name)
        .ok_or_else(|| format!("bias '{name}' is computed at run time, not stored in the graph"))?;
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

/// The op part of a layer: op, layout, sizes, bias, pre-activation tensor.
struct Matched {
    op: DenseOp,
    layout: Layout,
    n_in: usize,
    n_out: usize,
    bias: Option<String>,
    pre: String,
}

/// Node `i` as a dense layer, if it is one.
pub fn match_dense(
    graph: &Graph,
    consumers: &Consumers,
    i: usize,
    node: &Node,
) -> Result<Candidate> {
    if !node.domain.is_empty() && node.domain != "ai.onnx" {
        return Ok(Candidate::NotDense);
    }
    let (Some(x), Some(w)) = (node.input(0), node.input(1)) else {
        return Ok(Candidate::NotDense);
    };
    let Some(out) = node.outputs.first().filter(|s| !s.is_empty()) else {
        return Ok(Candidate::NotDense);
    };
    let matched = match node.op_type.as_str() {
        "Gemm" => match_gemm(graph, consumers, i, node, (x, w, out))?,
        "MatMul" => match_matmul(graph, consumers, i, (x, w, out)),
        _ => return Ok(Candidate::NotDense),
    };
    let m = match matched {
        Ok(m) => m,
        Err(reason) => return Ok(Candidate::Skipped(reason)),
    };
    let (activation, activation_node, output) = find_activation(graph, consumers, &m.pre)?;
    Ok(Candidate::Layer(DenseLayer {
        op: m.op,
        weight: w.to_string(),
        layout: m.layout,
        bias: m.bias,
        n_in: m.n_in,
        n_out: m.n_out,
        input: x.to_string(),
        pre_activation: m.pre,
        activation,
        activation_node,
        output,
        pass_through: vec![],
    }))
}

/// A Gemm: attributes out of range are errors naming the node; a Gemm the chain cannot take is
/// `Err(reason)`.
fn match_gemm(
    graph: &Graph,
    consumers: &Consumers,
    i: usize,
    node: &Node,
    tensors: (&str, &str, &String),
) -> Result<std::result::Result<Matched, String>> {
    let trans_a = node.flag_attr("transA", false)?;
    let trans_b = node.flag_attr("transB", false)?;
    let op = DenseOp::Gemm {
        node: i,
        alpha: node.float_attr("alpha", 1.0)?,
        beta: node.float_attr("beta", 1.0)?,
        trans_a,
    };
    Ok(gemm_layer(graph, consumers, node, tensors, op, trans_b))
}

/// The layer a Gemm with valid attributes makes, or why the chain cannot take it.
fn gemm_layer(
    graph: &Graph,
    consumers: &Consumers,
    node: &Node,
    (x, w, out): (&str, &str, &String),
    op: DenseOp,
    trans_b: bool,
) -> std::result::Result<Matched, String> {
    if graph.stored(x).is_some() {
        return Err("its data input is a constant".to_string());
    }
    let (r, c) = constant_matrix(graph, consumers, w)?;
    let (layout, n_in, n_out) = match trans_b {
        true => (Layout::OutIn, c, r),
        false => (Layout::InOut, r, c),
    };
    let bias = node.input(2).map(str::to_string);
    if let Some(b) = &bias {
        bias_ok(graph, consumers, b, n_out, true)?;
    }
    Ok(Matched {
        op,
        layout,
        n_in,
        n_out,
        bias,
        pre: out.clone(),
    })
}

/// A MatMul with a stored weight, and the bias Add that is its output's only reader, if any.
fn match_matmul(
    graph: &Graph,
    consumers: &Consumers,
    i: usize,
    (x, w, out): (&str, &str, &String),
) -> std::result::Result<Matched, String> {
    if graph.stored(x).is_some() {
        return Err("its data input is a constant".into());
    }
    let (n_in, n_out) = constant_matrix(graph, consumers, w)?;
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
    Ok(Matched {
        op: DenseOp::MatMul { node: i, add },
        layout: Layout::InOut,
        n_in,
        n_out,
        bias,
        pre,
    })
}

/// The activation reading `pre` alone, its node and output; none when there is none.
fn find_activation(
    graph: &Graph,
    consumers: &Consumers,
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

/// The node that reads `tensor` alone and passes its values through unchanged (see the module
/// docs), with its output; `width` is the tensor's last dimension.
pub fn pass_through<'g>(
    graph: &'g Graph,
    consumers: &Consumers,
    tensor: &str,
    width: usize,
) -> Option<(usize, &'g str)> {
    let [c] = consumers.get(tensor)?.as_slice() else {
        return None;
    };
    let n = &graph.nodes[*c];
    if graph.is_graph_output(tensor) || !n.domain.is_empty() || n.input(0) != Some(tensor) {
        return None;
    }
    let passes = match n.op_type.as_str() {
        "Identity" => true,
        "Dropout" => dropout_is_identity(graph, consumers, n),
        "Cast" => n.int_attr("to", 0).ok() == Some(DataType::Float.code() as i64),
        "Flatten" => n.int_attr("axis", 1).ok() == Some(1),
        "Reshape" => reshape_keeps_rows(graph, consumers, n, width),
        _ => false,
    };
    let out = n.outputs.first().filter(|o| !o.is_empty())?;
    passes.then_some((*c, out.as_str()))
}

/// Dropout in inference: no `training_mode`, or a stored false one; its mask unused.
fn dropout_is_identity(graph: &Graph, consumers: &Consumers, n: &Node) -> bool {
    let training = match n.input(2) {
        None => false,
        Some(t) => match graph.stored(t).map(|t| &t.data) {
            Some(crate::tensor::TensorData::Bytes(b)) => b.iter().any(|&v| v != 0),
            _ => true,
        },
    };
    let mask_used = n
        .outputs
        .get(1)
        .filter(|m| !m.is_empty())
        .is_some_and(|m| consumers.contains_key(m.as_str()) || graph.is_graph_output(m));
    !training && !mask_used
}

/// Reshape to [N, C]: a stored int64 shape of two values [0 or −1, −1 or `width`], used by this
/// node alone (pruning rewrites an explicit width), without `allowzero`.
fn reshape_keeps_rows(graph: &Graph, consumers: &Consumers, n: &Node, width: usize) -> bool {
    let Some(shape_name) = n.input(1) else {
        return false;
    };
    let Some(shape) = graph.stored(shape_name).and_then(|t| t.as_i64()) else {
        return false;
    };
    let sole = consumers.get(shape_name).map(Vec::len) == Some(1);
    let allowzero = n.int_attr("allowzero", 0).unwrap_or(1) != 0;
    matches!(shape, [0 | -1, c] if *c == -1 || *c == width as i64) && sole && !allowzero
}

/// A Softmax / LogSoftmax over the last axis reading the last layer alone, else logits.
pub fn find_head(
    graph: &Graph,
    consumers: &Consumers,
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
