//! Inlining of model-local functions (FunctionProto), for engines that do not run them (tract).
use super::import::import_node;
use crate::error::{Error, Result};
use crate::ir::{Model, Node, OpsetId};
use crate::pb;

/// How deep function calls may nest before the model is refused.
const MAX_DEPTH: usize = 8;

/// Replaces every call of a local function in the main graph by the function's body, with its
/// formal inputs and outputs bound to the call's and its internal names made unique. Functions
/// that take attributes are left as calls. The model computes the same values afterwards.
pub fn inline_functions(model: &mut Model) -> Result<()> {
    let functions = model.extra.functions.clone();
    if functions.is_empty() {
        return Ok(());
    }
    let find = |n: &Node| {
        functions.iter().find(|f| {
            f.name.as_deref() == Some(n.op_type.as_str())
                && f.domain.as_deref().unwrap_or("") == n.domain
                && f.overload.is_none()
                && f.attribute.is_empty()
                && f.attribute_proto.is_empty()
        })
    };
    for depth in 0.. {
        let calls: Vec<usize> = (0..model.graph.nodes.len())
            .filter(|&i| find(&model.graph.nodes[i]).is_some())
            .collect();
        if calls.is_empty() {
            break;
        }
        if depth == MAX_DEPTH {
            return Err(Error::Graph(format!(
                "local functions nest deeper than {MAX_DEPTH} calls"
            )));
        }
        for &i in calls.iter().rev() {
            let call = model.graph.nodes[i].clone();
            let f = find(&call).expect("filtered above");
            let body = expand(&call, f)?;
            for o in &f.opset_import {
                let domain = o.domain.clone().unwrap_or_default();
                if !model.opsets.iter().any(|m| m.domain == domain) {
                    model.opsets.push(OpsetId {
                        domain,
                        version: o.version.unwrap_or(1),
                        extra: o.clone(),
                    });
                }
            }
            model.graph.nodes.splice(i..=i, body);
        }
    }
    Ok(())
}

fn expand(call: &Node, f: &pb::FunctionProto) -> Result<Vec<Node>> {
    let prefix = format!(
        "{}/{}",
        call.label(),
        f.name.as_deref().unwrap_or("function")
    );
    let rename = |name: &str| -> String {
        if name.is_empty() {
            return String::new();
        }
        if let Some(i) = f.input.iter().position(|x| x == name) {
            return call.inputs.get(i).cloned().unwrap_or_default();
        }
        if let Some(i) = f.output.iter().position(|x| x == name) {
            return call.outputs.get(i).cloned().unwrap_or_default();
        }
        format!("{prefix}/{name}")
    };
    f.node
        .iter()
        .map(|n| {
            let mut node = import_node(n.clone(), None)?;
            node.name = format!("{prefix}/{}", node.label());
            node.inputs = node.inputs.iter().map(|s| rename(s)).collect();
            node.outputs = node.outputs.iter().map(|s| rename(s)).collect();
            Ok(node)
        })
        .collect()
}
