#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs ONNX Runtime and onnx (PyPI wheels) for
# the ort engine, the cross-engine tests and the validity oracle, and Fashion-MNIST's training
# split (Debian package), then checks formatting and lints, runs every test, and builds the wheel
# and tries it from a fresh virtual environment.
set -euo pipefail
cd "$(dirname "$0")/.."
ORT_DYLIB_PATH="$(scripts/setup-ort.sh)"
export ORT_DYLIB_PATH
echo "ONNX Runtime: $ORT_DYLIB_PATH"
# The validity oracle of tests/validity.rs: the real onnx package, in the same venv.
if ! .venv/bin/python -c "import importlib.metadata as m, sys; sys.exit(m.version('onnx') != '1.23.2')" 2>/dev/null; then
  echo "installing onnx 1.23.2 into .venv (the validity oracle)"
  .venv/bin/pip install --quiet --disable-pip-version-check onnx==1.23.2
fi
export BEAN_ONNX_ORACLE_PYTHON="$PWD/.venv/bin/python"
BEAN_ONNX_FASHION_DIR="$(scripts/fashion-data.sh)"
export BEAN_ONNX_FASHION_DIR
# The evidence suite's few-shot sampler (bench/paper/fewshot.py): exactly n per class, seeded.
.venv/bin/python -m unittest discover -s bench/paper -p 'test_*.py'
cargo fmt --all -- --check
cargo clippy --release --all-targets -- -D warnings
echo "building and running the tests (the first release build of tract and ort takes about 5 minutes on 2 cores)"
cargo test --release
scripts/test-wheel.sh
