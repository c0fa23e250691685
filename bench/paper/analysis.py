"""What the suite measures on a trained MLP, in numpy (bean-onnx does the training and pruning).

Sparsity and dead neurons (claim b):
  weight_sparsity(layers, rel)  fraction of all dense weights with |w| < rel · max|W| of their layer
  activity(layers, x)           per hidden layer: dead (never > 0 on x) and constant (std < 1e-6 on
                                x, dead ones included) neuron counts
Assemblies without circularity (claim a):
  louvain(m)                    a port of bean-onnx's Louvain local-moving phase (src/assemblies.rs:
                                same visiting order, gain and tie rule), so modularity is computed
                                the same way at any γ
  modularity_fixed_gamma(...)   Q of M = ÂÂᵀ (zero diagonal), Â = |tanh(γ W_out)|, at a γ fixed per
                                layer for every model of a regime, against a null model: each
                                neuron's outgoing weights shuffled among its targets (a within-column
                                shuffle of the stored [out, in] matrix), Louvain rerun on each shuffle
  selectivity(means)            (μ_max − μ_rest)/(μ_max + μ_rest) of a [classes, k] array of class-mean
                                activations, μ_rest the mean over the other classes
  assembly_selectivity(...)     the same on each assembly's class-mean activation (mean over its
                                members), against random groupings of the same sizes
  adjusted_rand(a, b)           Hubert & Arabie's adjusted Rand index of two labelings
"""
import numpy as np


def weight_sparsity(layers, rel):
    """Fraction of the weights of every dense layer with |w| < rel · (that layer's max |w|)."""
    small = total = 0
    for w, _ in layers:
        a = np.abs(w)
        small += int((a < rel * a.max()).sum())
        total += a.size
    return small / total


def activity(hidden):
    """Per hidden layer: n, dead (max activation 0 on the data), constant (std < 1e-6, dead included)."""
    out = []
    for h in hidden:
        out.append({"n": h.shape[1], "dead": int((h.max(axis=0) <= 0).sum()),
                    "constant": int((h.std(axis=0) < 1e-6).sum())})
    return out


def louvain(m):
    """Community labels 0..c−1 (numbered by first node) of the weighted graph `m` (symmetric, zero
    diagonal): each node in turn moves to the neighbouring community with the largest modularity
    gain, until a pass moves nothing (at most 100 passes). As bean-onnx's `assemblies::louvain`."""
    n = m.shape[0]
    k = m.sum(axis=1)
    two_m = k.sum()
    label = np.arange(n)
    if two_m <= 0:
        return label
    total = k.copy()
    for _ in range(100):
        moved = False
        for i in range(n):
            own = label[i]
            total[own] -= k[i]
            row = m[i].copy()
            row[i] = 0.0
            pos = row > 0
            links = np.bincount(label[pos], weights=row[pos], minlength=n)
            cands = np.unique(label[pos])
            best_c, best_g = own, links[own] - total[own] * k[i] / two_m
            if len(cands):
                gains = links[cands] - total[cands] * k[i] / two_m
                for c, g in zip(cands, gains):  # ascending label order, strict improvement
                    if g > best_g + 1e-12:
                        best_c, best_g = c, g
            label[i] = best_c
            total[best_c] += k[i]
            moved |= best_c != own
        if not moved:
            break
    _, first = np.unique(label, return_index=True)
    order = np.argsort(first)
    remap = np.empty(n, dtype=int)
    remap[np.unique(label)[order]] = np.arange(len(order))
    return remap[label]


def modularity(m, labels):
    """Newman modularity of a partition of the weighted graph `m` (symmetric, zero diagonal)."""
    k = m.sum(axis=1)
    two_m = k.sum()
    if two_m <= 0:
        return 0.0
    same = labels[:, None] == labels[None, :]
    return float(((m - np.outer(k, k) / two_m) * same).sum() / two_m)


