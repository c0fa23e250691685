"""Peer baseline: onnxsim 0.8.1 structured pruning (+ its closed-form ridge refit) on LeNet-300-100.

What it runs, for each ratio r in --ratios (fraction of hidden neurons removed from EACH hidden
layer, i.e. 300/100 -> round(300(1-r))/round(100(1-r)) kept):

  l2     onnxsim.apply_structured_pruning_cpp(model, sparsity=r, importance_norm="l2")
  wanda  onnxsim.apply_structured_wanda_pruning_cpp(model, calibration_data=calib, sparsity=r,
                                                    importance_norm="l2", providers=CPU)
  each with and without
  refit  onnxsim.apply_pruning_finetune(model, pruned, calibration_data=calib, reg_param=1e-2,
                                        providers=CPU)

Calibration data: the first --calib-rows rows of Fashion-MNIST train.npz (from
scripts/fashion-data.sh, or --train), fed as raw 0..255 float32 pixels (the model divides by 255
itself) in batches of --calib-batch rows. Accuracy: onnxruntime CPU on --test (10k test split).
Every pruned model is written to target/paper/onnxsim/<method>-<pct>-<refit|norefit>.onnx and
checked with onnx.checker.check_model(full_check=True). For each refit model the JSON also lists
which initializers the refit actually changed (max |delta| vs the pruned model).

Setup is automatic: the script creates target/paper-venv (python3 -m venv), pip-installs
onnxsim==0.8.1 onnx onnxruntime numpy there if missing, and re-runs itself inside it.

Usage (from anywhere; the machine is shared, so run it niced):
  nice -n 10 python3 bench/paper/onnxsim_peer.py [--ratios 0.5,0.7,0.8] [--calib-rows 10240]
      [--model models/fashion-lenet/model.onnx] [--test models/fashion-lenet/test.npz]
      [--out target/paper/onnxsim/results.json]
Prints one JSON document to stdout (progress goes to stderr).
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / "target" / "paper-venv"
PACKAGES = ["onnxsim==0.8.1", "onnx", "onnxruntime", "numpy"]


def ensure_venv():
    """Re-exec this script inside target/paper-venv, creating/populating it first if needed."""
    py = VENV / "bin" / "python"
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, stdout=sys.stderr)
    probe = "import importlib.metadata as m; assert m.version('onnxsim') == '0.8.1'; import onnxsim, onnxruntime"
    if subprocess.run([str(py), "-c", probe], capture_output=True).returncode != 0:
        print(f"installing {' '.join(PACKAGES)} into {VENV}", file=sys.stderr)
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *PACKAGES],
                       check=True, stdout=sys.stderr)
    os.execv(str(py), [str(py), str(Path(__file__).resolve()), *sys.argv[1:]])


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ratios", default="0.5,0.7,0.8")
    p.add_argument("--methods", default="l2,wanda")
    p.add_argument("--calib-rows", type=int, default=10240)
    p.add_argument("--calib-batch", type=int, default=1024)
    p.add_argument("--reg-param", type=float, default=1e-2, help="apply_pruning_finetune's default")
    p.add_argument("--model", default=str(ROOT / "models/fashion-lenet/model.onnx"))
    p.add_argument("--test", default=str(ROOT / "models/fashion-lenet/test.npz"))
    p.add_argument("--train", help="train.npz (default: the folder scripts/fashion-data.sh prints)")
    p.add_argument("--out-dir", default=str(ROOT / "target/paper/onnxsim"))
    p.add_argument("--out", help="also write the JSON here")
    return p.parse_args()


def main():
    args = parse_args()
    import importlib.metadata as md

    import numpy as np
    import onnx
    import onnxruntime as ort
    import onnxsim

    cpu = ["CPUExecutionProvider"]
    t_start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t_start:7.1f}s] {msg}", file=sys.stderr, flush=True)

    train = args.train
    if train is None:
        folder = subprocess.run(["bash", str(ROOT / "scripts/fashion-data.sh")], check=True,
                                capture_output=True, text=True).stdout.strip().splitlines()[-1]
        train = str(Path(folder) / "train.npz")
    tr = np.load(train)
    calib_x = tr["x"][: args.calib_rows].astype(np.float32)  # raw 0..255; the graph does /255
    te = np.load(args.test)
    test_x, test_y = te["x"].astype(np.float32), te["y"]

    original = onnx.load(args.model)
    input_name = original.graph.input[0].name
    calib = [{input_name: calib_x[i: i + args.calib_batch]} for i in range(0, len(calib_x), args.calib_batch)]

    def accuracy(model):
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        sess = ort.InferenceSession(model.SerializeToString(), so, providers=cpu)
        logits = sess.run(None, {input_name: test_x})[0]
        return float((logits.argmax(1) == test_y).mean())

    def layers(model):
        """[(weight name, out width, in width)] for every Gemm/MatMul, in graph order."""
        inits = {t.name: t for t in model.graph.initializer}
        out = []
        for n in model.graph.node:
            if n.op_type in ("Gemm", "MatMul") and n.input[1] in inits:
                d = list(inits[n.input[1]].dims)
                trans_b = any(a.name == "transB" and a.i for a in n.attribute)
                out.append((n.input[1], d[0] if trans_b else d[1], d[1] if trans_b else d[0]))
        return out

    def changed(before, after):
        """max |delta| per initializer that differs between two same-shaped models."""
        b = {t.name: onnx.numpy_helper.to_array(t) for t in before.graph.initializer}
        res = {}
        for t in after.graph.initializer:
            a = onnx.numpy_helper.to_array(t)
            if t.name in b and a.shape == b[t.name].shape and not np.array_equal(a, b[t.name]):
                res[t.name] = float(np.abs(a.astype(np.float64) - b[t.name]).max())
        return res

    def check(model):
        try:
            onnx.checker.check_model(model, full_check=True)
            return "ok"
        except Exception as e:  # record, don't abort
            return f"{type(e).__name__}: {e}"

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    base_acc = accuracy(original)
    log(f"original accuracy {base_acc:.4f}, layers {layers(original)}")

    prune = {
        "l2": lambda r: onnxsim.apply_structured_pruning_cpp(original, sparsity=r, importance_norm="l2"),
        "wanda": lambda r: onnxsim.apply_structured_wanda_pruning_cpp(
            original, calibration_data=calib, sparsity=r, importance_norm="l2", providers=cpu),
    }
    entries = []
    for method in args.methods.split(","):
        for r in [float(s) for s in args.ratios.split(",")]:
            t0 = time.perf_counter()
            pruned = prune[method](r)
            t_prune = time.perf_counter() - t0
            t0 = time.perf_counter()
            refit = onnxsim.apply_pruning_finetune(original, pruned, calibration_data=calib,
                                                   reg_param=args.reg_param, providers=cpu)
            t_refit = time.perf_counter() - t0
            for is_refit, model in ((False, pruned), (True, refit)):
                path = out_dir / f"{method}-{round(r * 100)}-{'refit' if is_refit else 'norefit'}.onnx"
                onnx.save(model, str(path))
                ls = layers(model)
                e = {
                    "method": method, "ratio": r, "refit": is_refit,
                    "accuracy": accuracy(model),
                    "hidden_widths": [w for _, w, _ in ls[:-1]],
                    "layer_shapes": {name: [o, i] for name, o, i in ls},
                    "params": int(sum(np.prod(t.dims) for t in model.graph.initializer)),
                    "path": str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path),
                    "check_model_full": check(model),
                    "seconds": round(t_refit if is_refit else t_prune, 3),
                }
                if is_refit:
                    e["refit_changed"] = changed(pruned, refit)
                entries.append(e)
                log(f"{method} r={r} refit={is_refit}: acc {e['accuracy']:.4f} widths {e['hidden_widths']}"
                    + (f" changed {e['refit_changed']}" if is_refit else ""))

    result = {
        "peer": "onnxsim 0.8.1",
        "versions": {k: md.version(k) for k in ("onnxsim", "onnx", "onnxruntime", "numpy")},
        "model": args.model, "test": args.test, "train": train,
        "calibration": {"rows": len(calib_x), "source": "first rows of train.npz, raw 0..255 float32",
                        "batch": args.calib_batch, "reg_param": args.reg_param},
        "original": {"accuracy": base_acc, "hidden_widths": [w for _, w, _ in layers(original)[:-1]]},
        "entries": entries,
        "wall_seconds": round(time.perf_counter() - t_start, 1),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    ensure_venv()
    main()
