#!/usr/bin/env bash
# The main job on a bundled real model (LeNet-300-100 on Fashion-MNIST, exported by PyTorch):
# installs ONNX Runtime (PyPI wheel), builds, then inspects the model and evaluates it on the
# 10k test split with both engines.
set -euo pipefail
cd "$(dirname "$0")/.."
ORT_DYLIB_PATH="$(scripts/setup-ort.sh)"
export ORT_DYLIB_PATH
cargo build --release --quiet
bin=target/release/bean-onnx
model=models/fashion-lenet/model.onnx
test=models/fashion-lenet/test.npz
set -x
"$bin" inspect "$model"
"$bin" eval "$model" --data "$test" --engine tract
"$bin" eval "$model" --data "$test" --engine ort
