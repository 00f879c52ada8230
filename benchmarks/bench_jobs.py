"""``seqrec run --jobs``: wall time of one small grid run serially with T torch threads against
N worker processes with T / N threads each (the issue's question: on a 2-core machine, do two
one-thread workers beat one two-thread worker for small models?).

The grid: GRU4Rec on the synthetic generator, ``--points`` points (hidden sizes), a few epochs
each, so that a point takes seconds. Each setting runs ``--repeats`` times into fresh
directories; the median wall time is kept. Run it on an otherwise idle machine (the numbers
mean nothing next to other jobs; ``os.getloadavg()`` is recorded with them).

    python benchmarks/bench_jobs.py                 # 1 x 2 threads against 2 x 1 thread
    python benchmarks/bench_jobs.py --threads 4 --jobs 1 2 4

Writes ``benchmarks/results/jobs.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]

EXPERIMENT = """\
name = "jobs"
seed = 0
[data]
dataset = "synthetic"
[data.synthetic]
n_sessions = {sessions}
n_items = 300
seed = 1
[preprocess]
min_item_support = 1
[split]
test_days = 6
valid_days = 6
[model]
name = "gru4rec"
layers = [64]
[train]
epochs = {epochs}
batch_size = 32
progress = false
[eval]
on = ["test"]
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2, help="torch threads in all (default 2)")
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--points", type=int, default=4)
    ap.add_argument("--sessions", type=int, default=3000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "jobs.json"))
    args = ap.parse_args()

    from seqrec.experiment import grid, run_grid

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        exp = Path(tmp) / "jobs.toml"
        layers = ", ".join(f"[{32 + 16 * i}]" for i in range(args.points))
        exp.write_text(
            EXPERIMENT.format(sessions=args.sessions, epochs=args.epochs)
            + f'[grid]\n"model.layers" = [{layers}]\n'
        )
        configs = grid(exp)
        results = []
        for jobs in args.jobs:
            times = []
            for rep in range(args.repeats):
                t = time.perf_counter()
                run_grid(configs, Path(tmp) / f"j{jobs}-{rep}", progress=False, jobs=jobs)
                times.append(time.perf_counter() - t)
            row = {
                "jobs": jobs,
                "threads_per_job": max(1, args.threads // jobs),
                "seconds_median": statistics.median(times),
                "seconds": times,
            }
            print(json.dumps(row), flush=True)
            results.append(row)
    out = {
        "command": "python benchmarks/bench_jobs.py " + " ".join(sys.argv[1:]),
        "cpu_count": os.cpu_count(),
        "loadavg_at_end": os.getloadavg(),
        "torch_threads": args.threads,
        "points": args.points,
        "sessions": args.sessions,
        "epochs": args.epochs,
        "results": results,
    }
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
