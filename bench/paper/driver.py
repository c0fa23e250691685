#!/usr/bin/env python3
"""The experiment suite of issue 11: BEAN's three claims, measured with seeds against tuned
baselines. Every training, pruning and evaluation runs through the bean-onnx binary
(env BEAN_ONNX_BIN, default target/release/bean-onnx), one ONNX Runtime thread per process,
JOBS processes at a time (default 2). Each finished unit is cached (cells.py), so a rerun resumes.

Stages:
  1. tuning   every method's strength on its grid, scored on validation data carved from the
              training data (data.py): claim (b) by the mean validation accuracy after pruning 50, 70
              and 90% of the hidden neurons without healing; claim (c) by the best-epoch
              validation accuracy at n = 10 examples per class
  2. cells    each method at its chosen strength, every seed:
              (b)+(a) regime "ft" (fine-tune the bundled LeNet-300-100) and "scratch" (train a
                  784-300-100-10 from a seeded random initialisation) on 54k Fashion-MNIST rows:
                  test accuracy, after pruning 50–90% without and with healing, weight sparsity,
                  dead/constant neurons, modularity at a fixed γ against a shuffled null,
                  class selectivity per neuron and per assembly, ARI weight vs activity assemblies
              (c) few-shot from scratch: n ∈ {1, 5, 10, 20} per class (fewshot.py), Fashion-MNIST
                  and scikit-learn digits, best epoch on validation, test accuracy
  3. report   report.py writes docs/EVIDENCE.md (and the figures under docs/evidence/)

Usage: bench/paper/run.sh [--quick]   (sets ORT_DYLIB_PATH, the data, nice)
"""
import argparse
import concurrent.futures
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import analysis  # noqa: E402
import cells  # noqa: E402
import data  # noqa: E402
import fewshot  # noqa: E402
import mlp  # noqa: E402
import report  # noqa: E402

ROOT = data.ROOT
BIN = os.environ.get("BEAN_ONNX_BIN", os.path.join(ROOT, "target/release/bean-onnx"))
WORK = os.path.join(ROOT, "target/paper/work")
EVIDENCE_DIR = os.path.join(ROOT, "docs/evidence")
LENET = os.path.join(ROOT, "models/fashion-lenet/model.onnx")
COMMON = ["--engine", "ort", "--threads", "1"]

# Methods: id → (label, fine-tune flags at a strength, grid of strengths). Every baseline
# regularizer acts, like BEAN's default, on the outgoing weights of the hidden neurons.
METHODS = {
    "a0": ("α = 0 (no regularizer)", lambda s: ["--bean", "off"], [None]),
    "l1": ("L1", lambda s: ["--bean", "off", "--reg", "l1", "--reg-weight", repr(s)], [1e-6, 1e-5, 1e-4, 1e-3, 1e-2]),
    "l2": ("L2", lambda s: ["--bean", "off", "--reg", "l2", "--reg-weight", repr(s)], [1e-5, 1e-4, 1e-3, 1e-2, 1e-1]),
    "gl": ("group lasso", lambda s: ["--bean", "off", "--reg", "group-lasso", "--reg-weight", repr(s)],
           [1e-5, 1e-4, 1e-3, 1e-2, 1e-1]),
    "bean1": ("BEAN-1", lambda s: ["--bean", "1", "--alpha", repr(s)], [0.002, 0.01, 0.05, 0.25, 1.0]),
    "bean2": ("BEAN-2", lambda s: ["--bean", "2", "--alpha", repr(s)], [0.0005, 0.002, 0.01, 0.05, 0.25]),
    # bean-onnx's default: α set from the model (the term starts at 0.3 · ln C), not tuned.
    "auto": ("BEAN-1, α auto (the default, untuned)", lambda s: ["--bean", "1", "--alpha", "auto"], [None]),
    "ref": ("BEAN-1, authors' protocol (γ = 1, all layers, Adam lr 5e-4)",
            lambda s: ["--bean", "1", "--alpha", repr(s), "--gamma", "1", "--layers", "all", "--lr", "5e-4"],
            [1.0, 3.0]),
}
FIGURE_METHODS = ("a0", "bean1", "bean2", "ref")
RATIOS = [0.5, 0.6, 0.7, 0.8, 0.9]
TUNE_RATIOS = [0.5, 0.7, 0.9]
SHOTS = [1, 5, 10, 20]
TUNE_SHOTS = 10
FS_BATCH = 10

