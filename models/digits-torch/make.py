"""digits-torch: PyTorch MLP 64-128-64-10 (Linear+bias, ReLU, logits out) on sklearn's digits,
exported twice: with the legacy TorchScript exporter and with the dynamo exporter.

Run from the repository root:  python models/digits-torch/make.py
Writes model-legacy.onnx, model-dynamo.onnx + model-dynamo.onnx.data, train.npz, test.npz
(the same split as models/digits-sklearn, asserted equal when that folder's files exist) and
model.json into this folder.
"""
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.dirname(HERE)
sys.path.insert(0, MODELS)
sys.path.insert(0, os.path.join(MODELS, "digits-sklearn"))
import common  # noqa: E402
from make import digits_split  # noqa: E402  (models/digits-sklearn/make.py)

SEED = 0
EPOCHS = 60
BATCH = 64
LR = 1e-3
LEGACY_OPSET = 20


def build():
    import torch
    from torch import nn

    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))


def main():
    import onnx
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    v = common.versions("torch", "onnxscript", "onnx_ir", "sklearn")
    print("versions:")
    common.print_versions(v)

    x_train, x_test, y_train, y_test = digits_split()
    sk = os.path.join(MODELS, "digits-sklearn")
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        other = os.path.join(sk, f"{split}.npz")
        if os.path.exists(other):
            d = np.load(other)
            assert np.array_equal(d["x"], x) and np.array_equal(d["y"], y), f"{split} split differs from digits-sklearn"
        common.save_npz(os.path.join(HERE, f"{split}.npz"), x, y)

    model = build()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    g = torch.Generator().manual_seed(SEED)
    t0 = time.time()
    for epoch in range(EPOCHS):
        model.train()
        perm = torch.randperm(len(xt), generator=g)
        for i in range(0, len(xt), BATCH):
            idx = perm[i:i + BATCH]
            loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(x_test))
    torch_acc = float((logits.argmax(1).numpy() == y_test).mean())
    print(f"trained {EPOCHS} epochs in {time.time() - t0:.1f}s, last batch loss {loss.item():.4f}, torch test accuracy {torch_acc:.4f}")

    example = torch.from_numpy(x_test[:4])
    files = {}

    # 1. legacy TorchScript exporter
    path = os.path.join(HERE, "model-legacy.onnx")
    torch.onnx.export(model, (example,), path, dynamo=False, opset_version=LEGACY_OPSET,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    files["model-legacy.onnx"] = {
        "exporter": f"torch.onnx.export(model, (x,), path, dynamo=False, opset_version={LEGACY_OPSET}, input_names=['input'], output_names=['logits'], dynamic_axes={{'input': {{0: 'batch'}}, 'logits': {{0: 'batch'}}}})",
    }

    # 2. dynamo exporter, default settings apart from the dynamic batch dimension
    path = os.path.join(HERE, "model-dynamo.onnx")
    for p in (path, path + ".data"):
        if os.path.exists(p):
            os.remove(p)
    batch = torch.export.Dim("batch")
    prog = torch.onnx.export(model, (example,), dynamo=True, dynamic_shapes=({0: batch},))
    prog.save(path, external_data=True)
    files["model-dynamo.onnx"] = {
        "exporter": "prog = torch.onnx.export(model, (x,), dynamo=True, dynamic_shapes=({0: torch.export.Dim('batch')},)); prog.save(path, external_data=True)",
        "external_data_file": "model-dynamo.onnx.data",
    }

    for fname, info in files.items():
        path = os.path.join(HERE, fname)
        onnx.checker.check_model(path)
        common.describe(path)
        sess = common.ort_session(path)
        out = sess.run(None, {sess.get_inputs()[0].name: x_test})[0]
        maxdiff = float(np.abs(out - logits.numpy()).max())
        acc = common.ort_accuracy(path, x_test, y_test)
        print(f"  onnxruntime accuracy {acc:.4f} on {len(y_test)} test samples; max |ort - torch| = {maxdiff:.2e}")
        m = onnx.load(path, load_external_data=False)
        info.update({
            "ir_version": m.ir_version,
            "opsets": {(o.domain or "ai.onnx"): o.version for o in m.opset_import},
            "ort_accuracy": acc,
            "max_abs_diff_vs_torch": maxdiff,
            "io": common.io_signature(path),
            "ops": common.op_sequence(path),
            "sha256": common.sha256(path),
        })
        if "external_data_file" in info:
            info["external_tensors"] = [t.name for t in m.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
            info["inline_tensors"] = [t.name for t in m.graph.initializer if t.data_location != onnx.TensorProto.EXTERNAL]
            info["external_data_sha256"] = common.sha256(path + ".data")

    accs = {f: i["ort_accuracy"] for f, i in files.items()}
    assert len(set(accs.values())) == 1, accs
    record = {
        "name": "digits-torch",
        "made_by": "python models/digits-torch/make.py",
        "versions": v,
        "seed": SEED,
        "data": {
            "source": "sklearn.datasets.load_digits, x = data / 16 as float32, same split as ../digits-sklearn",
            "split": "train_test_split(test_size=0.3, stratify=y, random_state=0)",
            "train": "train.npz (x float32 [1257, 64], y int64) — identical copy of ../digits-sklearn/train.npz",
            "test": "test.npz (x float32 [540, 64], y int64) — identical copy of ../digits-sklearn/test.npz",
            "format": "np.savez_compressed, arrays x and y",
        },
        "architecture": "64-128-64-10: Linear(64,128)+ReLU, Linear(128,64)+ReLU, Linear(64,10); output = logits (no softmax)",
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "training": f"torch.manual_seed({SEED}); Adam lr={LR}, batch {BATCH}, {EPOCHS} epochs, cross-entropy, torch.set_num_threads(1)",
        "torch_accuracy": torch_acc,
        "ort_accuracy": accs["model-legacy.onnx"],
        "ort_provider": "CPUExecutionProvider",
        "test_samples": int(len(y_test)),
        "files": files,
    }
    common.write_record(HERE, record)


if __name__ == "__main__":
    main()