def co_connectivity(w_out, gamma):
    """M = ÂÂᵀ with a zero diagonal, Â = |tanh(γ W_out)|, W_out [n neurons, m targets]."""
    a = np.abs(np.tanh(gamma * w_out))
    m = a @ a.T
    np.fill_diagonal(m, 0.0)
    return m


def modularity_fixed_gamma(w_out, gamma, shuffles, seed):
    """Q of Louvain's partition of M at `gamma`, and the same on `shuffles` null models (each
    neuron's outgoing weights permuted among its targets): {q, null_mean, null_std, z, n_assemblies}."""
    m = co_connectivity(w_out, gamma)
    labels = louvain(m)
    q = modularity(m, labels)
    rng = np.random.default_rng(seed)
    null = []
    for _ in range(shuffles):
        ws = np.array([rng.permutation(row) for row in w_out])
        ms = co_connectivity(ws, gamma)
        null.append(modularity(ms, louvain(ms)))
    null = np.array(null)
    sd = float(null.std(ddof=1)) if len(null) > 1 else 0.0
    return {"q": q, "null_mean": float(null.mean()), "null_std": sd,
            "z": (q - float(null.mean())) / sd if sd > 0 else None,
            "n_assemblies": int(labels.max() + 1)}


def class_means(h, y):
    """[classes, n] mean activation of each neuron over the rows of each class (classes sorted)."""
    classes = np.unique(y)
    return np.stack([h[y == c].mean(axis=0) for c in classes])


def selectivity(means):
    """(μ_max − μ_rest)/(μ_max + μ_rest) per column of `means` [classes, k]; NaN where μ_max = 0."""
    mx = means.max(axis=0)
    rest = (means.sum(axis=0) - mx) / (means.shape[0] - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mx + rest > 0, (mx - rest) / (mx + rest), np.nan)


def assembly_selectivity(means, groups, alive, draws, seed):
    """Mean selectivity over assemblies with ≥ 2 alive members (each assembly's class means: the
    mean of its alive members'), and the same for `draws` random groupings of the alive neurons
    with the same sizes: {mean, null_mean, null_std, n_assemblies}."""
    groups = [[i for i in g if alive[i]] for g in groups]
    groups = [g for g in groups if len(g) >= 2]
    if not groups:
        return {"mean": None, "null_mean": None, "null_std": None, "n_assemblies": 0}

    def score(gs):
        return float(np.nanmean([selectivity(means[:, g].mean(axis=1, keepdims=True))[0] for g in gs]))

    real = score(groups)
    pool = np.flatnonzero(alive)
    rng = np.random.default_rng(seed)
    sizes = [len(g) for g in groups]
    null = []
    for _ in range(draws):
        perm = rng.permutation(pool)
        cuts = np.cumsum([0] + sizes)
        null.append(score([perm[cuts[j]:cuts[j + 1]] for j in range(len(sizes))]))
    return {"mean": real, "null_mean": float(np.mean(null)), "null_std": float(np.std(null, ddof=1)),
            "n_assemblies": len(groups)}


def labels_of(groups, n):
    """Label array of length n from a list of index groups."""
    lab = np.full(n, -1)
    for j, g in enumerate(groups):
        lab[list(g)] = j
    return lab


def adjusted_rand(a, b):
    """Adjusted Rand index of two labelings of the same items (1: identical, ~0: chance)."""
    a = np.unique(np.asarray(a), return_inverse=True)[1]
    b = np.unique(np.asarray(b), return_inverse=True)[1]
    n = len(a)
    table = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(table, (a, b), 1)

    def comb2(x):
        return x * (x - 1) / 2.0

    index = comb2(table).sum()
    ra, rb = comb2(table.sum(axis=1)).sum(), comb2(table.sum(axis=0)).sum()
    expected = ra * rb / comb2(n) if n > 1 else 0.0
    top = (ra + rb) / 2.0
    if top == expected:
        return 1.0
    return float((index - expected) / (top - expected))
