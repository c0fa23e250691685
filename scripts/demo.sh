#!/usr/bin/env bash
# The main job on a bundled real model (LeNet-300-100 on Fashion-MNIST, exported by PyTorch):
# installs ONNX Runtime (PyPI wheel) and the Fashion-MNIST training split (Debian package),
# builds, and compresses the model in one gated step: BEAN fine-tune → prune and merge within a
# 1-point accuracy budget → heal → validate against the original. Then shows the result.
set -euo pipefail
cd "$(dirname "$0")/.."
ORT_DYLIB_PATH="$(scripts/setup-ort.sh)"
export ORT_DYLIB_PATH
data="$(scripts/fashion-data.sh)"
echo "building bean-onnx (the first release build takes about 5 minutes on 2 cores)" >&2
cargo build --release
bin=target/release/bean-onnx
model=models/fashion-lenet/model.onnx
test=models/fashion-lenet/test.npz
out=target/demo
mkdir -p "$out"
set -x
"$bin" inspect "$model"
# The cut is chosen on one half of the test split and gated on the other half.
"$bin" compress "$model" --data "$data/train.npz" --val "$data/val.npz" --test "$data/holdout.npz" \
  -o "$out/lenet-small.onnx" --max-accuracy-drop 1 --report "$out/report.json"
"$bin" inspect "$out/lenet-small.onnx"
"$bin" validate "$model" "$out/lenet-small.onnx" --data "$test"
"$bin" assemblies "$out/lenet-small.onnx" --plot "$out/assemblies.png"
