#!/usr/bin/env bash
# Step benchmark: bean-onnx (ort, tract) and PyTorch doing the same BEAN-1 step, side by side.
# Needs a Python with torch for the peer: PYTHON=/path/to/python (default: python3).
# The two run in alternating rounds (ROUNDS, default 3: bean-onnx, PyTorch, bean-onnx, …) so a
# noisy neighbour slows both alike; the table gives each figure's median over the rounds.
# Results go to target/bench/*.jsonl and a markdown table to stdout. Extra arguments go to
# `cargo bench --bench step` (e.g. --engines ort,ort-graph,ort-bound,tract).
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${THREADS:-2}"
rounds="${ROUNDS:-3}"
out=target/bench
mkdir -p "$out"
ORT_DYLIB_PATH="$(scripts/setup-ort.sh)"
export ORT_DYLIB_PATH
cargo bench --bench step --no-run
: > "$out/bean-onnx.jsonl"
: > "$out/pytorch.jsonl"
for round in $(seq "$rounds"); do
  echo "round $round of $rounds" >&2
  cargo bench --bench step -- --threads "$threads" "$@" | grep '^{' >> "$out/bean-onnx.jsonl"
  "${PYTHON:-python3}" bench/torch_step.py --threads "$threads" >> "$out/pytorch.jsonl"
done
python3 bench/report.py "$out/bean-onnx.jsonl" "$out/pytorch.jsonl"
