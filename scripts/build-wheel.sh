#!/usr/bin/env bash
# Builds the bean-onnx wheel (the release binary packaged by maturin, checked by maturin's
# manylinux audit) into dist/ and prints the wheel's path. Usage: wheel=$(scripts/build-wheel.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
maturin_version="1.16.0"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv >&2
fi
if ! .venv/bin/python -c "import importlib.metadata as m, sys; sys.exit(m.version('maturin') != '$maturin_version')" 2>/dev/null; then
  echo "installing maturin $maturin_version into .venv" >&2
  .venv/bin/pip install --quiet --disable-pip-version-check "maturin==$maturin_version" >&2
fi
echo "building the wheel (the release build takes about 5 minutes on 2 cores when nothing is cached)" >&2
rm -rf dist
.venv/bin/maturin build --release --locked --out dist >&2
ls dist/bean_onnx-*.whl
