"""digits-sklearn: scikit-learn MLPClassifier 64-(8x32)-10 (relu) on sklearn's digits, exported
with skl2onnx.

Run from the repository root:  python models/digits-sklearn/make.py
Writes model.onnx (default options: ZipMap tail), model-nozipmap.onnx (options={'zipmap': False}),
train.npz, test.npz and model.json into this folder.

The split (digits_split below) is shared with models/digits-torch/make.py.
"""
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import common  # noqa: E402

SEED = 0  # split seed and MLPClassifier random_state


def digits_split(seed=SEED):
    """load_digits, features /16 as float32 in [0, 1], 70/30 stratified split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    return train_test_split(x, y, test_size=0.3, stratify=y, random_state=seed)


def main():
    import onnx
    import sklearn
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPClassifier

    v = common.versions("sklearn", "skl2onnx")
    print("versions:")
    common.print_versions(v)

    x_train, x_test, y_train, y_test = digits_split()
    common.save_npz(os.path.join(HERE, "train.npz"), x_train, y_train)
    common.save_npz(os.path.join(HERE, "test.npz"), x_test, y_test)

    hidden = (32,) * 8
    clf = MLPClassifier(hidden_layer_sizes=hidden, activation="relu", solver="adam",
                        max_iter=1000, random_state=SEED)
    t0 = time.time()
    clf.fit(x_train, y_train)
    print(f"trained in {time.time() - t0:.1f}s, {clf.n_iter_} iterations, final loss {clf.loss_:.4f}")
    sk_acc = float(clf.score(x_test, y_test))
    print(f"sklearn test accuracy {sk_acc:.4f}")

    outputs = {}
    for fname, options in (("model.onnx", None), ("model-nozipmap.onnx", {"zipmap": False})):
        kw = {} if options is None else {"options": options}
        onx = to_onnx(clf, x_train[:1], **kw)
        path = os.path.join(HERE, fname)
        onnx.save(onx, path)
        onnx.checker.check_model(path)
        common.describe(path)
        acc = common.ort_accuracy(path, x_test, y_test, output_index=0)  # output 0 = label
        acc_p = common.ort_accuracy(path, x_test, y_test, output_index=1)  # output 1 = probabilities
        assert acc == acc_p, (acc, acc_p)
        print(f"  onnxruntime accuracy {acc:.4f} on {len(y_test)} test samples")
        outputs[fname] = {
            "skl2onnx_options": options or "default (ZipMap)",
            "ort_accuracy": acc,
            "io": common.io_signature(path),
            "ops": common.op_sequence(path),
            "sha256": common.sha256(path),
        }

    # the importer expects the weights in float_data (skl2onnx writes typed fields, not raw_data)
    m = onnx.load(os.path.join(HERE, "model.onnx"))
    for t in m.graph.initializer:
        if t.data_type == onnx.TensorProto.FLOAT:
            print(f"  {t.name}: float_data={len(t.float_data)} raw_data={len(t.raw_data)} bytes")

    n_params = sum(w.size for w in clf.coefs_) + sum(b.size for b in clf.intercepts_)
    acc0 = outputs["model.onnx"]["ort_accuracy"]
    record = {
        "name": "digits-sklearn",
        "made_by": "python models/digits-sklearn/make.py",
        "exporter": "skl2onnx.to_onnx (default options -> ZipMap tail; model-nozipmap.onnx: options={'zipmap': False})",
        "versions": v,
        "seed": SEED,
        "data": {
            "source": "sklearn.datasets.load_digits (1797 x 64, 8x8 images, values 0..16)",
            "preprocessing": "x = data / 16 as float32 (range [0, 1]); no scaling inside the model",
            "split": "train_test_split(test_size=0.3, stratify=y, random_state=0)",
            "train": "train.npz (x float32 [1257, 64], y int64)",
            "test": "test.npz (x float32 [540, 64], y int64)",
            "format": "np.savez_compressed, arrays x and y",
        },
        "architecture": "64-" + "-".join(map(str, hidden)) + "-10, relu, softmax head",
        "layers": [list(w.shape) for w in clf.coefs_],
        "parameters": int(n_params),
        "training": f"MLPClassifier(hidden_layer_sizes=(32,)*8, activation='relu', solver='adam', max_iter=1000, random_state={SEED}); {clf.n_iter_} iterations",
        "sklearn_accuracy": sk_acc,
        "ort_accuracy": acc0,
        "ort_provider": "CPUExecutionProvider",
        "test_samples": int(len(y_test)),
        "weights_storage": "float_data (typed field), not raw_data",
        "files": outputs,
    }
    common.write_record(HERE, record)


if __name__ == "__main__":
    main()
