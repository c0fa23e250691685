"""fashion-lenet: LeNet-300-100 (784-300-100-10, ReLU, logits out) in PyTorch on Fashion-MNIST,
exported with the legacy TorchScript exporter (opset 17).

Run from the repository root:  python models/fashion-lenet/make.py
Reads the IDX files of the Debian package dataset-fashion-mnist through fetch_data.py (beside this
script), writes test.npz (10k, x uint8 [10000, 784]) if missing, model.onnx and model.json.
train.npz is not needed here and is not committed; `python models/fashion-lenet/fetch_data.py`
builds it.

Input scaling lives in the model: the graph's first op is Div(input, 255), so the model's input is
the raw pixel value 0..255 as float32 (uint8 test data converted to float by value).
"""
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
import common  # noqa: E402
import fetch_data  # noqa: E402

SEED = 0
EPOCHS = 15
BATCH = 128
LR = 1e-3
OPSET = 17


def build():
    import torch
    from torch import nn

    class LeNet300100(nn.Module):
        """Raw pixels 0..255 in, logits out; the /255 scaling is part of the exported graph."""

        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(784, 300)
            self.fc2 = nn.Linear(300, 100)
            self.fc3 = nn.Linear(100, 10)

        def forward(self, x):
            x = x / 255.0
            x = torch.relu(self.fc1(x))
            x = torch.relu(self.fc2(x))
            return self.fc3(x)

    return LeNet300100()


def main():
    import onnx
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    v = common.versions("torch")
    print("versions:")
    common.print_versions(v)

    x_train, y_train = fetch_data.load("train")
    x_test, y_test = fetch_data.load("test")
    test_path = os.path.join(HERE, "test.npz")
    if os.path.exists(test_path):
        d = np.load(test_path)
        assert np.array_equal(d["x"], x_test) and np.array_equal(d["y"], y_test), "test.npz differs from the IDX files"
        print(f"  kept {test_path}")
    else:
        common.save_npz(test_path, x_test, y_test)

    model = build()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    xt = torch.from_numpy(x_train.astype(np.float32))  # raw 0..255, the model divides
    yt = torch.from_numpy(y_train)
    xv = torch.from_numpy(x_test.astype(np.float32))
    g = torch.Generator().manual_seed(SEED)
    history = []
    t0 = time.time()
    for epoch in range(EPOCHS):
        model.train()
        perm = torch.randperm(len(xt), generator=g)
        total = 0.0
        for i in range(0, len(xt), BATCH):
            idx = perm[i:i + BATCH]
            loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        model.eval()
        with torch.no_grad():
            acc = float((model(xv).argmax(1).numpy() == y_test).mean())
        history.append({"epoch": epoch + 1, "train_loss": round(total / len(xt), 5), "test_accuracy": acc})
        print(f"  epoch {epoch + 1:2d} train loss {total / len(xt):.4f} test acc {acc:.4f} ({time.time() - t0:.0f}s)")
    train_seconds = time.time() - t0
    with torch.no_grad():
        logits = model(xv).numpy()
    torch_acc = float((logits.argmax(1) == y_test).mean())

    path = os.path.join(HERE, "model.onnx")
    torch.onnx.export(model, (xv[:4],), path, dynamo=False, opset_version=OPSET,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    onnx.checker.check_model(path)
    common.describe(path)
    sess = common.ort_session(path)
    out = sess.run(None, {"input": x_test.astype(np.float32)})[0]
    maxdiff = float(np.abs(out - logits).max())
    acc = common.ort_accuracy(path, x_test, y_test)
    print(f"  onnxruntime accuracy {acc:.4f} on {len(y_test)} test samples; max |ort - torch| = {maxdiff:.2e}")
    m = onnx.load(path)

    record = {
        "name": "fashion-lenet",
        "made_by": "python models/fashion-lenet/make.py",
        "exporter": f"torch.onnx.export(model, (x,), path, dynamo=False, opset_version={OPSET}, input_names=['input'], output_names=['logits'], dynamic_axes={{'input': {{0: 'batch'}}, 'logits': {{0: 'batch'}}}})",
        "versions": v,
        "seed": SEED,
        "data": {
            "source": "Fashion-MNIST from Debian package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist, IDX gz), read by fetch_data.py",
            "train": "60000 samples; not committed — python models/fashion-lenet/fetch_data.py builds train.npz (x uint8 [60000, 784], y int64)",
            "test": "test.npz: x uint8 [10000, 784] raw pixels 0..255 (28x28 row-major, flattened), y int64 [10000]; np.savez_compressed",
            "input_scaling": "inside the model: first node is Div(input, 255.0); feed raw pixel values converted to float32 by value (0.0..255.0)",
        },
        "architecture": "784-300-100-10 (LeNet-300-100): Div(/255) -> Gemm+Relu -> Gemm+Relu -> Gemm; output = logits (no softmax)",
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "training": f"torch.manual_seed({SEED}); Adam lr={LR}, batch {BATCH}, {EPOCHS} epochs, cross-entropy, torch.set_num_threads(1), {train_seconds:.0f}s; the final epoch's weights are exported (no selection on test accuracy)",
        "history": history,
        "torch_accuracy": torch_acc,
        "ort_accuracy": acc,
        "ort_provider": "CPUExecutionProvider",
        "test_samples": int(len(y_test)),
        "max_abs_diff_vs_torch": maxdiff,
        "ir_version": m.ir_version,
        "opsets": {(o.domain or "ai.onnx"): o.version for o in m.opset_import},
        "io": common.io_signature(path),
        "ops": common.op_sequence(path),
        "sha256": {"model.onnx": common.sha256(path), "test.npz": common.sha256(test_path)},
    }
    common.write_record(HERE, record)


if __name__ == "__main__":
    main()
