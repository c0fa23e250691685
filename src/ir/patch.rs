//! Changes to a graph collected while it is read, then applied at once: stored tensors given
//! new f32 or int64 values and shapes, the recorded last dimension of tensors changed, new
//! initializers, and nodes inserted in front of others (rewiring one input of a later node).
//! Computing a change never mutates the graph, so a plan can be worked out from a borrowed view
//! of it and either applied whole or dropped.
use super::{Dim, Graph, Node, ValueType};
use crate::error::{Error, Result};
use crate::tensor::{Tensor, TensorData};

#[derive(Debug, Default)]
pub struct GraphPatch {
    f32_values: Vec<(String, Vec<i64>, Vec<f32>)>,
    i64_values: Vec<(String, Vec<i64>)>,
    widths: Vec<(String, usize)>,
    initializers: Vec<Tensor>,
    inserts: Vec<Insert>,
}

/// `node` goes in front of the node at `before`, whose input `input` then reads `rewired`.
#[derive(Debug)]
struct Insert {
    before: usize,
    node: Node,
    input: usize,
    rewired: String,
}

impl GraphPatch {
    /// Stored tensor `name` (initializer or Constant value) becomes f32 `values` of shape `dims`.
    pub fn set_f32(&mut self, name: &str, dims: Vec<i64>, values: Vec<f32>) {
        self.f32_values.push((name.to_string(), dims, values));
    }

    /// Stored int64 tensor `name` gets new `values` (same length).
    pub fn set_i64(&mut self, name: &str, values: Vec<i64>) {
        self.i64_values.push((name.to_string(), values));
    }

    /// Every recorded type of `tensor` (value_info, outputs) gets `width` as its last dimension.
    pub fn set_width(&mut self, tensor: &str, width: usize) {
        self.widths.push((tensor.to_string(), width));
    }

    pub fn add_initializer(&mut self, t: Tensor) {
        self.initializers.push(t);
    }

    /// Inserts `node` in front of node `before` and makes that node's input `input` read
    /// `rewired` (usually the new node's output).
    pub fn insert_before(&mut self, before: usize, node: Node, input: usize, rewired: &str) {
        self.inserts.push(Insert {
            before,
            node,
            input,
            rewired: rewired.to_string(),
        });
    }

    /// Applies every change; node indices refer to the graph before the patch.
    pub fn apply(self, graph: &mut Graph) -> Result<()> {
        for (name, dims, values) in self.f32_values {
            let t = stored(graph, &name)?;
            t.set_f32(dims, values);
        }
        for (name, values) in self.i64_values {
            let t = stored(graph, &name)?;
            t.data = TensorData::I64(values);
        }
        for (name, width) in self.widths {
            set_last_dim(graph, &name, width);
        }
        graph.initializers.extend(self.initializers);
        let mut inserts = self.inserts;
        // From the last position back, so earlier indices stay valid.
        inserts.sort_by_key(|i| std::cmp::Reverse(i.before));
        for i in inserts {
            let target = graph
                .nodes
                .get_mut(i.before)
                .ok_or_else(|| Error::Graph(format!("no node {} to insert before", i.before)))?;
            let slot = target.inputs.get_mut(i.input).ok_or_else(|| {
                Error::Graph(format!("node {} has no input {}", i.before, i.input))
            })?;
            *slot = i.rewired;
            graph.nodes.insert(i.before, i.node);
        }
        Ok(())
    }
}

fn stored<'g>(graph: &'g mut Graph, name: &str) -> Result<&'g mut Tensor> {
    graph
        .stored_mut(name)
        .ok_or_else(|| Error::Graph(format!("tensor '{name}' disappeared")))
}

fn set_last_dim(graph: &mut Graph, name: &str, width: usize) {
    for v in graph.value_info.iter_mut().chain(graph.outputs.iter_mut()) {
        if v.name != name {
            continue;
        }
        if let ValueType::Tensor {
            shape: Some(dims), ..
        } = &mut v.ty
        {
            if let Some(last @ Dim::Value(_)) = dims.last_mut() {
                *last = Dim::Value(width as i64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::ValueInfo;
    use crate::tensor::DataType;

    #[test]
    fn a_patch_changes_nothing_until_applied_and_everything_then() {
        let mut g = Graph::default();
        g.initializers
            .push(Tensor::from_f32("w", vec![2, 2], vec![1.0; 4]));
        g.nodes.push(Node::new(
            "MatMul",
            vec!["x".into(), "w".into()],
            vec!["y".into()],
        ));
        let shape = Some(vec![Dim::Param("N".into()), Dim::Value(2)]);
        g.value_info
            .push(ValueInfo::tensor("y", DataType::Float, shape));
        let mut p = GraphPatch::default();
        p.set_f32("w", vec![2, 1], vec![3.0, 4.0]);
        p.set_width("y", 1);
        p.insert_before(
            0,
            Node::new("Relu", vec!["x".into()], vec!["rx".into()]),
            0,
            "rx",
        );
        assert_eq!(g.initializers[0].dims, vec![2, 2], "not applied yet");
        p.apply(&mut g).unwrap();
        assert_eq!(g.initializers[0].as_f32(), Some(&[3.0, 4.0][..]));
        assert_eq!(g.value_info[0].type_string(), "float[N,1]");
        assert_eq!(g.nodes[0].op_type, "Relu");
        assert_eq!(g.nodes[1].inputs[0], "rx");
    }
}
