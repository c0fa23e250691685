"""How often compress's gate passes when the search chooses among many candidates (issue 11, item 6).

compress's search takes the largest cut whose VAL drop plus a paired margin (z = 1.645 for one
candidate) and the bootstrap estimate ω of the choice's optimism stays within the budget. This
script measures how well that holds where it matters, on an independent gate: the
demo's command (bundled LeNet-300-100, full Fashion-MNIST training split, budget 1 point) on
--splits random halvings of the 10k test split into VAL and TEST (seeded permutations), and
prints, per split, the cut, the VAL drop, its margin, the TEST drop and the gate's verdict, then
the mean and spread of TEST drop − VAL drop (the selection's optimism plus the halves' noise).

Usage: .venv/bin/python bench/paper/gate_splits.py [--splits 5]   (after cargo build --release;
needs ORT_DYLIB_PATH, e.g. export ORT_DYLIB_PATH=$(scripts/setup-ort.sh))
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("BEAN_ONNX_BIN", str(ROOT / "target/release/bean-onnx"))
MODEL = ROOT / "models/fashion-lenet/model.onnx"
TEST = ROOT / "models/fashion-lenet/test.npz"
OUT = ROOT / "target/paper/gate_splits"
BUDGET = 1.0


def halves(seed):
    """VAL and TEST: the 10k test rows permuted with `seed`, first half and second half."""
    d = np.load(TEST)
    order = np.random.RandomState(seed).permutation(len(d["y"]))
    paths = []
    for name, rows in (("val", order[: len(order) // 2]), ("test", order[len(order) // 2:])):
        path = OUT / f"{seed}-{name}.npz"
        np.savez(path, x=d["x"][rows], y=d["y"][rows])
        paths.append(path)
    return paths


def compress(seed, train):
    val, test = halves(seed)
    out, report = OUT / f"{seed}.onnx", OUT / f"{seed}.json"
    out.unlink(missing_ok=True)
    r = subprocess.run([BIN, "compress", str(MODEL), "--data", str(train), "--val", str(val), "--test", str(test),
                        "-o", str(out), "--max-accuracy-drop", str(BUDGET), "--report", str(report)],
                       capture_output=True, text=True)
    if r.returncode not in (0, 3):  # 3: the gate failed, which is what is counted here
        sys.exit(f"compress failed on split {seed}:\n{r.stderr}")
    rep = json.loads(report.read_text())["report"]
    s = rep["search"]
    chosen = next(c for c in s["candidates"] if c["ratio"] == s["chosen_ratio"])
    p = rep["prune"]
    return {"seed": seed, "removed": 1 - p["hidden_after"] / p["hidden_before"],
            "val_drop": 100 * (s["baseline_accuracy"] - s["chosen_accuracy"]), "margin": chosen["margin"],
            "optimism": s.get("optimism"),
            "test_drop": rep["validation"]["accuracy_drop"], "passed": rep["passed"],
            "seconds": rep["seconds"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--splits", type=int, default=5)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    fashion = subprocess.run([str(ROOT / "scripts/fashion-data.sh")], capture_output=True, text=True,
                             check=True).stdout.strip()
    rows = [compress(seed, Path(fashion) / "train.npz") for seed in range(args.splits)]
    (OUT.parent / "gate_splits.json").write_text(json.dumps(rows, indent=1))
    print("| split | removed | VAL drop | margin | ω | TEST drop | gate | s |")
    print("|---|---:|---:|---:|---:|---:|---|---:|")
    for r in rows:
        omega = "–" if r["optimism"] is None else f"{r['optimism']:.2f}"
        print(f"| {r['seed']} | {100 * r['removed']:.0f}% | {r['val_drop']:+.2f} | {r['margin']:.2f} | {omega} | "
              f"{r['test_drop']:+.2f} | {'passed' if r['passed'] else 'FAILED'} | {r['seconds']:.0f} |")
    gap = [r["test_drop"] - r["val_drop"] for r in rows]
    print(f"\ngate passed {sum(r['passed'] for r in rows)}/{len(rows)}; TEST drop − VAL drop: mean "
          f"{statistics.mean(gap):+.2f}, sd {statistics.stdev(gap) if len(gap) > 1 else 0:.2f} points; "
          f"largest TEST drop {max(r['test_drop'] for r in rows):+.2f}")


if __name__ == "__main__":
    main()