PROFILES = {
    "full": dict(seeds_b=list(range(5)), seeds_c=list(range(10)), ft_epochs=3, scratch_epochs=8,
                 heal_epochs=2, fs_steps=400, fs_min_epochs=30, tune_seeds_b=[100],
                 tune_seeds_c=[100, 101, 102], shuffles=5, sel_draws=20),
    "quick": dict(seeds_b=list(range(3)), seeds_c=list(range(3)), ft_epochs=1, scratch_epochs=2,
                  heal_epochs=1, fs_steps=150, fs_min_epochs=15, tune_seeds_b=[100],
                  tune_seeds_c=[100], shuffles=3, sel_draws=10),
}
# The γ at which modularity is compared (one per hidden layer, the same for every model of a
# regime): ft, 1/std of the bundled LeNet's outgoing weights of that layer (set in main);
# scratch, 1/std of the initial distribution U(±1/√fan_in), i.e. √(3·fan_in).
FIXED_GAMMA = {"scratch": [math.sqrt(3 * 300), math.sqrt(3 * 100)]}

_print_lock = threading.Lock()


def log(msg):
    with _print_lock:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(args):
    """Run the binary; its --json stdout parsed, or RuntimeError with its stderr."""
    r = subprocess.run([BIN] + [str(a) for a in args], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"bean-onnx {' '.join(map(str, args[:2]))} … exit {r.returncode}: "
                           f"{r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ''}")
    out = r.stdout.strip()
    return json.loads(out) if out.startswith("{") else None


def accuracy(model, path):
    return run(["eval", model, "--data", path, "--json"] + COMMON)["accuracy"]


def binary_id():
    h = hashlib.sha256()
    with open(BIN, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


class Workdir:
    """A scratch folder for one cell's ONNX files, removed afterwards."""

    def __init__(self, config):
        self.path = os.path.join(WORK, cells.key(config))

    def __enter__(self):
        shutil.rmtree(self.path, ignore_errors=True)
        os.makedirs(self.path)
        return self.path

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)


# ---------------------------------------------------------------- claim (b) and (a): full data

def train_b(ctx, regime, method, strength, seed, epochs, wd):
    """Fine-tune (ft) or train from a seeded initialisation (scratch) on the 54k fit rows, best
    epoch on the 6k validation rows. Returns (model path, finetune JSON)."""
    if regime == "ft":
        src = LENET
    else:
        src = os.path.join(wd, "init.onnx")
        mlp.write_mlp(src, [784, 300, 100, 10], seed, 255.0)
    out = os.path.join(wd, "trained.onnx")
    ft = run(["finetune", src, "--data", ctx["fashion_fit"], "--val", ctx["fashion_val"], "-o", out,
              "--epochs", epochs, "--seed", seed, "--json"] + METHODS[method][1](strength) + COMMON)
    return out, {k: ft.get(k) for k in ("val_accuracy", "initial_val_accuracy", "best_epoch", "final_bean",
                                        "final_train_loss", "samples_per_second")}


def prune_acc(ctx, model, ratio, heal, data_eval, wd):
    out = os.path.join(wd, f"pruned-{ratio}-{heal}.onnx")
    rep = run(["prune", model, "-o", out, "--data", ctx["fashion_fit"], "--ratio", ratio,
               "--heal-epochs", heal, "--json"] + COMMON)
    return accuracy(out, data_eval), rep["params_after"]


