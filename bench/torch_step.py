#!/usr/bin/env python3
"""PyTorch CPU peer for the bean-onnx fine-tuning step benchmark.

One step = forward through a ReLU MLP (linear logits), mean softmax cross-entropy,
optional BEAN-1 regularizer on every layer except the first, autograd backward and a
torch.optim.Adam update (lr 1e-3).

BEAN-1 (Gao, Ascoli & Zhao, arXiv 1909.13698) for a layer with weight W [n, m]
(rows = input neurons) and input activations H [B, n] (previous post-ReLU outputs,
not detached):
    A = |tanh(gamma W)|, M = A A^T, D_ij = mean_b (h_bi - h_bj)^2,
    R = alpha / n^2 * sum_ij M_ij D_ij,  gamma = 1.0, alpha = 0.05.
--forms closed: D = s 1^T + 1 s^T - 2 G with s = mean_b h^2, G = H^T H / B (O(n^2) memory).
--forms bnm: the O(B*n*m) form bean-onnx's step graph uses, which any PyTorch user can write.
--forms naive: builds the [B, n, n] difference tensor like the authors' code.
Default --forms closed,bnm. Peer names: "pytorch" (plain steps and the closed form),
"pytorch-bnm", "pytorch-naive" (BEAN-1 steps in those forms).

Prints one JSON object per line to stdout; diagnostics go to stderr.

--serve times one block per request instead, for bench/paired.py: requests are lines
"<peer> <model> <batch> <mode> <seconds>" on stdin (peer pytorch, pytorch-bnm or pytorch-naive;
mode plain, bean1 or gemm-only: the step's matrix products alone, the same shapes as bean-onnx's
gemm-only graph), each answered by one JSON line {"samples_per_second": ..., "steps": ...}. The
work of the latest (model, batch) is kept between requests; the first request of each is a
warm-up.
"""
import argparse
import json
import os
import statistics
import sys
import time

# CPU only: keep the CUDA wheel from touching a GPU.
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import torch  # noqa: E402

SIZES = {
    "lenet": [784, 300, 100, 10],
    "wide": [784, 1024, 1024, 10],
}
GAMMA = 1.0
ALPHA = 0.05
LR = 1e-3
N_CLASSES = 10
WARMUP_STEPS = 10


class MLP(torch.nn.Module):
    """Raw [n_in, n_out] weights so that rows are input neurons, as in BEAN."""

    def __init__(self, sizes, seed):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.weights = torch.nn.ParameterList()
        self.biases = torch.nn.ParameterList()
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            bound = 1.0 / n_in ** 0.5  # nn.Linear's default init range
            w = (torch.rand(n_in, n_out, generator=g) * 2 - 1) * bound
            b = (torch.rand(n_out, generator=g) * 2 - 1) * bound
            self.weights.append(torch.nn.Parameter(w))
            self.biases.append(torch.nn.Parameter(b))

    def forward(self, x):
        """Returns (logits, inputs), inputs[l] = activation entering layer l."""
        inputs = []
        h = x
        last = len(self.weights) - 1
        for l, (w, b) in enumerate(zip(self.weights, self.biases)):
            inputs.append(h)
            z = torch.addmm(b, h, w)
            h = z if l == last else torch.relu(z)
        return h, inputs


def bean1_closed(w, h, gamma=GAMMA, alpha=ALPHA):
    n = w.shape[0]
    a = torch.tanh(gamma * w).abs()
    m = a @ a.T
    bsz = h.shape[0]
    s = (h * h).mean(dim=0)
    g = (h.T @ h) / bsz
    d = s[:, None] + s[None, :] - 2.0 * g
    return alpha / (n * n) * (m * d).sum()


