"""The independent validity oracle for the models bean-onnx writes (used by tests/validity.rs).

For each model of a JSON manifest `[{"model": PATH, "x": NPZ or null, "out": NPZ or null}, ...]`:

1. `onnx.checker.check_model(PATH, full_check=True)`: the schema, every node against its operator
   definition, and strict shape inference comparing every recorded shape with the inferred one;
2. `onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)`;
3. when `x` is given: onnxruntime's value of every float output on the array `x` of that file
   (a ZipMap's rows of {class: probability} as a [N, classes] array), saved to `out` under the
   output names (the caller compares them with tract's).

Prints one JSON line per model: {"model": PATH, "ok": true} or {"model": PATH, "ok": false,
"error": "..."}. Usage: python check_models.py MANIFEST.json
"""
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort

TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64}


def check(entry):
    path = entry["model"]
    onnx.checker.check_model(path, full_check=True)
    model = onnx.load(path)
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    if entry.get("x"):
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        (inp,) = session.get_inputs()
        x = np.load(entry["x"])["x"].astype(TYPES[inp.type])
        names = [o.name for o in session.get_outputs()]
        values = session.run(None, {inp.name: x})
        tensors = {}
        for name, v in zip(names, values):
            if isinstance(v, list) and v and isinstance(v[0], dict):
                # ZipMap: one {class: probability} per row, back to a [N, classes] array.
                v = np.array([[row[k] for k in sorted(row)] for row in v], dtype=np.float32)
            if isinstance(v, np.ndarray) and v.dtype.kind == "f":
                tensors[name] = v
        np.savez(entry["out"], **tensors)


def main():
    with open(sys.argv[1]) as f:
        manifest = json.load(f)
    for entry in manifest:
        try:
            check(entry)
            result = {"model": entry["model"], "ok": True}
        except Exception as e:  # every failure is a finding, reported per model
            result = {"model": entry["model"], "ok": False, "error": f"{type(e).__name__}: {e}"}
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