def tune_b(ctx, regime, method, strength, seed):
    S = ctx["S"]
    epochs = S["ft_epochs"] if regime == "ft" else S["scratch_epochs"]
    config = {"kind": "tune-b", "regime": regime, "method": method, "strength": strength, "seed": seed,
              "epochs": epochs, "tune_ratios": TUNE_RATIOS, "bin": ctx["bin"]}

    def work():
        with Workdir(config) as wd:
            try:
                model, ft = train_b(ctx, regime, method, strength, seed, epochs, wd)
            except RuntimeError as e:
                return {"error": str(e), "score": None}
            pruned = {str(r): prune_acc(ctx, model, r, 0, ctx["fashion_val"], wd)[0] for r in TUNE_RATIOS}
            return {"finetune": ft, "val_pruned": pruned, "score": float(np.mean(list(pruned.values())))}
    return cells.cached(config, work)


def model_analysis(ctx, regime, model, shuffles, draws, seed, plot=None):
    """Sparsity, dead neurons and the claim (a) measures of one trained model (see analysis.py)."""
    x, y = ctx["act"]
    net = mlp.read_mlp(model)
    hidden, _ = mlp.forward(net, x)
    weights_json = run(["assemblies", model, "--json"] + COMMON)["layers"]
    act_args = ["assemblies", model, "--data", ctx["fashion_act"], "--json"] + COMMON
    if plot:
        act_args += ["--plot", plot]
    activity_json = run(act_args)["layers"]
    layers = []
    for k, h in enumerate(hidden):
        w_out = net[1][k + 1][0].T  # [n neurons, m targets]: row i = neuron i's outgoing weights
        means = analysis.class_means(h, y)
        alive = h.std(axis=0) >= 1e-6
        sel = analysis.selectivity(means)
        wg = weights_json[k]["assemblies"]
        ag = activity_json[k]["assemblies"]
        n = h.shape[1]
        lw, la = analysis.labels_of(wg, n), analysis.labels_of(ag, n)
        layers.append({
            "n": n,
            "modularity": analysis.modularity_fixed_gamma(w_out, ctx["gamma"][regime][k], shuffles, seed),
            "modularity_auto_gamma": weights_json[k]["modularity"],
            "n_weight_assemblies": len(wg),
            "n_activity_assemblies": len(ag),
            "selectivity_neuron": float(np.nanmean(sel[alive])) if alive.any() else None,
            "selectivity_assembly": analysis.assembly_selectivity(means, wg, alive, draws, seed),
            "ari_weight_activity": analysis.adjusted_rand(lw[alive], la[alive]) if alive.sum() > 1 else None,
            "alive": int(alive.sum()),
        })
    return {
        "sparsity_1e-3": analysis.weight_sparsity(net[1], 1e-3),
        "sparsity_1e-2": analysis.weight_sparsity(net[1], 1e-2),
        "activity": analysis.activity(hidden),
        "layers": layers,
    }


def cell_b(ctx, regime, method, strength, seed):
    S = ctx["S"]
    epochs = S["ft_epochs"] if regime == "ft" else S["scratch_epochs"]
    fig = None
    if seed == 0 and method in FIGURE_METHODS:
        fig = os.path.join(EVIDENCE_DIR, f"{ctx['profile']}-{regime}-{method}.png")
    config = {"kind": "cell-b", "regime": regime, "method": method, "strength": strength, "seed": seed,
              "epochs": epochs, "heal_epochs": S["heal_epochs"], "ratios": RATIOS, "shuffles": S["shuffles"],
              "sel_draws": S["sel_draws"], "gamma": ctx["gamma"][regime], "figure": fig, "bin": ctx["bin"]}

    def work():
        with Workdir(config) as wd:
            try:
                model, ft = train_b(ctx, regime, method, strength, seed, epochs, wd)
            except RuntimeError as e:
                return {"error": str(e)}
            return measure_b(ctx, regime, model, seed, wd, fig, ft)
    return cells.cached(config, work, valid=lambda c: fig is None or os.path.exists(fig))