def bean1_bnm(w, h, gamma=GAMMA, alpha=ALPHA):
    """The O(B*n*m) form bean-onnx's step graph uses (no n x n matrix):
    sum M o D = 2 s^T A (A^T 1) - (2/B) ||H A||^2, since M1 = A(A^T 1) and tr(MG) = ||HA||^2/B,
    on H with each row centred across neurons first (D unchanged; as bean-onnx does, for float32
    accuracy when neurons fire alike)."""
    n = w.shape[0]
    a = torch.tanh(gamma * w).abs()
    h = h - h.mean(dim=1, keepdim=True)
    bsz = h.shape[0]
    s = (h * h).mean(dim=0)
    total = 2.0 * (s @ (a @ a.sum(dim=0))) - (2.0 / bsz) * (h @ a).pow(2).sum()
    return alpha / (n * n) * total


def bean1_naive(w, h, gamma=GAMMA, alpha=ALPHA):
    n = w.shape[0]
    a = torch.tanh(gamma * w).abs()
    m = a @ a.T
    diff = h.unsqueeze(2) - h.unsqueeze(1)  # [B, n, n]
    d = (diff * diff).mean(dim=0)
    return alpha / (n * n) * (m * d).sum()


BEAN_FORMS = {"closed": bean1_closed, "bnm": bean1_bnm, "naive": bean1_naive}


def loss_fn(model, x, y, mode, form):
    logits, inputs = model(x)
    loss = torch.nn.functional.cross_entropy(logits, y)
    if mode == "bean1":
        reg = BEAN_FORMS[form]
        for l in range(1, len(model.weights)):
            loss = loss + reg(model.weights[l], inputs[l])
    elif mode != "plain":
        raise ValueError(f"unknown mode {mode}")
    return loss


def make_batch(batch, seed):
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(batch, SIZES["lenet"][0], generator=g)
    y = torch.randint(0, N_CLASSES, (batch,), generator=g)
    return x, y


def sanity_check(models, rel_tol=1e-4):
    """Closed form vs naive form (value and gradients) on a small batch, untimed."""
    ok = True
    for name in models:
        model = MLP(SIZES[name], seed=0)
        x, y = make_batch(16, seed=0)
        results = {}
        for form in ("closed", "bnm", "naive"):
            model.zero_grad(set_to_none=True)
            logits, inputs = model(x)
            reg = sum(BEAN_FORMS[form](model.weights[l], inputs[l])
                      for l in range(1, len(model.weights)))
            reg.backward()
            grads = [p.grad.detach().clone() for p in model.parameters()
                     if p.grad is not None]
            results[form] = (reg.item(), grads)
        vn, gn = results["naive"]
        for form in ("closed", "bnm"):
            vc, gc = results[form]
            val_rel = abs(vc - vn) / max(abs(vn), 1e-30)
            grad_rel = max(((a - b).norm() / b.norm().clamp_min(1e-30)).item()
                           for a, b in zip(gc, gn))
            if val_rel > rel_tol or grad_rel > 10 * rel_tol:
                ok = False
                print(f"WARNING: BEAN-1 {form} form != naive form for {name}: "
                      f"R {form}={vc:.8g} naive={vn:.8g} rel={val_rel:.2e}, "
                      f"max grad rel={grad_rel:.2e}", file=sys.stderr)
            else:
                print(f"# sanity {name} {form}: R={vn:.6g} value rel={val_rel:.1e} "
                      f"grad rel={grad_rel:.1e}", file=sys.stderr)
    return ok


