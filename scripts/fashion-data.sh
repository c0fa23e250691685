#!/usr/bin/env bash
# Builds the full Fashion-MNIST training split (60k) as target/data/fashion/{train,test}.npz from
# Debian's dataset-fashion-mnist package (installed here when missing). Prints the folder.
set -euo pipefail
cd "$(dirname "$0")/.."
src=/usr/share/datasets/fashion-mnist
out=target/data/fashion
if [ ! -f "$src/train-images-idx3-ubyte.gz" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "Fashion-MNIST is missing: run 'sudo apt-get install dataset-fashion-mnist'" >&2
    exit 1
  fi
  echo "installing Fashion-MNIST (Debian package dataset-fashion-mnist)" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >&2
fi
if [ ! -f "$out/train.npz" ]; then
  mkdir -p "$out"
  scripts/setup-ort.sh >/dev/null  # the venv with numpy
  echo "building $out/train.npz from the Fashion-MNIST training split" >&2
  .venv/bin/python models/fashion-lenet/fetch_data.py "$out" --src "$src" >&2
fi
if [ ! -f "$out/holdout.npz" ]; then
  # The 10k test split in two halves: val.npz (even rows) to choose a cut, holdout.npz (odd rows)
  # to gate it on data the choice never saw.
  scripts/setup-ort.sh >/dev/null  # the venv with numpy
  .venv/bin/python - "$out" <<'PY'
import sys, numpy as np
d = np.load("models/fashion-lenet/test.npz"); out = sys.argv[1]
np.savez_compressed(f"{out}/val.npz", x=d["x"][0::2], y=d["y"][0::2])
np.savez_compressed(f"{out}/holdout.npz", x=d["x"][1::2], y=d["y"][1::2])
PY
fi
echo "$PWD/$out"
