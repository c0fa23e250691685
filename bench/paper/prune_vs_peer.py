"""bean-onnx `prune` against the ONNX-native peer (onnxsim 0.8.1, bench/paper/onnxsim_peer.py) on the
bundled LeNet-300-100, with the peer's protocol: the first --calib-rows Fashion-MNIST training rows
as calibration data, accuracy on the 10k test split, 50 / 70 / 80 % of hidden neurons removed.

bean-onnx rows: assembly pruning with the ridge refit (the default), without it (`--no-refit`:
merges and folded means alone), and the default followed by `--heal-epochs 2` on the full training
split (fine-tuning, which the peer does not do). Prints a markdown table and writes the numbers to
target/paper/prune_vs_peer.json.

Usage: nice -n 10 .venv/bin/python bench/paper/prune_vs_peer.py   (numpy; after cargo build --release; needs
ORT_DYLIB_PATH, e.g. export ORT_DYLIB_PATH=$(scripts/setup-ort.sh))
"""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("BEAN_ONNX_BIN", str(ROOT / "target/release/bean-onnx"))
MODEL = ROOT / "models/fashion-lenet/model.onnx"
TEST = ROOT / "models/fashion-lenet/test.npz"
OUT = ROOT / "target/paper/prune_vs_peer"
RATIOS = [0.5, 0.7, 0.8]
CALIB_ROWS = 10240
VARIANTS = [
    ("bean-onnx prune (refit)", []),
    ("bean-onnx prune --no-refit", ["--no-refit"]),
    ("bean-onnx prune + 2 heal epochs", ["--heal-epochs", "2"]),
]


def bean(args):
    r = subprocess.run([BIN] + args, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"bean-onnx {' '.join(args)} failed:\n{r.stderr}")
    return json.loads(r.stdout)


def calibration_rows(train_dir):
    """The first CALIB_ROWS training rows as an .npz (the peer's calibration data)."""
    import numpy as np

    path = OUT / f"calib-{CALIB_ROWS}.npz"
    if not path.exists():
        d = np.load(Path(train_dir) / "train.npz")
        np.savez(path, x=d["x"][:CALIB_ROWS], y=d["y"][:CALIB_ROWS])
    return path


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    fashion = subprocess.run([str(ROOT / "scripts/fashion-data.sh")], capture_output=True, text=True, check=True).stdout.strip()
    calib = calibration_rows(fashion)
    train = Path(fashion) / "train.npz"
    rows = {}
    for label, flags in VARIANTS:
        accs = []
        for r in RATIOS:
            out = OUT / f"{len(rows)}-{int(r * 100)}.onnx"
            out.unlink(missing_ok=True)
            args = ["prune", str(MODEL), "--data", str(calib), "--ratio", str(r), "-o", str(out), "--json"] + flags
            if "--heal-epochs" in flags:
                # Healing trains on --data: the calibration rows are then the whole training split
                # (--calib-rows keeps the peer's 10,240, evenly spaced).
                args[3] = str(train)
                args += ["--calib-rows", str(CALIB_ROWS)]
            bean(args)
            accs.append(bean(["eval", str(out), "--data", str(TEST), "--json"])["accuracy"])
        rows[label] = accs
    peer = subprocess.run(
        [sys.executable, str(ROOT / "bench/paper/onnxsim_peer.py"), "--ratios", ",".join(map(str, RATIOS)),
         "--calib-rows", str(CALIB_ROWS)],
        capture_output=True, text=True, check=True)
    for e in json.loads(peer.stdout)["entries"]:
        label = f"onnxsim 0.8.1 {e['method']}" + (" + refit" if e["refit"] else "")
        rows.setdefault(label, [None] * len(RATIOS))[RATIOS.index(e["ratio"])] = e["accuracy"]
    (OUT.parent / "prune_vs_peer.json").write_text(json.dumps(rows, indent=1))
    print("| method | " + " | ".join(f"{int(r * 100)}% removed" for r in RATIOS) + " |")
    print("|---|" + "---|" * len(RATIOS))
    for label, accs in rows.items():
        print(f"| {label} | " + " | ".join("-" if a is None else f"{100 * a:.2f}" for a in accs) + " |")


if __name__ == "__main__":
    main()