class CpuMonitor:
    """CPU time used by *other* processes, from /proc/stat minus our own process time.

    On a 2-core machine shared with compile jobs, a competing process does not just slow
    PyTorch proportionally: OpenMP barriers then wait on a descheduled thread and a 2 ms
    step can take 100+ ms. Blocks during which other processes used more than
    `threshold` cores on average are discarded and retried once the machine is quiet.
    """

    def __init__(self, threshold):
        self.threshold = threshold
        self.hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.enabled = self._busy() is not None

    @staticmethod
    def _busy():
        try:
            with open("/proc/stat") as f:
                fields = f.readline().split()
        except OSError:
            return None
        if not fields or fields[0] != "cpu":
            return None
        v = [int(x) for x in fields[1:]]
        idle = v[3] + (v[4] if len(v) > 4 else 0)  # idle + iowait
        return sum(v[:8]) - idle  # exclude guest fields (already in user)

    def snapshot(self):
        return (time.perf_counter(), self._busy(), time.process_time())

    def other_cores(self, a, b):
        """Average number of cores used by other processes between two snapshots."""
        if not self.enabled or a[1] is None or b[1] is None:
            return 0.0
        wall = b[0] - a[0]
        if wall <= 0:
            return 0.0
        busy = (b[1] - a[1]) / self.hz
        own = b[2] - a[2]
        return max(0.0, busy - own) / wall

    def wait_quiet(self, deadline, window=0.5):
        """Sleep until other processes use < threshold cores over `window` s, or deadline."""
        if not self.enabled:
            return True
        announced = False
        while True:
            a = self.snapshot()
            time.sleep(window)
            if self.other_cores(a, self.snapshot()) < self.threshold:
                return True
            if time.perf_counter() >= deadline:
                return False
            if not announced:
                print("# waiting for other processes to leave the CPU ...", file=sys.stderr,
                      flush=True)
                announced = True


def step_work(name, batch, mode, form, seed):
    """One Adam step of `mode` per call; returns the loss."""
    torch.manual_seed(seed)
    model = MLP(SIZES[name], seed=seed)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    x, y = make_batch(batch, seed)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model, x, y, mode, form)
        loss.backward()
        opt.step()
        return loss
    return step


def gemm_work(name, batch, seed):
    """The matrix products of one plain step and nothing else, as bean-onnx's gemm-only graph:
    h_l W_l, h_l^T g_l and (l >= 1) g_l W_l^T with the step's shapes, on fixed inputs."""
    g = torch.Generator().manual_seed(seed + 5)
    sizes = SIZES[name]
    layers = [(torch.randn(batch, n_in, generator=g) * 0.1,
               torch.randn(n_in, n_out, generator=g) * 0.1,
               torch.randn(batch, n_out, generator=g) * 0.1)
              for n_in, n_out in zip(sizes[:-1], sizes[1:])]

    def run():
        with torch.no_grad():
            for l, (h, w, grad) in enumerate(layers):
                h @ w
                h.T @ grad
                if l > 0:
                    grad @ w.T
    return run


def serve(seed):
    """Answers block requests from stdin (see --serve) until it closes."""
    current, cache = None, {}
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            peer, name, batch, mode, seconds = line.split()
            batch, seconds = int(batch), float(seconds)
            if name not in SIZES:
                raise ValueError(f"unknown model {name!r}")
            form = "closed" if peer == "pytorch" else peer.removeprefix("pytorch-")
            if form not in BEAN_FORMS or mode not in ("plain", "bean1", "gemm-only"):
                raise ValueError(f"unknown peer or mode {peer!r} {mode!r}")
            if current != (name, batch):
                current, cache = (name, batch), {}
            key = (peer, mode)
            if key not in cache:
                work = (gemm_work(name, batch, seed) if mode == "gemm-only"
                        else step_work(name, batch, mode, form, seed))
                time_block(work, seconds)
                cache[key] = work
            steps, elapsed = time_block(cache[key], seconds)
            reply = {"samples_per_second": steps * batch / elapsed, "steps": steps}
        except ValueError as e:
            reply = {"error": str(e)}
        print(json.dumps(reply), flush=True)


def time_block(work, seconds):
    """Calls work() until `seconds` have passed; returns (calls, seconds taken)."""
    t0 = time.perf_counter()
    calls = 0
    while True:
        work()
        calls += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return calls, elapsed


