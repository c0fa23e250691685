"""Helpers shared by the model scripts in models/*/make.py (numpy + onnx + onnxruntime only).

Nothing here trains anything: it records versions, evaluates an exported model with onnxruntime
(CPUExecutionProvider) on the committed test data, and writes model.json.
"""
import hashlib
import json
import os
import platform
import sys

import numpy as np


def versions(*mods):
    """Versions of python, numpy, onnx, onnxruntime and the given extra module names."""
    import importlib

    out = {"python": platform.python_version()}
    for name in ("numpy", "onnx", "onnxruntime") + tuple(mods):
        m = importlib.import_module(name)
        out[name] = getattr(m, "__version__", "?")
    return out


def print_versions(v):
    for k, val in v.items():
        print(f"  {k:14s} {val}")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def ort_session(path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def ort_predict(path, x, output_index=0):
    """Run the model with onnxruntime on x and return the class predictions (int64).

    The output at `output_index` is either a label tensor (int64, shape [N]) or a score tensor
    [N, C] (argmax over C), or a ZipMap list of dicts.
    """
    sess = ort_session(path)
    inp = sess.get_inputs()[0]
    feed_dtype = {"tensor(float)": np.float32, "tensor(double)": np.float64}.get(inp.type)
    xin = x.astype(feed_dtype) if feed_dtype is not None else x
    out = sess.run(None, {inp.name: xin})[output_index]
    if isinstance(out, list):  # ZipMap: list of {class: prob}
        keys = sorted(out[0].keys())
        out = np.array([[d[k] for k in keys] for d in out], dtype=np.float32)
    out = np.asarray(out)
    if out.ndim == 2:
        return out.argmax(axis=1).astype(np.int64)
    return out.astype(np.int64)


def ort_accuracy(path, x, y, output_index=0):
    pred = ort_predict(path, x, output_index)
    return float((pred == y).mean())


def io_signature(path):
    """Input/output names, element types and shapes as onnxruntime reports them."""
    sess = ort_session(path)
    sig = lambda vs: [{"name": v.name, "type": v.type, "shape": [d if d is not None else "?" for d in v.shape]} for v in vs]
    return {"inputs": sig(sess.get_inputs()), "outputs": sig(sess.get_outputs())}


def op_sequence(path):
    """Node op types in graph order (no external data loaded)."""
    import onnx

    m = onnx.load(path, load_external_data=False)
    return [(n.domain + "." if n.domain not in ("", "ai.onnx") else "") + n.op_type for n in m.graph.node]


def describe(path):
    """Print a human-readable summary of the model: IR/opsets, nodes, initializer storage."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(path, load_external_data=False)
    print(f"--- {os.path.basename(path)}: ir_version={m.ir_version} opsets="
          f"{[(o.domain or 'ai.onnx', o.version) for o in m.opset_import]} producer={m.producer_name} {m.producer_version}")
    for i in m.graph.input:
        print("  input ", i.name, onnx.helper.printable_type(i.type))
    for o in m.graph.output:
        print("  output", o.name, onnx.helper.printable_type(o.type))
    for n in m.graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in attrs.items()
                 if not isinstance(v, (onnx.TensorProto, onnx.GraphProto))}
        print(f"  node {n.op_type:22s} {list(n.input)} -> {list(n.output)} {attrs if attrs else ''}")
    for t in m.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            where = "external " + str({e.key: e.value for e in t.external_data})
        elif t.raw_data:
            where = "raw_data"
        else:
            fields = [f.name for f, _ in t.ListFields() if f.name.endswith("_data")]
            where = ",".join(fields) or "empty"
        print(f"  init {t.name:28s} {onnx.TensorProto.DataType.Name(t.data_type):7s} dims={list(t.dims)} in {where}")


def save_npz(path, x, y):
    y = np.asarray(y, dtype=np.int64)
    np.savez_compressed(path, x=x, y=y)
    print(f"  wrote {path}: x {x.dtype}{list(x.shape)} y {y.dtype}{list(y.shape)} ({os.path.getsize(path)} bytes)")


def write_record(folder, record):
    path = os.path.join(folder, "model.json")
    with open(path, "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    print(f"  wrote {path}")
