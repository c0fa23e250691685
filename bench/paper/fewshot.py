"""Few-shot sampling: which training rows a seed's n-examples-per-class run trains on.

`sample_per_class(labels, n, seed)` returns the indices of exactly `n` rows of every class present
in `labels`, drawn without replacement by numpy's PCG64 generator seeded with `seed`, sorted
ascending. The same (labels, n, seed) always gives the same indices; different seeds give
(almost surely) different ones. A class with fewer than `n` rows is refused with ValueError.
"""
import numpy as np


def sample_per_class(labels, n, seed):
    """Indices of exactly `n` rows per class of `labels` (1-D integer array), sorted ascending."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    n = int(n)
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        if len(rows) < n:
            raise ValueError(f"class {c} has {len(rows)} rows, fewer than n = {n}")
        picked.append(rng.choice(rows, size=n, replace=False))
    return np.sort(np.concatenate(picked))
