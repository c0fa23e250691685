#!/usr/bin/env bash
# Installs ONNX Runtime's shared library from the `onnxruntime` PyPI wheel into ./.venv (once)
# and prints the library's path. Usage: ORT_DYLIB_PATH=$(scripts/setup-ort.sh)
# Set BEAN_ONNX_ORT_PACKAGE=onnxruntime-gpu for the CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
package="${BEAN_ONNX_ORT_PACKAGE:-onnxruntime}"
version="1.31.1"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv >&2
fi
if ! .venv/bin/python -c "import importlib.metadata as m, sys; sys.exit(m.version('$package') != '$version')" 2>/dev/null; then
  echo "installing $package $version and numpy into .venv" >&2
  .venv/bin/pip install --quiet --disable-pip-version-check "$package==$version" numpy >&2
fi
lib=$(ls .venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so* | sort | tail -n 1)
echo "$PWD/${lib}"
