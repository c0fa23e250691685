#!/usr/bin/env bash
# The main job on a bundled real model (LeNet-300-100 on Fashion-MNIST, exported by PyTorch):
# installs ONNX Runtime (PyPI wheel) and the Fashion-MNIST training split (Debian package),
# builds, inspects and evaluates the model, fine-tunes it with BEAN-1 and evaluates the result.
set -euo pipefail
cd "$(dirname "$0")/.."
ORT_DYLIB_PATH="$(scripts/setup-ort.sh)"
export ORT_DYLIB_PATH
data="$(scripts/fashion-data.sh)"
cargo build --release --quiet
bin=target/release/bean-onnx
model=models/fashion-lenet/model.onnx
test=models/fashion-lenet/test.npz
out=target/demo
mkdir -p "$out"
set -x
"$bin" inspect "$model"
"$bin" eval "$model" --data "$test" --engine tract
"$bin" finetune "$model" --data "$data/train.npz" --val "$test" -o "$out/lenet-bean.onnx" \
  --bean 1 --epochs 3 --metrics "$out/lenet-bean.metrics.jsonl"
"$bin" eval "$out/lenet-bean.onnx" --data "$test" --engine ort
