//! MlpView: the chain of dense layers inside a graph, whatever exporter wrote it, and where it
//! ends. `matcher` recognises each layer; here layers are linked into chains (directly, or
//! through ops that pass values through unchanged), the longest chain is kept, its head found,
//! and what follows it checked: a chain followed by more weighted ops was cut short and is
//! refused by the commands that would train or prune it. Everything else in the graph
//! (preludes, a convolutional backbone, exporter tails) is left alone.
mod layer;
mod matcher;

pub use layer::{Activation, DenseLayer, DenseOp, Head, Layout};

use crate::error::{Error, Result};
use crate::ir::Graph;
use matcher::{Candidate, Consumers};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq)]
pub struct MlpView {
    pub layers: Vec<DenseLayer>,
    pub head: Head,
    pub head_node: Option<usize>,
    /// The class-score tensor: the head's output, or the last layer's output for logits.
    pub scores: String,
    /// Dense-looking nodes that were not taken into the chain, with the reason.
    pub skipped: Vec<Skipped>,
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

/// A dense-looking node the chain cannot take, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    pub node: String,
    pub op: String,
    pub reason: String,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "node '{}' ({}): {}", self.node, self.op, self.reason)
    }
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
            match matcher::match_dense(graph, &consumers, i, node)? {
                Candidate::Layer(l) => layers.push(l),
                Candidate::Skipped(reason) => skipped.push(Skipped {
                    node: node.label().to_string(),
                    op: node.op_type.clone(),
                    reason,
                }),
                Candidate::NotDense => {}
            }
        }
        if layers.is_empty() {
            let why = if skipped.is_empty() {
                "the graph has no Gemm or MatMul node with a constant weight".to_string()
            } else {
                let reasons: Vec<String> = skipped.iter().map(|s| s.to_string()).collect();
                reasons.join("; ")
            };
            return Err(Error::NoDenseChain(why));
        }

        let (next, has_prev) = link(graph, &consumers, &mut layers)?;
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
        // The last layer links to nothing, so it records no pass-through ops.
        let chain: Vec<DenseLayer> = best.iter().map(|&i| layers[i].clone()).collect();
        let last = chain.last().expect("at least one layer");
        let (head, head_node, scores) = matcher::find_head(graph, &consumers, last);
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

/// Links layers into chains: b follows a when a's output reaches b's input alone, directly or
/// through pass-through ops (which a records). Returns each layer's successor and whether it
/// has a predecessor.
fn link(
    graph: &Graph,
    consumers: &Consumers,
    layers: &mut [DenseLayer],
) -> Result<(Vec<Option<usize>>, Vec<bool>)> {
    let by_input: HashMap<String, usize> = layers
        .iter()
        .enumerate()
        .map(|(i, l)| (l.input.clone(), i))
        .collect();
    let mut next: Vec<Option<usize>> = vec![None; layers.len()];
    let mut has_prev = vec![false; layers.len()];
    for a in 0..layers.len() {
        let (mut tensor, mut through) = (layers[a].output.clone(), Vec::new());
        while let Some((node, out)) =
            matcher::pass_through(graph, consumers, &tensor, layers[a].n_out)
        {
            through.push(node);
            tensor = out.to_string();
        }
        let Some(&b) = by_input.get(&tensor) else {
            continue;
        };
        let (la, lb) = (&layers[a], &layers[b]);
        let sole_reader = consumers.get(tensor.as_str()).map(Vec::len) == Some(1);
        let b_transposed = matches!(lb.op, DenseOp::Gemm { trans_a: true, .. });
        if !sole_reader || graph.is_graph_output(&tensor) || b_transposed || a == b {
            continue;
        }
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
        layers[a].pass_through = through;
    }
    Ok((next, has_prev))
}

/// Whether any weighted op reads, directly or through other ops, the chain's `scores`.
fn chain_end(
    graph: &Graph,
    consumers: &Consumers,
    scores: &str,
    last_node: usize,
    skipped: &[Skipped],
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
                let why = skipped
                    .iter()
                    .find(|s| s.node == label)
                    .map(|s| format!("it is not a dense layer the chain can take: {}", s.reason))
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

#[cfg(test)]
mod tests;
