#!/usr/bin/env python3
"""Join fine-tuning-step benchmark results (JSON lines) into a markdown table.

Usage: report.py RESULTS.jsonl [MORE.jsonl ...]   ("-" reads stdin)

Each input line is a JSON object with keys peer, model, batch, mode, threads,
step_ms_median, samples_per_second. Peers: "pytorch" (bench/torch_step.py),
"bean-onnx-ort", "bean-onnx-tract"; other peers get a samples/s column too.
Lines that are not JSON objects (e.g. "# ..." comments) are skipped. A (peer, model, batch,
mode, threads) key that appears more than once (bench/run.sh's alternating rounds) gets the
median of its rounds.

Columns: samples/s per peer; ort / P and tract / P for each PyTorch peer P present
("pytorch": plain steps and BEAN-1 in the O(n^2) closed form; "pytorch-bnm": BEAN-1 in the
O(B*n*m) form bean-onnx uses; "pytorch-naive": the authors' form) — ratios of samples/s,
> 1 means bean-onnx is faster; per peer "bean1 cost" = step_ms(bean1) / step_ms(plain) for the
same model, batch and threads (shown on the bean1 row); and "step / GEMM" per bean-onnx engine:
step time over the time of the step's matrix products alone (mode "gemm-only", same engine
and threads; 1.0 is the roofline).
Rows are model x batch x mode; a threads column is added when the inputs mix
thread counts. Missing entries are shown as "–". Standard library only.
"""
import json
import statistics
import sys

DASH = "–"
BASELINE = "pytorch"
ORT = "bean-onnx-ort"
ORT_GRAPH = "bean-onnx-ort-graph"
TRACT = "bean-onnx-tract"
KNOWN_PEERS = [BASELINE, ORT, TRACT]
SHORT = {BASELINE: "pytorch", ORT: "ort", ORT_GRAPH: "ort-graph", TRACT: "tract",
         "pytorch-bnm": "pytorch-bnm", "pytorch-naive": "pytorch-naive"}
MODEL_ORDER = ["lenet", "wide"]
MODE_ORDER = ["plain", "bean1"]
GEMM = "gemm-only"


def load(paths):
    records = {}
    for path in paths:
        if path == "-":
            lines = sys.stdin.read().splitlines()
        else:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        for lineno, line in enumerate(lines, 1):
            line = line.strip()
            if not line or not line.startswith("{"):
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                print(f"{path}:{lineno}: skipping unparsable line ({e})", file=sys.stderr)
                continue
            try:
                key = (str(rec["peer"]), str(rec["model"]), int(rec["batch"]),
                       str(rec["mode"]), int(rec.get("threads") or 0))
            except (KeyError, TypeError, ValueError):
                print(f"{path}:{lineno}: skipping line without peer/model/batch/mode",
                      file=sys.stderr)
                continue
            records.setdefault(key, []).append(rec)
    return {key: median_record(recs) for key, recs in records.items()}


def median_record(recs):
    """One record from the rounds of a configuration: the median of each timing (the first
    record's other fields), and how many rounds there were."""
    out = dict(recs[0])
    for field in ("step_ms_median", "samples_per_second"):
        values = sorted(v for v in (num(r, field) for r in recs) if v is not None)
        if values:
            out[field] = statistics.median(values)
    out["rounds"] = len(recs)
    return out


def num(rec, field):
    if rec is None:
        return None
    v = rec.get(field)
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if v > 0 else None


def fmt_rate(v):
    return DASH if v is None else f"{v:,.0f}"


def fmt_ratio(v):
    return DASH if v is None else f"{v:.2f}×"


def ratio(a, b):
    return None if a is None or b is None else a / b


def order_key(value, order):
    return (order.index(value), "") if value in order else (len(order), value)


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stdout if len(argv) >= 2 else sys.stderr)
        return 0 if len(argv) >= 2 else 2
    records = load(argv[1:])
    if not records:
        print("no results found", file=sys.stderr)
        return 1

    present = {k[0] for k in records}
    peers = KNOWN_PEERS + sorted(present - set(KNOWN_PEERS))  # the 3 known always shown
    torch_peers = [p for p in peers if p.startswith(BASELINE)]
    engines = [p for p in (ORT, ORT_GRAPH, TRACT) if p in peers]

    threads_seen = sorted({k[4] for k in records})
    show_threads = len(threads_seen) > 1
    rows = sorted({(k[1], k[2], k[3], k[4]) for k in records if k[3] != GEMM},
                  key=lambda r: (order_key(r[0], MODEL_ORDER), r[1], r[3],
                                 order_key(r[2], MODE_ORDER)))

    header = ["model", "batch", "mode"] + (["threads"] if show_threads else [])
    header += [f"{SHORT.get(p, p)} samples/s" for p in peers]
    header += [f"{SHORT[e]} / {SHORT.get(t, t)}" for t in torch_peers for e in engines]
    header += [f"{SHORT.get(p, p)} bean1 cost" for p in peers]
    header += [f"{SHORT[e]} step / GEMM" for e in engines]
    align = ["---"] * (3 + show_threads) + ["---:"] * (len(header) - 3 - show_threads)

    out = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    for model, batch, mode, threads in rows:
        get = lambda peer, m=mode: records.get((peer, model, batch, m, threads))  # noqa: E731
        rate = {p: num(get(p), "samples_per_second") for p in peers}
        cells = [model, str(batch), mode] + ([str(threads)] if show_threads else [])
        cells += [fmt_rate(rate[p]) for p in peers]
        cells += [fmt_ratio(ratio(rate.get(e), rate.get(t))) for t in torch_peers for e in engines]
        for p in peers:
            if mode == "bean1":
                cost = ratio(num(get(p, "bean1"), "step_ms_median"),
                             num(get(p, "plain"), "step_ms_median"))
            else:
                cost = None
            cells.append(fmt_ratio(cost))
        for e in engines:
            gemm = records.get((ORT if e == ORT_GRAPH else e, model, batch, GEMM, threads))
            cells.append(fmt_ratio(ratio(num(get(e), "step_ms_median"),
                                         num(gemm, "step_ms_median"))))
        out.append("| " + " | ".join(cells) + " |")

    out.append("")
    notes = []
    if not show_threads:
        t = threads_seen[0]
        notes.append(f"Threads: {t if t else 'unspecified'}.")
    rounds = sorted({r.get("rounds", 1) for r in records.values()})
    notes.append(f"Rounds per figure (median): {', '.join(map(str, rounds))}.")
    notes.append("x / pytorch: samples/s ratio (> 1 = bean-onnx faster). bean1 cost: median "
                 "step time with BEAN-1 / without (same model, batch, threads).")
    out.append(" ".join(notes))
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
