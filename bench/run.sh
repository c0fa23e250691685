#!/usr/bin/env bash
# Step benchmark: bean-onnx (ort) and PyTorch doing the same steps, in paired blocks
# (bench/paired.py: the two peers' blocks alternate, and every ratio is taken within a round).
# Needs a Python with torch for the peer: PYTHON=/path/to/python (without it, bean-onnx only).
# Extra arguments go to bench/paired.py (e.g. --models lenet --blocks 5 --engines ort,tract).
# Every block goes to target/bench/paired.jsonl and the markdown table to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
ORT_DYLIB_PATH="$(scripts/setup-ort.sh)"
export ORT_DYLIB_PATH
cargo bench --bench step --no-run
torch=()
if [ -n "${PYTHON:-}" ]; then torch=(--torch-python "$PYTHON"); fi
python3 bench/paired.py "${torch[@]}" "$@"
