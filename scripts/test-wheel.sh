#!/usr/bin/env bash
# The wheel as a user gets it: builds it, installs it into a fresh virtual environment (which
# pulls the `onnxruntime` package), and runs inspect, eval with ONNX Runtime and a short compress
# of the bundled digits model from there — the venv not activated, no ORT_DYLIB_PATH, and no
# Python fallback, so ONNX Runtime must be found beside the installed command.
set -euo pipefail
cd "$(dirname "$0")/.."
wheel="$(scripts/build-wheel.sh)"
venv="$(mktemp -d)"
out="$(mktemp -d)"
trap 'rm -rf "$venv" "$out"' EXIT
echo "installing $wheel into a fresh virtual environment"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "$wheel"
model=models/digits-sklearn/model.onnx
bean() { env -u ORT_DYLIB_PATH -u VIRTUAL_ENV BEAN_ONNX_PYTHON=/bin/false "$venv/bin/bean-onnx" "$@"; }
fail() { echo "wheel test FAILED: $*" >&2; exit 1; }

version="$(bean --version)"
echo "$version"
grep -q "^bean-onnx $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)$" <<<"$version" \
  || fail "--version does not print the crate's version"
grep -q "^ONNX Runtime 1\.[0-9]*\.[0-9]* ($venv/lib/python3[^/]*/site-packages/onnxruntime/capi/" <<<"$version" \
  || fail "--version does not name the venv's ONNX Runtime"

# Captured first: `bean … | grep -q` under pipefail fails whenever grep quits before bean has
# written everything (bean then dies of SIGPIPE, as Unix tools do).
inspected="$(bean inspect "$model")"
grep -q "dense" <<<"$inspected" || fail "inspect printed no dense layers"
eval_json="$(bean eval "$model" --data models/digits-sklearn/test.npz --engine ort --json)"
python3 - "$eval_json" <<'PY' || fail "eval --engine ort"
import json, sys
r = json.loads(sys.argv[1])
assert r["engine"].startswith("ort "), r
assert r["samples"] > 0 and 0.9 < r["accuracy"] <= 1.0, r
PY
bean compress "$model" --data models/digits-sklearn/train.npz --test models/digits-sklearn/test.npz \
  -o "$out/small.onnx" --epochs 1 --heal-epochs 1 --engine ort --max-accuracy-drop 5 \
  --report "$out/report.json" --json >/dev/null || fail "compress exited $?"
python3 - "$out/report.json" <<'PY' || fail "compress report"
import json, sys
r = json.load(open(sys.argv[1]))["report"]
assert r["passed"], r.get("reason")
v = r["validation"]
assert v["candidate"]["params"] < v["original"]["params"], v
PY
[ -s "$out/small.onnx" ] || fail "compress wrote no model"
echo "wheel test passed: inspect, eval --engine ort and compress from a fresh venv"
