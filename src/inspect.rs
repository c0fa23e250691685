//! `inspect`: a structured summary of a model and its dense chain.
use crate::ir::{AttrValue, Graph, Model};
use crate::mlp::{ChainEnd, MlpView};
use crate::tensor::TensorData;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Report {
    pub ir_version: i64,
    pub opsets: Vec<Opset>,
    pub producer: Option<String>,
    pub inputs: Vec<Value>,
    pub outputs: Vec<Value>,
    pub dense_layers: Vec<LayerReport>,
    pub head: Option<String>,
    /// Null when the chain ends at the model's output; otherwise where it stops and why (such a
    /// model is refused by finetune, prune and compress).
    pub chain_end: Option<String>,
    /// Why the model has no dense chain, when it has none.
    pub dense_chain_error: Option<String>,
    /// Dense-looking nodes left out of the chain, with the reason.
    pub skipped: Vec<String>,
    /// Elements of every numeric tensor stored in the model (initializers, Constant nodes).
    pub params_total: usize,
    /// Parameters of the dense chain.
    pub dense_params: usize,
    /// Multiply-accumulates per sample of the dense chain (other ops are not counted).
    pub macs_total: usize,
    pub nodes: usize,
    pub op_counts: Vec<(String, usize)>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Opset {
    pub domain: String,
    pub version: i64,
}

#[derive(Debug, Serialize)]
pub struct Value {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
}

#[derive(Debug, Serialize)]
pub struct LayerReport {
    pub index: usize,
    pub nodes: Vec<String>,
    pub op: String,
    pub layout: crate::mlp::Layout,
    pub n_in: usize,
    pub n_out: usize,
    pub activation: String,
    pub params: usize,
    pub macs: usize,
}

fn layer_reports(g: &Graph, view: Option<&MlpView>) -> Vec<LayerReport> {
    view.iter()
        .flat_map(|v| v.layers.iter())
        .enumerate()
        .map(|(index, l)| LayerReport {
            index,
            nodes: l
                .nodes()
                .iter()
                .map(|&i| g.nodes[i].label().to_string())
                .collect(),
            op: l.op_name().into(),
            layout: l.layout,
            n_in: l.n_in,
            n_out: l.n_out,
            activation: l.activation.name(),
            params: l.params(),
            macs: l.macs(),
        })
        .collect()
}

/// How many nodes of each op (domain-qualified outside the default domain), in order of first use.
fn op_counts(g: &Graph) -> Vec<(String, usize)> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for n in &g.nodes {
        let op = if n.domain.is_empty() {
            n.op_type.clone()
        } else {
            format!("{}.{}", n.domain, n.op_type)
        };
        match counts.iter_mut().find(|(o, _)| *o == op) {
            Some((_, c)) => *c += 1,
            None => counts.push((op, 1)),
        }
    }
    counts
}

fn opsets(model: &Model) -> Vec<Opset> {
    let domain = |d: &str| match d {
        "" => "ai.onnx".to_string(),
        d => d.to_string(),
    };
    model
        .opsets
        .iter()
        .map(|o| Opset {
            domain: domain(&o.domain),
            version: o.version,
        })
        .collect()
}

fn producer(model: &Model) -> Option<String> {
    let name = model.extra.producer_name.clone()?;
    Some(match &model.extra.producer_version {
        Some(v) => format!("{name} {v}"),
        None => name,
    })
}

/// Elements of every numeric tensor the graph stores: initializers and Constant nodes' values.
fn stored_params(g: &Graph) -> usize {
    let constants = g.nodes.iter().filter_map(|n| match n.attr("value") {
        Some(AttrValue::Tensor(t)) if n.op_type == "Constant" => Some(&**t),
        _ => None,
    });
    g.initializers
        .iter()
        .chain(constants)
        .filter(|t| !matches!(t.data, TensorData::InProto | TensorData::Bytes(_)))
        .map(|t| t.len())
        .sum()
}

/// The report; fails on invalid structure (a Gemm attribute out of range …), while a model with
/// no dense chain is reported as such.
pub fn report(model: &Model) -> crate::Result<Report> {
    let g = &model.graph;
    let (view, err) = match MlpView::find(g) {
        Ok(v) => (Some(v), None),
        Err(e @ crate::Error::NoDenseChain(_)) => (None, Some(e.to_string())),
        Err(e) => return Err(e),
    };
    let dense_layers = layer_reports(g, view.as_ref());
    let value = |v: &crate::ir::ValueInfo| Value {
        name: v.name.clone(),
        ty: v.type_string(),
    };
    Ok(Report {
        ir_version: model.ir_version,
        opsets: opsets(model),
        producer: producer(model),
        inputs: g.runtime_inputs().map(value).collect(),
        outputs: g.outputs.iter().map(value).collect(),
        params_total: stored_params(g),
        dense_params: dense_layers.iter().map(|l| l.params).sum(),
        macs_total: dense_layers.iter().map(|l| l.macs).sum(),
        head: view
            .as_ref()
            .filter(|v| v.end == ChainEnd::Output)
            .map(|v| v.head.name().to_string()),
        chain_end: view
            .as_ref()
            .and_then(|v| v.require_whole().err())
            .map(|e| e.to_string()),
        skipped: view
            .map(|v| v.skipped.iter().map(|s| s.to_string()).collect())
            .unwrap_or_default(),
        dense_layers,
        dense_chain_error: err,
        nodes: g.nodes.len(),
        op_counts: op_counts(g),
        warnings: model.warnings.clone(),
    })
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let opsets: Vec<String> = self
            .opsets
            .iter()
            .map(|o| format!("{} {}", o.domain, o.version))
            .collect();
        writeln!(
            f,
            "IR version {}, opsets: {}",
            self.ir_version,
            opsets.join(", ")
        )?;
        if let Some(p) = &self.producer {
            writeln!(f, "producer: {p}")?;
        }
        for (what, values) in [("input", &self.inputs), ("output", &self.outputs)] {
            for v in values {
                writeln!(f, "{what:<6}  {}: {}", v.name, v.ty)?;
            }
        }
        let ops: Vec<String> = self
            .op_counts
            .iter()
            .map(|(o, c)| format!("{o}×{c}"))
            .collect();
        writeln!(f, "nodes: {} ({})", self.nodes, ops.join(" "))?;
        match &self.dense_chain_error {
            Some(e) => writeln!(f, "dense layers: none ({e})")?,
            None => {
                writeln!(
                    f,
                    "dense layers (head: {}):",
                    self.head.as_deref().unwrap_or("?")
                )?;
                writeln!(
                    f,
                    "  {:>3}  {:<11} {:>6} → {:<6} {:<14} {:>10} {:>10}  nodes",
                    "#", "op", "in", "out", "activation", "params", "MACs"
                )?;
                for l in &self.dense_layers {
                    writeln!(
                        f,
                        "  {:>3}  {:<11} {:>6} → {:<6} {:<14} {:>10} {:>10}  {}",
                        l.index,
                        l.op,
                        l.n_in,
                        l.n_out,
                        l.activation,
                        l.params,
                        l.macs,
                        l.nodes.join(", ")
                    )?;
                }
            }
        }
        writeln!(
            f,
            "params: {} in the model, {} in the dense chain; dense MACs per sample: {}",
            self.params_total, self.dense_params, self.macs_total
        )?;
        for s in &self.skipped {
            writeln!(f, "not in the chain: {s}")?;
        }
        if let Some(end) = &self.chain_end {
            writeln!(f, "chain end: {end}")?;
        }
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        Ok(())
    }
}
