"""The cell cache: every finished unit of work (one configuration at one seed) is a JSON file under
bench/paper/cells/, named by a hash of its full configuration, so an interrupted run resumes where
it stopped and a changed setting or binary recomputes only what it touches.

key(config)          sha256 of the canonical JSON of the configuration (sorted keys), 16 hex digits
cached(config, fn)   the stored result for `config`, or fn() stored atomically (write to a temporary
                     file, then rename) together with the configuration and the seconds it took
                     (the returned dict then has "fresh": True)
log_run(entry)       append an invocation's summary to cells/runs.jsonl (wall times for the report)
"""
import hashlib
import json
import os
import threading
import time

DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cells")


def key(config):
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def path_of(config):
    return os.path.join(DIR, f"{config['kind']}-{key(config)}.json")


def load(config):
    p = path_of(config)
    if os.path.exists(p):
        with open(p) as f:
            return json.load(f)
    return None


def cached(config, fn, valid=lambda cell: True):
    """Return the cached cell for `config` (if `valid(cell)`), else run fn() -> dict and store it."""
    cell = load(config)
    if cell is not None and valid(cell):
        return cell
    t0 = time.time()
    result = fn()
    cell = {"config": config, "result": result, "seconds": time.time() - t0,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
    os.makedirs(DIR, exist_ok=True)
    p = path_of(config)
    tmp = f"{p}.{os.getpid()}.{threading.get_ident()}.tmp"
    with open(tmp, "w") as f:
        json.dump(cell, f, indent=1, sort_keys=True)
    os.replace(tmp, p)
    return {**cell, "fresh": True}


def log_run(entry):
    """Append one invocation's summary (profile, start, wall time, cells computed/cached) to
    cells/runs.jsonl and return every entry logged so far."""
    os.makedirs(DIR, exist_ok=True)
    p = os.path.join(DIR, "runs.jsonl")
    with open(p, "a") as f:
        f.write(json.dumps(entry, sort_keys=True) + "\n")
    with open(p) as f:
        return [json.loads(line) for line in f if line.strip()]
