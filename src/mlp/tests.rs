//! The dense-chain matcher and layer write-back on small graphs built here, one exporter pattern
//! or defect each.
use super::*;
use crate::ir::{AttrValue, Attribute, Dim, Node, ValueInfo};
use crate::tensor::{DataType, Tensor, TensorData};
use ndarray::{Array1, Array2};

/// A graph under construction: an input `x` [N, width], tensors and nodes added in order.
struct Sketch {
    g: Graph,
}

fn attr(name: &str, value: AttrValue) -> Attribute {
    Attribute {
        name: name.into(),
        value,
    }
}

fn int(name: &str, v: i64) -> Attribute {
    attr(name, AttrValue::Int(v))
}

impl Sketch {
    fn new(width: usize) -> Self {
        let shape = vec![Dim::Param("N".into()), Dim::Value(width as i64)];
        let mut g = Graph::default();
        g.inputs
            .push(ValueInfo::tensor("x", DataType::Float, Some(shape)));
        Sketch { g }
    }

    fn weight(&mut self, name: &str, dims: &[i64]) -> &mut Self {
        let n: i64 = dims.iter().product();
        let values = (0..n).map(|i| (i % 7) as f32 * 0.1 - 0.3).collect();
        self.g
            .initializers
            .push(Tensor::from_f32(name, dims.to_vec(), values));
        self
    }

    fn ints(&mut self, name: &str, values: &[i64]) -> &mut Self {
        let mut t = Tensor::from_f32(name, vec![values.len() as i64], vec![]);
        t.elem_type = DataType::Int64;
        t.data = TensorData::I64(values.to_vec());
        self.g.initializers.push(t);
        self
    }

    fn node(
        &mut self,
        op: &str,
        inputs: &[&str],
        output: &str,
        attrs: Vec<Attribute>,
    ) -> &mut Self {
        let mut n = Node::new(
            op,
            inputs.iter().map(|s| s.to_string()).collect(),
            vec![output.into()],
        );
        n.name = format!("/{output}");
        n.attributes = attrs;
        self.g.nodes.push(n);
        self
    }

    fn output(&mut self, name: &str) -> &Graph {
        self.g
            .outputs
            .push(ValueInfo::tensor(name, DataType::Float, None));
        &self.g
    }
}

/// x → Gemm(transB=1) → Relu → Gemm(transB=1) → Softmax, 4 → 3 → 2.
fn torch_like() -> Sketch {
    let mut s = Sketch::new(4);
    s.weight("w0", &[3, 4])
        .weight("b0", &[3])
        .weight("w1", &[2, 3])
        .weight("b1", &[2])
        .node("Gemm", &["x", "w0", "b0"], "z0", vec![int("transB", 1)])
        .node("Relu", &["z0"], "h0", vec![])
        .node("Gemm", &["h0", "w1", "b1"], "z1", vec![int("transB", 1)])
        .node("Softmax", &["z1"], "p", vec![int("axis", 1)]);
    s
}

#[test]
fn a_pytorch_chain_with_a_softmax_head() {
    let mut s = torch_like();
    let v = MlpView::find(s.output("p")).unwrap();
    assert_eq!(v.layers.len(), 2);
    let (l0, l1) = (&v.layers[0], &v.layers[1]);
    assert_eq!((l0.n_in, l0.n_out, l0.layout), (4, 3, Layout::OutIn));
    assert_eq!((l1.n_in, l1.n_out), (3, 2));
    assert_eq!(l0.activation, Activation::Relu);
    assert_eq!(l1.activation, Activation::None);
    assert_eq!((v.head, v.scores.as_str()), (Head::Softmax, "p"));
    assert_eq!(v.end, ChainEnd::Output);
    assert_eq!(v.input(), "x");
}

#[test]
fn matmul_with_the_bias_on_either_side_of_the_add() {
    let mut s = Sketch::new(4);
    s.weight("w0", &[4, 3])
        .weight("b0", &[3])
        .weight("w1", &[3, 2])
        .weight("b1", &[1, 2])
        .node("MatMul", &["x", "w0"], "m0", vec![])
        .node("Add", &["b0", "m0"], "z0", vec![])
        .node("Tanh", &["z0"], "h0", vec![])
        .node("MatMul", &["h0", "w1"], "m1", vec![])
        .node("Add", &["m1", "b1"], "z1", vec![]);
    let v = MlpView::find(s.output("z1")).unwrap();
    assert_eq!(v.layers.len(), 2);
    assert_eq!(v.layers[0].bias.as_deref(), Some("b0"));
    assert_eq!(v.layers[0].pre_activation, "z0");
    assert_eq!(v.layers[0].activation, Activation::Tanh);
    assert_eq!(v.layers[1].bias.as_deref(), Some("b1"));
    assert_eq!((v.head, v.scores.as_str()), (Head::Logits, "z1"));
}

#[test]
fn layers_link_through_ops_that_pass_values_through() {
    let mut s = Sketch::new(4);
    s.weight("w0", &[4, 3])
        .weight("w1", &[3, 2])
        .ints("shape", &[-1, 3])
        .node("MatMul", &["x", "w0"], "z0", vec![])
        .node("Relu", &["z0"], "h0", vec![])
        .node("Identity", &["h0"], "i0", vec![])
        .node("Dropout", &["i0"], "d0", vec![])
        .node("Reshape", &["d0", "shape"], "r0", vec![])
        .node("Cast", &["r0"], "c0", vec![int("to", 1)])
        .node("Flatten", &["c0"], "f0", vec![int("axis", 1)])
        .node("MatMul", &["f0", "w1"], "z1", vec![]);
    let v = MlpView::find(s.output("z1")).unwrap();
    assert_eq!(v.layers.len(), 2, "{:?}", v.skipped);
    assert_eq!(v.layers[0].pass_through, vec![2, 3, 4, 5, 6]);
    assert_eq!(v.layers[1].input, "f0");
    assert_eq!(v.end, ChainEnd::Output);
}