def measure_b(ctx, regime, model, seed, wd, fig, ft):
    S = ctx["S"]
    res = {"finetune": ft, "test": accuracy(model, ctx["fashion_test"]), "pruned": {}}
    for r in RATIOS:
        a0, params = prune_acc(ctx, model, r, 0, ctx["fashion_test"], wd)
        a1, _ = prune_acc(ctx, model, r, S["heal_epochs"], ctx["fashion_test"], wd)
        res["pruned"][str(r)] = {"noheal": a0, "heal": a1, "params": params}
    plot = os.path.join(wd, "assemblies.png") if fig else None
    res.update(model_analysis(ctx, regime, model, S["shuffles"], S["sel_draws"], seed, plot))
    if fig:
        os.makedirs(os.path.dirname(fig), exist_ok=True)
        shutil.copyfile(plot, fig)
        res["figure"] = os.path.relpath(fig, ROOT)
    return res


def cell_original(ctx):
    """The bundled LeNet itself, not fine-tuned: a reference row (deterministic, no seed)."""
    S = ctx["S"]
    config = {"kind": "cell-orig", "heal_epochs": S["heal_epochs"], "ratios": RATIOS, "shuffles": S["shuffles"],
              "sel_draws": S["sel_draws"], "gamma": ctx["gamma"]["ft"], "bin": ctx["bin"]}

    def work():
        with Workdir(config) as wd:
            return measure_b(ctx, "ft", LENET, 0, wd, None, None)
    return cells.cached(config, work)


# ---------------------------------------------------------------- claim (c): few-shot

def fewshot_epochs(n, S):
    """Epochs for n examples per class: about fs_steps steps of batch FS_BATCH, at least fs_min_epochs."""
    steps_per_epoch = math.ceil(10 * n / FS_BATCH)
    return max(S["fs_min_epochs"], math.ceil(S["fs_steps"] / steps_per_epoch))


def run_fewshot(ctx, dataset, n, method, strength, seed, wd):
    x, y = ctx["pool"][dataset]
    idx = fewshot.sample_per_class(y, n, seed)
    train = os.path.join(wd, "train.npz")
    np.savez(train, x=x[idx], y=y[idx])
    init = os.path.join(wd, "init.onnx")
    n_in = x.shape[1]
    mlp.write_mlp(init, [n_in, 300, 100, 10], seed, 255.0 if dataset == "fashion" else None)
    out = os.path.join(wd, "trained.onnx")
    epochs = fewshot_epochs(n, ctx["S"])
    ft = run(["finetune", init, "--data", train, "--val", ctx[f"{dataset}_fsval"], "-o", out,
              "--epochs", epochs, "--batch-size", FS_BATCH, "--seed", seed, "--json"]
             + METHODS[method][1](strength) + COMMON)
    return out, ft, epochs


def fs_config(ctx, kind, dataset, n, method, strength, seed):
    S = ctx["S"]
    return {"kind": kind, "dataset": dataset, "n": n, "method": method, "strength": strength, "seed": seed,
            "epochs": fewshot_epochs(n, S), "batch": FS_BATCH, "arch": [300, 100], "bin": ctx["bin"]}


def tune_c(ctx, dataset, method, strength, seed):
    config = fs_config(ctx, "tune-c", dataset, TUNE_SHOTS, method, strength, seed)

    def work():
        with Workdir(config) as wd:
            try:
                _, ft, _ = run_fewshot(ctx, dataset, TUNE_SHOTS, method, strength, seed, wd)
            except RuntimeError as e:
                return {"error": str(e), "score": None}
            return {"score": ft["val_accuracy"], "best_epoch": ft["best_epoch"]}
    return cells.cached(config, work)


def cell_c(ctx, dataset, n, method, strength, seed):
    config = fs_config(ctx, "cell-c", dataset, n, method, strength, seed)

    def work():
        with Workdir(config) as wd:
            try:
                model, ft, epochs = run_fewshot(ctx, dataset, n, method, strength, seed, wd)
            except RuntimeError as e:
                return {"error": str(e)}
            return {"test": accuracy(model, ctx[f"{dataset}_test"]), "val": ft["val_accuracy"],
                    "best_epoch": ft["best_epoch"], "epochs": epochs}
    return cells.cached(config, work)