def bench_one(name, batch, mode, form, repeats, min_block_s, seed, monitor, max_wait_s):
    step = step_work(name, batch, mode, form, seed)

    deadline = time.perf_counter() + max_wait_s
    discarded = 0
    contended = False

    def block(n):
        """Time n steps; returns (seconds per step, clean?)."""
        nonlocal discarded, contended
        while True:
            a = monitor.snapshot()
            for _ in range(n):
                step()
            b = monitor.snapshot()
            per_step = (b[0] - a[0]) / n
            if monitor.other_cores(a, b) < monitor.threshold:
                return per_step
            discarded += 1
            if not monitor.wait_quiet(deadline):
                contended = True
                return per_step

    monitor.wait_quiet(deadline)
    for _ in range(WARMUP_STEPS):
        loss = step()
    if not torch.isfinite(loss).item():
        print(f"WARNING: non-finite loss for {name}/{batch}/{mode}", file=sys.stderr)

    # Calibrate steps per block so that a block takes >= min_block_s.
    n = 1
    while True:
        dt = block(n) * n
        if dt >= min_block_s:
            break
        n = max(n + 1, int(n * min(10.0, 1.2 * min_block_s / max(dt, 1e-9))))

    per_step = [block(n) for _ in range(repeats)]
    med = statistics.median(per_step)
    if contended:
        print(f"WARNING: {name}/{batch}/{mode}: CPU never quiet within {max_wait_s:.0f} s; "
              "timings include contention", file=sys.stderr)
    return {
        "peer": "pytorch" if mode == "plain" or form == "closed" else f"pytorch-{form}",
        "model": name,
        "batch": batch,
        "mode": mode,
        "threads": torch.get_num_threads(),
        "step_ms_median": med * 1e3,
        "samples_per_second": batch / med,
        "repeats": repeats,
        "steps_per_repeat": n,
        "step_ms_min": min(per_step) * 1e3,
        "step_ms_max": max(per_step) * 1e3,
        "discarded_blocks": discarded,
        "contended": contended,
        "form": form if mode == "bean1" else None,
        "torch_version": torch.__version__,
    }


def csv_list(s):
    return [p.strip() for p in s.split(",") if p.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default="lenet,wide")
    ap.add_argument("--batches", default="128,512")
    ap.add_argument("--modes", default="plain,bean1")
    ap.add_argument("--forms", default="closed,bnm",
                    help=f"BEAN-1 forms to time, comma-separated ({', '.join(sorted(BEAN_FORMS))})")
    ap.add_argument("--quick", action="store_true",
                    help="3 repeats of >=0.1 s blocks instead of 7 of >=0.3 s")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-check", action="store_true", help="skip the closed/naive check")
    ap.add_argument("--serve", action="store_true",
                    help="time one block per request from stdin (see above)")
    ap.add_argument("--quiet-threshold", type=float, default=0.2,
                    help="discard timing blocks while other processes use more than this many "
                         "cores on average (default 0.2; pass e.g. 99 to keep every block)")
    ap.add_argument("--max-wait", type=float, default=600.0,
                    help="per configuration, give up waiting for a quiet CPU after this many s")
    args = ap.parse_args()

    torch.set_num_interop_threads(1)
    torch.set_num_threads(args.threads)

    models = csv_list(args.models)
    for m in models:
        if m not in SIZES:
            ap.error(f"unknown model {m!r} (known: {', '.join(SIZES)})")
    batches = [int(b) for b in csv_list(args.batches)]
    modes = csv_list(args.modes)
    for m in modes:
        if m not in ("plain", "bean1"):
            ap.error(f"unknown mode {m!r}")
    forms = csv_list(args.forms)
    for f in forms:
        if f not in BEAN_FORMS:
            ap.error(f"unknown form {f!r}")
    repeats = args.repeats or (3 if args.quick else 7)
    min_block_s = 0.1 if args.quick else 0.3

    if not args.no_check:
        sanity_check(models)
    if args.serve:
        serve(args.seed)
        return

    monitor = CpuMonitor(args.quiet_threshold)
    if not monitor.enabled:
        print("# /proc/stat unavailable: cannot detect CPU contention", file=sys.stderr)
    for name in models:
        for batch in batches:
            for mode in modes:
                for form in (forms if mode == "bean1" else [None]):
                    rec = bench_one(name, batch, mode, form, repeats, min_block_s, args.seed,
                                    monitor, args.max_wait)
                    print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
