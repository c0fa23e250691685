#!/usr/bin/env bash
# Step benchmark: bean-onnx (ort, tract) and PyTorch doing the same BEAN-1 step, side by side.
# Needs a Python with torch for the peer: PYTHON=/path/to/python (default: python3).
# Run it on a quiet machine; results go to target/bench/*.jsonl and a markdown table to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${THREADS:-2}"
out=target/bench
mkdir -p "$out"
ORT_DYLIB_PATH="$(scripts/setup-ort.sh)"
export ORT_DYLIB_PATH
cargo bench --bench step -- --threads "$threads" "$@" | grep '^{' > "$out/bean-onnx.jsonl"
"${PYTHON:-python3}" bench/torch_step.py --threads "$threads" > "$out/pytorch.jsonl"
python3 bench/report.py "$out/bean-onnx.jsonl" "$out/pytorch.jsonl"
