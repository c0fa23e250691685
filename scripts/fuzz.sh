#!/usr/bin/env bash
# The mutation fuzzer of tests/fuzz.rs (ONNX importer with external data, .npz reader,
# checkpoints) run for longer than the suite runs it: scripts/fuzz.sh [MINUTES] (default 10).
# Prints the number of cases, the time and the failures (a failing case aborts with its number;
# BEAN_ONNX_FUZZ_CASE=N cargo test --release --test fuzz reruns it alone).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-10}"
echo "building the fuzzer (release)…" >&2
cargo test --release --test fuzz --no-run
BEAN_ONNX_FUZZ_SECONDS=$((minutes * 60)) cargo test --release --test fuzz -- --nocapture 2>&1 \
  | grep -E "^fuzz:|panicked|test result|case [0-9]+"
