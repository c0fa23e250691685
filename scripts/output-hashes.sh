#!/usr/bin/env bash
# Records (`record`) or checks (`check`, the default) the SHA-256 of the models finetune, prune and
# compress write from the bundled models with fixed seeds, engine and threads, so that a change
# meant to keep behaviour (a refactor) can show it writes the same bytes. The recorded hashes are
# in scripts/output-hashes.txt with the commit they were recorded at.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-check}"
cargo build --release --quiet
bin=target/release/bean-onnx
out=target/output-hashes
rm -rf "$out" && mkdir -p "$out"
common=(--engine tract --threads 1)
digits=models/digits-torch
sk=models/digits-sklearn
lenet=models/fashion-lenet
run() { "$bin" "$@" "${common[@]}" --json >/dev/null; }

run finetune $digits/model-legacy.onnx --data $digits/train.npz --val $digits/test.npz -o $out/ft-legacy.onnx --epochs 2 --seed 1
run finetune $digits/model-dynamo.onnx --data $digits/train.npz -o $out/ft-dynamo.onnx --epochs 2 --seed 2 --optimizer sgd
run finetune $sk/model.onnx --data $sk/train.npz -o $out/ft-sklearn.onnx --epochs 2 --bean 2 --seed 3
run finetune $lenet/model.onnx --data $lenet/test.npz -o $out/ft-lenet.onnx --epochs 1 --reg l1 --seed 4
run prune $digits/model-legacy.onnx --data $digits/train.npz -o $out/pr-legacy.onnx --ratio 0.5
run prune $digits/model-dynamo.onnx --data $digits/train.npz -o $out/pr-dynamo.onnx --ratio 0.4 --inputs
run prune $sk/model.onnx --data $sk/train.npz -o $out/pr-sklearn.onnx --ratio 0.3 --no-merge --allocation global
run prune $lenet/model.onnx --data $lenet/test.npz -o $out/pr-lenet.onnx --ratio 0.7 --method magnitude
run prune $digits/model-legacy.onnx --data $digits/train.npz --val $digits/test.npz -o $out/search-legacy.onnx --max-accuracy-drop 1 --heal-epochs 1
run compress $digits/model-dynamo.onnx --data $digits/train.npz --test $digits/test.npz -o $out/cmp-dynamo.onnx --epochs 1 --max-accuracy-drop 2

( cd "$out" && sha256sum -- *.onnx *.data | sort -k2 ) > "$out/hashes.txt"
recorded=scripts/output-hashes.txt
if [ "$mode" = record ]; then
  { echo "# recorded at $(git rev-parse --short HEAD) by scripts/output-hashes.sh record"; cat "$out/hashes.txt"; } > "$recorded"
  echo "recorded $(wc -l < "$out/hashes.txt") hashes in $recorded"
else
  if diff <(grep -v '^#' "$recorded") "$out/hashes.txt"; then
    echo "same bytes as $(head -1 "$recorded" | sed 's/# recorded at //')"
  else
    echo "outputs differ from $recorded (lines above)" >&2
    exit 1
  fi
fi
