#!/usr/bin/env python3
"""Pruning evidence: LeNet-300-100 on Fashion-MNIST (full 60k train / 10k test) with hidden neurons
removed at 50/60/70/80 %, for magnitude pruning and for assembly pruning after fine-tuning with no
regularizer, L1, group lasso, BEAN-1 and BEAN-2; then digits 64-(8x32)-10 compressed with a zero
accuracy budget. Prints markdown tables. Standard library only; drives target/release/bean-onnx.

Usage: python3 bench/evidence.py   (after scripts/fashion-data.sh and cargo build --release;
ORT_DYLIB_PATH set, e.g. export ORT_DYLIB_PATH=$(scripts/setup-ort.sh))
"""
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target/release/bean-onnx")
OUT = os.path.join(ROOT, "target/evidence")
MODEL = os.path.join(ROOT, "models/fashion-lenet/model.onnx")
TEST = os.path.join(ROOT, "models/fashion-lenet/test.npz")
TRAIN = os.path.join(ROOT, "target/data/fashion/train.npz")
RATIOS = [0.5, 0.6, 0.7, 0.8]
EPOCHS = "3"

# (label, fine-tune flags or None for the original model, prune flags)
CONFIGS = [
    ("magnitude (no fine-tune, no data)", None, ["--method", "magnitude"]),
    ("assembly pruning, no fine-tune", None, []),
    ("fine-tune α = 0, then assembly pruning", ["--bean", "off"], []),
    ("fine-tune L1 (1e-5), then assembly pruning", ["--bean", "off", "--reg", "l1", "--reg-weight", "1e-5"], []),
    ("fine-tune group lasso (1e-3), then assembly pruning", ["--bean", "off", "--reg", "group-lasso", "--reg-weight", "1e-3"], []),
    ("fine-tune BEAN-1 (α 0.05), then pruning without merging", ["--bean", "1", "--alpha", "0.05"], ["--no-merge"]),
    ("fine-tune BEAN-1 (α 0.05), then assembly pruning + merging", ["--bean", "1", "--alpha", "0.05"], []),
    ("fine-tune BEAN-2 (α 0.05), then assembly pruning + merging", ["--bean", "2", "--alpha", "0.05"], []),
]


def run(args):
    r = subprocess.run([BIN] + args, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(args)}\n{r.stderr}")
    return json.loads(r.stdout) if r.stdout.strip().startswith("{") else None


def accuracy(model):
    return run(["eval", model, "--data", TEST, "--engine", "ort", "--json"])["accuracy"]


def main():
    os.makedirs(OUT, exist_ok=True)
    base = accuracy(MODEL)
    rows = []
    for i, (label, ft, pr) in enumerate(CONFIGS):
        t0 = time.time()
        src = MODEL
        if ft is not None:
            src = os.path.join(OUT, f"tuned{i}.onnx")
            run(["finetune", MODEL, "--data", TRAIN, "-o", src, "--epochs", EPOCHS, "--engine", "ort", "--seed", "0", "--json"] + ft)
        tuned_acc = accuracy(src)
        accs = []
        for r in RATIOS:
            out = os.path.join(OUT, f"pruned{i}_{int(r * 100)}.onnx")
            run(["prune", src, "-o", out, "--data", TRAIN, "--ratio", str(r), "--json"] + pr)
            accs.append(accuracy(out))
        rows.append((label, tuned_acc, accs, time.time() - t0))
        print(f"{label}: {tuned_acc:.4f} {accs} ({time.time() - t0:.0f} s)", file=sys.stderr)

    print(f"LeNet-300-100 on Fashion-MNIST, test accuracy (10k); original {base:.4f}. "
          f"Fine-tuning: {EPOCHS} epochs, Adam lr 1e-3, batch 128, seed 0, ort; pruning: uniform ratio per hidden layer, "
          "calibration 10k evenly spaced training rows, no fine-tuning after pruning.\n")
    print("| method | before pruning | 50% | 60% | 70% | 80% |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, t, accs, _ in rows:
        print(f"| {label} | {100 * t:.2f} | " + " | ".join(f"{100 * a:.2f}" for a in accs) + " |")
    print("| Neuron Merging (Kim et al. 2020), published, baseline 89.80 | – | 88.69 | – | 82.75 | 80.02 |")
    print("| l1-norm pruning (Kim et al. 2020), published | – | 88.40 | – | 71.26 | 66.76 |")

    # digits 64-(8x32)-10 with a zero accuracy budget.
    d = os.path.join(ROOT, "models/digits-sklearn")
    out = os.path.join(OUT, "digits-compressed.onnx")
    r = subprocess.run([BIN, "compress", os.path.join(d, "model.onnx"), "--data", os.path.join(d, "train.npz"),
                        "--test", os.path.join(d, "test.npz"), "-o", out, "--max-accuracy-drop", "0",
                        "--engine", "ort", "--json"], capture_output=True, text=True)
    rep = json.loads(r.stdout)["report"]
    v = rep["validation"]
    removed = 1 - v["candidate"]["params"] / v["original"]["params"]
    print("\nscikit-learn digits MLP 64-(8x32)-10 (skl2onnx), `compress --max-accuracy-drop 0` "
          f"(exit {r.returncode}):\n")
    print("| | original | compressed |")
    print("|---|---:|---:|")
    print(f"| test accuracy (540) | {100 * v['original']['accuracy']:.2f} | {100 * v['candidate']['accuracy']:.2f} |")
    print(f"| hidden neurons | {rep['prune']['hidden_before']} | {rep['prune']['hidden_after']} |")
    print(f"| params | {v['original']['params']} | {v['candidate']['params']} ({100 * removed:.0f}% removed; onnxsim: 33%) |")
    print(f"| file bytes | {v['original']['file_bytes']} | {v['candidate']['file_bytes']} |")


if __name__ == "__main__":
    main()