def check_trains_every_layer(ctx):
    """One short few-shot run per data set (α = 0, n = 1, 2 epochs): does `bean-onnx finetune`
    change every weight matrix and bias of a plain MLP? Returns {dataset: [changed per layer]}."""
    out = {}
    for dataset in ("fashion", "digits"):
        config = {"kind": "check", "dataset": dataset, "bin": ctx["bin"]}
        with Workdir(config) as wd:
            x, y = ctx["pool"][dataset]
            idx = fewshot.sample_per_class(y, 1, 0)
            np.savez(os.path.join(wd, "train.npz"), x=x[idx], y=y[idx])
            init = os.path.join(wd, "init.onnx")
            mlp.write_mlp(init, [x.shape[1], 300, 100, 10], 0, 255.0 if dataset == "fashion" else None)
            out_model = os.path.join(wd, "trained.onnx")
            run(["finetune", init, "--data", os.path.join(wd, "train.npz"), "-o", out_model, "--epochs", 2,
                 "--batch-size", FS_BATCH, "--bean", "off", "--json"] + COMMON)
            before, after = mlp.read_mlp(init)[1], mlp.read_mlp(out_model)[1]
            out[dataset] = [bool((wa != wb).any() and (ba != bb).any()) for (wb, bb), (wa, ba) in zip(before, after)]
    return out


# ---------------------------------------------------------------- orchestration

def pool_map(jobs, tasks, label):
    """Run (name, fn) tasks on `jobs` threads (each spawns one bean-onnx process at a time)."""
    results = {}
    t0 = time.time()
    done = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as ex:
        futures = {ex.submit(fn): name for name, fn in tasks}
        for f in concurrent.futures.as_completed(futures):
            name = futures[f]
            results[name] = f.result()
            done += 1
            log(f"{label} {done}/{len(tasks)} {name} ({results[name]['seconds']:.1f} s; "
                f"{time.time() - t0:.0f} s elapsed)")
    return results


def choose(tunes, method, grid):
    """The grid value with the highest mean score over tuning seeds (errors score nothing)."""
    table = []
    for s in grid:
        scores = [c["result"]["score"] for (m, st, _), c in tunes.items() if m == method and st == s]
        ok = [v for v in scores if v is not None]
        table.append({"strength": s, "score": float(np.mean(ok)) if ok else None, "runs": len(scores),
                      "failed": len(scores) - len(ok)})
    best = max((t for t in table if t["score"] is not None), key=lambda t: t["score"], default=None)
    return (best["strength"] if best else grid[0]), table