#[test]
fn a_reshape_to_another_width_or_a_cast_to_int_ends_a_chain() {
    for (op, inputs, attrs) in [
        ("Reshape", vec!["h0", "shape"], vec![]),
        ("Cast", vec!["h0"], vec![int("to", 7)]),
    ] {
        let mut s = Sketch::new(4);
        s.weight("w0", &[4, 3])
            .weight("w1", &[3, 2])
            .ints("shape", &[-1, 7])
            .node("MatMul", &["x", "w0"], "h0", vec![])
            .node(op, &inputs, "p0", attrs)
            .node("MatMul", &["p0", "w1"], "z1", vec![]);
        let v = MlpView::find(s.output("z1")).unwrap();
        assert_eq!(v.layers.len(), 1, "{op}");
        assert!(
            matches!(&v.end, ChainEnd::Cut { node, .. } if node == "/z1"),
            "{op}: {:?}",
            v.end
        );
        assert!(v.require_whole().is_err());
    }
}

#[test]
fn a_weight_held_by_a_constant_node_is_taken() {
    let mut s = torch_like();
    let w1 = s.g.initializers.remove(2);
    let mut c = Node::new("Constant", vec![], vec!["w1".into()]);
    c.attributes = vec![attr("value", AttrValue::Tensor(Box::new(w1)))];
    s.g.nodes.insert(0, c);
    let v = MlpView::find(s.output("p")).unwrap();
    assert_eq!(v.layers.len(), 2);
    let w = v.layers[1].weight_matrix(&s.g);
    assert_eq!(w.dim(), (3, 2));
}

#[test]
fn shared_and_computed_weights_are_skipped_with_the_reason() {
    let mut s = Sketch::new(4);
    s.weight("w", &[4, 4])
        .node("MatMul", &["x", "w"], "a", vec![])
        .node("MatMul", &["a", "w"], "b", vec![])
        .node("Transpose", &["w"], "wt", vec![])
        .node("MatMul", &["b", "wt"], "c", vec![]);
    let err = MlpView::find(s.output("c")).unwrap_err().to_string();
    assert!(
        err.contains("weight 'w' is shared with other nodes"),
        "{err}"
    );
    assert!(err.contains("weight 'wt' is computed at run time"), "{err}");
}

#[test]
fn malformed_attributes_and_widths_are_errors_naming_the_node() {
    let mut s = torch_like();
    s.g.nodes[0].attributes = vec![int("transB", 7)];
    let err = MlpView::find(s.output("p")).unwrap_err().to_string();
    assert!(
        err.contains("node '/z0' (Gemm): attribute transB: expected 0 or 1, got 7"),
        "{err}"
    );

    let mut s = Sketch::new(4);
    s.weight("w0", &[4, 3])
        .weight("w1", &[5, 2])
        .node("MatMul", &["x", "w0"], "h0", vec![])
        .node("MatMul", &["h0", "w1"], "z1", vec![]);
    let err = MlpView::find(s.output("z1")).unwrap_err().to_string();
    assert!(
        err.contains("reads 5 features but the layer before it produces 3"),
        "{err}"
    );
}

fn float(name: &str, v: f32) -> Attribute {
    attr(name, AttrValue::Float(v))
}

#[test]
fn written_back_weights_undo_alpha_and_beta_or_are_refused() {
    // α = 0, β = 0: the stored tensors are ignored; zeros are written, never 0/0.
    let mut s = torch_like();
    s.g.nodes[0]
        .attributes
        .extend([float("alpha", 0.0), float("beta", 0.0)]);
    let g = s.output("p").clone();
    let v = MlpView::find(&g).unwrap();
    let l0 = &v.layers[0];
    let mut patched = g.clone();
    let (w, b) = (Array2::<f32>::zeros((4, 2)), Array1::<f32>::ones(2));
    l0.write_back(&mut patched, &w, Some(&b)).unwrap();
    for name in ["w0", "b0"] {
        let t = patched.stored(name).unwrap().as_f32().unwrap().to_vec();
        assert!(t.iter().all(|&x| x == 0.0), "{name}: {t:?}");
    }
    assert_eq!(patched.stored("w0").unwrap().dims, vec![2, 4]);

    // α = 0.5: the stored weight is twice the effective one.
    let mut s = torch_like();
    s.g.nodes[0].attributes.push(float("alpha", 0.5));
    let g = s.output("p").clone();
    let v = MlpView::find(&g).unwrap();
    let mut patched = g.clone();
    let w = Array2::from_elem((4, 3), 0.25f32);
    v.layers[0].write_back(&mut patched, &w, None).unwrap();
    let stored = patched.stored("w0").unwrap().as_f32().unwrap().to_vec();
    assert!(stored.iter().all(|&x| x == 0.5), "{stored:?}");
    assert_eq!(v.layers[0].weight_matrix(&patched), w);

    // A tiny α would store infinity: refused, naming the tensor.
    let mut s = torch_like();
    s.g.nodes[0].attributes.push(float("alpha", 1e-30));
    let g = s.output("p").clone();
    let v = MlpView::find(&g).unwrap();
    let mut patched = g.clone();
    let w = Array2::from_elem((4, 3), 1e10f32);
    let err = v.layers[0]
        .write_back(&mut patched, &w, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("'w0'") && err.contains("NaN or infinity"),
        "{err}"
    );
}
