"""Does the default BEAN fine-tune (`--alpha auto`) keep validation accuracy within a point on
models trained from scratch, not only on the bundled ones? (issue 11, item 7)

For each seed, an MLP is trained from a seeded random initialisation (`mlp.py`) with no
regularizer, as a user's own model would be, then fine-tuned with `bean-onnx finetune`'s defaults
(BEAN-1, α auto, its default epochs), both choosing the best epoch on the same validation rows.
Data are the suite's splits (bench/paper/run.sh makes them): Fashion-MNIST 784-300-100-10 on
the 54k fit rows, validation 6k; scikit-learn digits 64-64-32-10 on the 957-row pool, validation
300. Prints validation accuracy before and after the fine-tune, per seed.

Usage: .venv/bin/python bench/paper/scratch_then_finetune.py [--seeds 3]   (after run.sh has made
target/paper/data; needs ORT_DYLIB_PATH)
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mlp  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("BEAN_ONNX_BIN", str(ROOT / "target/release/bean-onnx"))
DATA = ROOT / "target/paper/data"
OUT = ROOT / "target/paper/scratch_then_finetune"
# (sizes, input scale, training data, from-scratch epochs and batch)
SETS = {
    "fashion": ([784, 300, 100, 10], 255.0, DATA / "fashion/fit.npz", DATA / "fashion/val.npz", 8, 128),
    "digits": ([64, 64, 32, 10], None, DATA / "digits/pool.npz", DATA / "digits/val.npz", 100, 32),
}


def bean(args):
    r = subprocess.run([BIN] + [str(a) for a in args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"bean-onnx {' '.join(map(str, args[:2]))} failed:\n{r.stderr}")
    return json.loads(r.stdout)


def one(name, seed):
    sizes, scale, fit, val, epochs, batch = SETS[name]
    init, trained, tuned = (OUT / f"{name}-{seed}-{s}.onnx" for s in ("init", "trained", "tuned"))
    mlp.write_mlp(str(init), sizes, seed, scale)
    bean(["finetune", init, "--data", fit, "--val", val, "-o", trained, "--bean", "off", "--epochs", epochs,
          "--batch-size", batch, "--seed", seed, "--json"])
    ft = bean(["finetune", trained, "--data", fit, "--val", val, "-o", tuned, "--seed", seed, "--json"])
    return {"set": name, "seed": seed, "before": 100 * ft["initial_val_accuracy"],
            "after": 100 * ft["val_accuracy"], "alpha": ft["alpha"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    rows = [one(name, seed) for name in SETS for seed in range(args.seeds)]
    (OUT.parent / "scratch_then_finetune.json").write_text(json.dumps(rows, indent=1))
    print("| data | seed | validation before | after the default BEAN fine-tune | change | α auto |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['set']} | {r['seed']} | {r['before']:.2f} | {r['after']:.2f} | {r['after'] - r['before']:+.2f} | "
              f"{r['alpha']:.3g} |")


if __name__ == "__main__":
    main()