def versions():
    v = subprocess.run([BIN, "--version"], capture_output=True, text=True).stdout.strip()
    import onnx
    import onnxruntime
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "src"], capture_output=True,
                           text=True).stdout.strip()
    return {"bean_onnx": v, "binary": BIN, "binary_sha256_16": binary_id(), "python": platform.python_version(),
            "numpy": np.__version__, "onnx": onnx.__version__, "onnxruntime_py": onnxruntime.__version__,
            "git_commit": commit, "src_modified": bool(dirty), "cores": os.cpu_count(),
            "platform": platform.platform()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer seeds and epochs (labelled as such)")
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("JOBS", "2")))
    ap.add_argument("--fashion-dir", required=True, help="folder with train.npz (scripts/fashion-data.sh)")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs/EVIDENCE.md"))
    args = ap.parse_args()
    t_start = time.time()
    profile = "quick" if args.quick else "full"
    S = PROFILES[profile]
    ctx = {"S": S, "profile": profile, "bin": binary_id()}
    ctx.update(data.prepare(args.fashion_dir, os.path.join(ROOT, "target/paper/data")))
    ctx["act"] = data.load(ctx["fashion_act"])
    ctx["fashion_fsval"] = ctx["fashion_val1k"]
    ctx["digits_fsval"] = ctx["digits_val"]
    ctx["pool"] = {"fashion": data.load(ctx["fashion_fit"]), "digits": data.load(ctx["digits_pool"])}
    lenet = mlp.read_mlp(LENET)
    mlp.check_forward(LENET, ctx["act"][0][:200])
    ctx["gamma"] = dict(FIXED_GAMMA, ft=[float(1.0 / lenet[1][k + 1][0].std()) for k in range(2)])
    meta = {"profile": profile, "settings": S, "versions": versions(), "jobs": args.jobs,
            "started": time.strftime("%Y-%m-%d %H:%M:%S"), "gamma": ctx["gamma"]}
    log(f"profile {profile}, binary {BIN} ({ctx['bin']}), {args.jobs} jobs")
    meta["trains_every_layer"] = check_trains_every_layer(ctx)
    prune_help = subprocess.run([BIN, "prune", "--help"], capture_output=True, text=True).stdout
    meta["prune_refits"] = "--no-refit" in prune_help  # bean-onnx after e45bb41 refits by default

    # 1. tuning
    tasks = []
    for regime in ("scratch", "ft"):
        for m, (_, _, grid) in METHODS.items():
            for s in grid:  # α = 0 too (grid [None]): its validation score is shown for reference
                for seed in S["tune_seeds_b"]:
                    tasks.append(((regime, m, s, seed), lambda r=regime, m=m, s=s, seed=seed: tune_b(ctx, r, m, s, seed)))
    for dataset in ("fashion", "digits"):
        for m, (_, _, grid) in METHODS.items():
            for s in grid:
                for seed in S["tune_seeds_c"]:
                    tasks.append(((dataset, m, s, seed), lambda d=dataset, m=m, s=s, seed=seed: tune_c(ctx, d, m, s, seed)))
    tuned = pool_map(args.jobs, tasks, "tune")
    chosen, tuning = {}, {}
    for group in ("scratch", "ft", "fashion", "digits"):
        for m, (_, _, grid) in METHODS.items():
            sub = {(mm, s, seed): c for (g, mm, s, seed), c in tuned.items() if g == group}
            chosen[(group, m)], tuning[(group, m)] = choose(sub, m, grid)

    # 2. cells
    tasks = [(("orig", "ft", None, None), lambda: cell_original(ctx))]
    for regime in ("scratch", "ft"):
        for m in METHODS:
            for seed in S["seeds_b"]:
                s = chosen[(regime, m)]
                tasks.append(((regime, m, s, seed), lambda r=regime, m=m, s=s, seed=seed: cell_b(ctx, r, m, s, seed)))
    for dataset in ("fashion", "digits"):
        for n in SHOTS:
            for m in METHODS:
                for seed in S["seeds_c"]:
                    s = chosen[(dataset, m)]
                    tasks.append(((f"{dataset}/{n}", m, s, seed),
                                  lambda d=dataset, n=n, m=m, s=s, seed=seed: cell_c(ctx, d, n, m, s, seed)))
    results = pool_map(args.jobs, tasks, "cell")

    # 3. report
    meta["wall_seconds"] = time.time() - t_start
    everything = list(results.values()) + list(tuned.values())
    meta["cell_seconds"] = sum(c["seconds"] for c in everything)
    meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    meta["runs"] = [r for r in cells.log_run({
        "profile": profile, "started": meta["started"], "wall_seconds": round(meta["wall_seconds"], 1),
        "computed": sum(1 for c in everything if c.get("fresh")), "cached": sum(1 for c in everything if not c.get("fresh")),
        "binary": ctx["bin"], "jobs": args.jobs}) if r["profile"] == profile and r["binary"] == ctx["bin"]]
    report.write(args.out, meta, METHODS, tuned, tuning, chosen, results,
                 {"ratios": RATIOS, "tune_ratios": TUNE_RATIOS, "shots": SHOTS, "tune_shots": TUNE_SHOTS,
                  "fs_batch": FS_BATCH, "fs_epochs": {n: fewshot_epochs(n, S) for n in SHOTS}})
    log(f"wrote {args.out} in {meta['wall_seconds']:.0f} s")


if __name__ == "__main__":
    main()
