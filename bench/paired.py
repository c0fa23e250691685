#!/usr/bin/env python3
"""Fine-tuning-step benchmark in paired blocks: bean-onnx against PyTorch and against its own
GEMMs, each ratio taken between blocks run seconds apart.

On a shared 2-core machine the speed of the whole machine drifts by up to 2x over minutes, so
figures measured minutes apart (one peer's whole run, then the other's) cannot be divided.
Here two servers stay up — `cargo bench --bench step -- --serve` (bean-onnx) and
`bench/torch_step.py --serve` (PyTorch) — and for each model and batch every entry (peer x mode)
runs one block of --seconds in turn, in an order rotated by one each round, --blocks rounds. A
ratio is computed within each round and the table gives its median and interquartile range over
the rounds; samples/s are medians over the rounds.

Entries per (model, batch): for each bean-onnx engine, `plain` and `bean1` steps; `gemm-only`
(the step's matrix products alone, the roofline on the same engine and threads) for ort and/or
tract; PyTorch's `plain`, `bean1` in the O(n^2) closed form (peer "pytorch"), `bean1` in the
O(B*n*m) form bean-onnx uses ("pytorch-bnm"), and its own `gemm-only`.

Usage: bench/paired.py --torch-python PY [--models lenet,wide] [--batches 128,512]
       [--engines ort,ort-bound] [--blocks 9] [--seconds 0.3] [--threads 2] [--out FILE]
Needs ORT_DYLIB_PATH in the environment for the ort engines (bench/run.sh sets it). Without
--torch-python only bean-onnx's entries run. Every block goes to --out as a JSON line; the
markdown table goes to stdout. Standard library only.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORCH_ENTRIES = [("pytorch", "plain"), ("pytorch", "bean1"), ("pytorch-bnm", "bean1"),
                 ("pytorch", "gemm-only")]
DASH = "–"


class Server:
    """A peer's --serve process: one request line in, one JSON line out."""

    def __init__(self, name, argv):
        self.name = name
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)

    def block(self, peer, model, batch, mode, seconds):
        self.proc.stdin.write(f"{peer} {model} {batch} {mode} {seconds}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            sys.exit(f"{self.name} server exited (code {self.proc.wait()})")
        reply = json.loads(line)
        if "error" in reply:
            sys.exit(f"{self.name} server: {reply['error']} ({peer} {model} {batch} {mode})")
        return reply["samples_per_second"]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def gemm_engine(engine):
    """The engine whose GEMM-only graph is the roofline of `engine`'s step."""
    return "tract" if engine == "tract" else "ort"


def entries(engines, with_torch):
    own = [(e, m) for e in engines for m in ("plain", "bean1")]
    own += [(g, "gemm-only") for g in dict.fromkeys(gemm_engine(e) for e in engines)]
    return own + (TORCH_ENTRIES if with_torch else [])


def run_config(servers, model, batch, todo, blocks, seconds, out):
    """{entry: [samples/s per round]} for one (model, batch)."""
    rates = {e: [] for e in todo}
    for e in todo:  # warm-up: each server builds the entry's work and runs it once
        servers[e[0].startswith("pytorch")].block(e[0], model, batch, e[1], seconds)
    for r in range(blocks):
        k = r % len(todo)
        for peer, mode in todo[k:] + todo[:k]:
            sps = servers[peer.startswith("pytorch")].block(peer, model, batch, mode, seconds)
            rates[(peer, mode)].append(sps)
            out.write(json.dumps({"peer": peer, "model": model, "batch": batch, "mode": mode,
                                  "round": r, "samples_per_second": round(sps, 1)}) + "\n")
            time.sleep(0.02)  # let the other peer's spinning threads go idle
        print(f"# {model} {batch}: round {r + 1} of {blocks}", file=sys.stderr, flush=True)
    return rates


def paired(rates, num, den, time_ratio=False):
    """Median and quartiles over the rounds of num/den samples/s (den/num when time_ratio)."""
    a, b = rates.get(num), rates.get(den)
    if not a or not b:
        return None
    v = sorted((y / x) if time_ratio else (x / y) for x, y in zip(a, b))
    q = statistics.quantiles(v, n=4) if len(v) > 1 else [v[0]] * 3
    return q[0], statistics.median(v), q[2]


def fmt_ratio(r):
    return DASH if r is None else f"{r[1]:.2f}× ({r[0]:.2f}–{r[2]:.2f})"


def fmt_rate(v):
    return DASH if not v else f"{statistics.median(v):,.0f}"


def table(results, engines, with_torch):
    peers = [(e, e) for e in engines] + (
        [("pytorch", "pytorch"), ("pytorch-bnm", "pytorch-bnm")] if with_torch else [])
    gemms = list(dict.fromkeys(gemm_engine(e) for e in engines)) + (
        ["pytorch"] if with_torch else [])
    head = ["model", "batch", "mode"] + [f"{n} samples/s" for _, n in peers]
    head += [f"{g} GEMM-only" for g in gemms]
    if with_torch:
        head += [f"{e} / same-form pytorch" for e in engines]
    head += [f"{e} step / GEMM" for e in engines]
    if with_torch:
        head += ["pytorch step / GEMM", "ort GEMM-only / pytorch step"]
    out = ["| " + " | ".join(head) + " |", "|---|---|---|" + "---:|" * (len(head) - 3)]
    for (model, batch), rates in results.items():
        for mode in ("plain", "bean1"):
            torch_peer = "pytorch" if mode == "plain" else "pytorch-bnm"
            cells = [model, str(batch), mode]
            cells += [fmt_rate(rates.get((p, mode))) for p, _ in peers]
            cells += [fmt_rate(rates.get((g, "gemm-only"))) for g in gemms]
            if with_torch:
                cells += [fmt_ratio(paired(rates, (e, mode), (torch_peer, mode)))
                          for e in engines]
            cells += [fmt_ratio(paired(rates, (e, mode), (gemm_engine(e), "gemm-only"), True))
                      for e in engines]
            if with_torch:
                cells.append(fmt_ratio(paired(rates, (torch_peer, mode), ("pytorch", "gemm-only"),
                                              True)))
                cells.append(fmt_ratio(paired(rates, ("ort", "gemm-only"), (torch_peer, mode)))
                             if "ort" in gemms else DASH)
            out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--torch-python", help="a Python with torch (omit: bean-onnx only)")
    ap.add_argument("--models", default="lenet,wide")
    ap.add_argument("--batches", default="128,512")
    ap.add_argument("--engines", default="ort,ort-bound")
    ap.add_argument("--blocks", type=int, default=9, help="rounds per (model, batch)")
    ap.add_argument("--seconds", type=float, default=0.3, help="length of one block")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(ROOT, "target", "bench", "paired.jsonl"))
    args = ap.parse_args()
    engines = [e for e in args.engines.split(",") if e]
    with_torch = bool(args.torch_python)
    threads = str(args.threads)
    servers = {False: Server("bean-onnx", ["cargo", "bench", "-q", "--bench", "step", "--",
                                           "--serve", "--threads", threads])}
    if with_torch:
        servers[True] = Server("pytorch", [args.torch_python, "bench/torch_step.py", "--serve",
                                           "--threads", threads])
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    results = {}
    with open(args.out, "w", encoding="utf-8") as out:
        for model in args.models.split(","):
            for batch in (int(b) for b in args.batches.split(",")):
                results[(model, batch)] = run_config(servers, model, batch,
                                                     entries(engines, with_torch),
                                                     args.blocks, args.seconds, out)
    for s in servers.values():
        s.close()
    print(table(results, engines, with_torch))
    print(f"\n{args.blocks} rounds of one {args.seconds} s block per entry, {args.threads} "
          "threads. Samples/s: medians over the rounds. Ratios: median (interquartile range) "
          "over the rounds of the ratio within a round; x / pytorch > 1 means bean-onnx is "
          "faster; step / GEMM is step time over GEMM-only time (1.0 is the roofline). "
          "Same-form pytorch: its plain step, and for bean1 the O(B·n·m) form (pytorch-bnm).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
