#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs ONNX Runtime (PyPI wheel) for the ort
# engine and the cross-engine tests and Fashion-MNIST's training split (Debian package), then
# checks formatting and lints, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
ORT_DYLIB_PATH="$(scripts/setup-ort.sh)"
export ORT_DYLIB_PATH
echo "ONNX Runtime: $ORT_DYLIB_PATH"
BEAN_ONNX_FASHION_DIR="$(scripts/fashion-data.sh)"
export BEAN_ONNX_FASHION_DIR
cargo fmt --all -- --check
cargo clippy --release --all-targets -- -D warnings
cargo test --release
