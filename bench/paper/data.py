"""Data splits of the paper suite, all carved from the TRAINING data (the test splits are only
ever used for the reported test accuracy).

Fashion-MNIST (raw uint8 pixels; the /255 scaling is inside the models):
  fit.npz    54,000 rows of the 60k training split (the rows not in val.npz)
  val.npz     6,000 rows of the training split, a fixed random draw (permutation seed SPLIT_SEED)
  val1k.npz   the first 1,000 rows of val.npz: the few-shot runs' validation data (best epoch, α)
  act.npz     the first 2,000 rows of val.npz: activity statistics (dead neurons, selectivity,
              activity-based assemblies)
  test        models/fashion-lenet/test.npz, the full 10k test split
scikit-learn digits (float32 in [0, 1]):
  pool.npz    957 of the 1,257 training rows: the few-shot samples are drawn from these
  val.npz     300 training rows, a fixed random draw (seed SPLIT_SEED)
  test        models/digits-sklearn/test.npz (540 rows)
"""
import os

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPLIT_SEED = 20261128


def _save(path, x, y):
    if not os.path.exists(path):
        tmp = path + ".tmp.npz"
        np.savez_compressed(tmp, x=x, y=y)
        os.replace(tmp, path)


def prepare(fashion_dir, out_dir):
    """Write the splits above (once) and return a dict of their paths."""
    f_out = os.path.join(out_dir, "fashion")
    d_out = os.path.join(out_dir, "digits")
    os.makedirs(f_out, exist_ok=True)
    os.makedirs(d_out, exist_ok=True)
    paths = {
        "fashion_fit": os.path.join(f_out, "fit.npz"),
        "fashion_val": os.path.join(f_out, "val.npz"),
        "fashion_val1k": os.path.join(f_out, "val1k.npz"),
        "fashion_act": os.path.join(f_out, "act.npz"),
        "fashion_test": os.path.join(ROOT, "models/fashion-lenet/test.npz"),
        "digits_pool": os.path.join(d_out, "pool.npz"),
        "digits_val": os.path.join(d_out, "val.npz"),
        "digits_test": os.path.join(ROOT, "models/digits-sklearn/test.npz"),
    }
    if not all(os.path.exists(paths[k]) for k in ("fashion_fit", "fashion_val", "fashion_val1k", "fashion_act")):
        x, y, val, fit = _split(os.path.join(fashion_dir, "train.npz"), 6000)
        _save(paths["fashion_fit"], x[fit], y[fit])
        _save(paths["fashion_val"], x[val], y[val])
        _save(paths["fashion_val1k"], x[val[:1000]], y[val[:1000]])
        _save(paths["fashion_act"], x[val[:2000]], y[val[:2000]])
    if not all(os.path.exists(paths[k]) for k in ("digits_pool", "digits_val")):
        x, y, val, pool = _split(os.path.join(ROOT, "models/digits-sklearn/train.npz"), 300)
        _save(paths["digits_pool"], x[pool], y[pool])
        _save(paths["digits_val"], x[val], y[val])
    return paths


def _split(path, n_val):
    """The rows of `path` cut by the seeded permutation: (x, y, validation rows in permutation
    order, the other rows sorted)."""
    d = np.load(path)
    perm = np.random.default_rng(SPLIT_SEED).permutation(len(d["y"]))
    return d["x"], d["y"], perm[:n_val], np.sort(perm[n_val:])


def load(path):
    d = np.load(path)
    return d["x"], d["y"]
