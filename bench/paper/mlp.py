"""ONNX MLPs for the paper suite: write a seeded randomly initialised one, read one back, run it.

`write_mlp(path, sizes, seed, input_scale)` writes `[Constant → Div(input, scale) →]
(Gemm(transB=1) → Relu)* → Gemm` with opset 17 and IR 8, the same node pattern as the bundled
LeNet-300-100 (PyTorch's legacy exporter). Initialisation is PyTorch's nn.Linear default: weight
and bias ~ U(−1/√fan_in, 1/√fan_in), drawn with numpy's PCG64 seeded by `seed`.

`read_mlp(path)` returns the input scale (or None) and the dense layers as (W [out, in], b [out])
in float64, for the node patterns written here, by PyTorch's legacy exporter, and by bean-onnx's
finetune/prune (which keep the pattern). `forward(model, x)` returns the hidden activations (after
each Relu) and the logits, in numpy; the suite checks it against onnxruntime (`check_forward`).
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def write_mlp(path, sizes, seed, input_scale=None):
    """Write a ReLU MLP with layer widths `sizes` (input first) initialised from `seed`."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    x = "input"
    if input_scale is not None:
        nodes.append(helper.make_node("Constant", [], ["scale"], value=numpy_helper.from_array(
            np.array(input_scale, dtype=np.float32), "scale_value")))
        nodes.append(helper.make_node("Div", ["input", "scale"], ["scaled"]))
        x = "scaled"
    n_layers = len(sizes) - 1
    for k in range(n_layers):
        fan_in, fan_out = sizes[k], sizes[k + 1]
        bound = 1.0 / np.sqrt(fan_in)
        w = rng.uniform(-bound, bound, size=(fan_out, fan_in)).astype(np.float32)
        b = rng.uniform(-bound, bound, size=(fan_out,)).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"fc{k + 1}.weight"), numpy_helper.from_array(b, f"fc{k + 1}.bias")]
        last = k == n_layers - 1
        y = "logits" if last else f"fc{k + 1}_out"
        nodes.append(helper.make_node("Gemm", [x, f"fc{k + 1}.weight", f"fc{k + 1}.bias"], [y],
                                      alpha=1.0, beta=1.0, transB=1))
        if not last:
            nodes.append(helper.make_node("Relu", [y], [f"relu{k + 1}"]))
            x = f"relu{k + 1}"
    graph = helper.make_graph(
        nodes, "mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", sizes[0]])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", sizes[-1]])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="bench/paper/mlp.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def _constant_value(graph, name):
    for init in graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    for node in graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            return numpy_helper.to_array(helper.get_attribute_value(node.attribute[0]))
    raise KeyError(name)


def read_mlp(path):
    """(input_scale or None, [(W [out, in], b [out]), ...]) of an MLP of Gemm or MatMul+Add layers."""
    g = onnx.load(path).graph
    scale = None
    layers = []
    nodes = list(g.node)
    for i, node in enumerate(nodes):
        if node.op_type == "Div" and not layers:
            scale = float(_constant_value(g, node.input[1]))
        elif node.op_type == "Gemm":
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            w = _constant_value(g, node.input[1]).astype(np.float64)
            w = w if attrs.get("transB", 0) else w.T
            w = w * attrs.get("alpha", 1.0)
            b = _constant_value(g, node.input[2]).astype(np.float64).reshape(-1) * attrs.get("beta", 1.0)
            layers.append((w, b))
        elif node.op_type == "MatMul":
            w = _constant_value(g, node.input[1]).astype(np.float64).T
            add = next(n for n in nodes[i + 1:] if n.op_type == "Add" and node.output[0] in n.input)
            other = [t for t in add.input if t != node.output[0]][0]
            layers.append((w, _constant_value(g, other).astype(np.float64).reshape(-1)))
    return scale, layers


def forward(model, x):
    """(hidden activations after each Relu, logits) for rows `x`, in float64."""
    scale, layers = model
    h = np.asarray(x, dtype=np.float64)
    if scale is not None:
        h = h / scale
    hidden = []
    for k, (w, b) in enumerate(layers):
        h = h @ w.T + b
        if k < len(layers) - 1:
            h = np.maximum(h, 0.0)
            hidden.append(h)
    return hidden, h


def check_forward(path, x, tol=1e-3):
    """Largest |logit difference| between `forward` and onnxruntime on rows `x`; raises above tol."""
    import onnxruntime as ort
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    ref = sess.run(None, {sess.get_inputs()[0].name: np.asarray(x, dtype=np.float32)})[0]
    _, logits = forward(read_mlp(path), x)
    diff = float(np.abs(ref - logits).max())
    if diff > tol:
        raise AssertionError(f"numpy forward of {path} differs from onnxruntime by {diff}")
    return diff
