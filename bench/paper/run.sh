#!/usr/bin/env bash
# The experiment suite of issue 11 (BEAN's three claims, measured with seeds against tuned
# baselines): reproduces every table and figure and writes docs/EVIDENCE.md.
#
#   bench/paper/run.sh [--quick] [--jobs N]
#
# The binary is $BEAN_ONNX_BIN (default target/release/bean-onnx; build it first). Finished
# cells are cached in bench/paper/cells/ (delete a file to recompute it), so an interrupted run
# resumes. Everything runs under nice 10. --quick: 3 seeds, fewer epochs (< 15 min on 2 cores);
# the full run: 5 seeds (10 for few-shot) (< 90 min).
set -euo pipefail
cd "$(dirname "$0")/../.."
export BEAN_ONNX_BIN="${BEAN_ONNX_BIN:-$PWD/target/release/bean-onnx}"
if [ ! -x "$BEAN_ONNX_BIN" ]; then
  echo "no bean-onnx binary at $BEAN_ONNX_BIN: cargo build --release, or set BEAN_ONNX_BIN" >&2
  exit 1
fi
export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$(scripts/setup-ort.sh)}"
fashion=$(scripts/fashion-data.sh)
.venv/bin/python -m unittest discover -s bench/paper -p 'test_*.py'
exec nice -n 10 .venv/bin/python bench/paper/driver.py --fashion-dir "$fashion" "$@"
