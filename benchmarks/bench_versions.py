"""GRU4Rec training speed of two git revisions, measured interleaved in one run.

The speed part of ``bench_gru4rec.py`` (events/s of the authors' yoochoose parameters, full
softmax, the faithful settings, ML-100K, synthetic, the autograd loop) is run for the base
revision and for the working tree alternately, ``--rounds`` times each, every run in its
own process; the table gives the median events/s per setting and revision and their ratio.
Interleaving makes a busy or throttled machine hit both revisions alike.

    SEQREC_DATA=../shared/data python benchmarks/bench_versions.py --base 29a8291 --rounds 3

Writes ``benchmarks/results/gru4rec_versions.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_speed(tree: Path, threads: int, epochs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "speed.json"
        env = {**os.environ, "PYTHONPATH": str(tree / "src"), "OMP_NUM_THREADS": str(threads)}
        if "SEQREC_DATA" in env:  # the runs' cwd is the tree: make a relative path absolute
            env["SEQREC_DATA"] = str(Path(env["SEQREC_DATA"]).resolve())
        cmd = [
            sys.executable,
            str(tree / "benchmarks" / "bench_gru4rec.py"),
            "--only",
            "speed",
            "--speed-epochs",
            str(epochs),
            "--threads",
            str(threads),
            "--out",
            str(out),
        ]
        subprocess.run(cmd, check=True, cwd=tree, env=env, stdout=subprocess.DEVNULL)
        rows = json.loads(out.read_text())["speed"]
    return {r["run"]: float(r["events/s"]) for r in rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="git revision to compare against")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3, help="speed epochs per run (median of 2..)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gru4rec_versions.json"))
    args = ap.parse_args()
    base_dir = Path(tempfile.mkdtemp(prefix="seqrec-base-"))
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(base_dir), args.base], check=True, cwd=ROOT
    )
    try:
        runs: dict[str, list[dict[str, float]]] = {"base": [], "head": []}
        for r in range(args.rounds):
            for name, tree in (("base", base_dir), ("head", ROOT)):
                print(f"round {r + 1}: {name}", file=sys.stderr, flush=True)
                runs[name].append(run_speed(tree, args.threads, args.epochs))
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(base_dir)], cwd=ROOT)
    settings = list(runs["head"][0])
    rows = []
    for s in settings:
        b = statistics.median(x[s] for x in runs["base"] if s in x)
        h = statistics.median(x[s] for x in runs["head"] if s in x)
        rows.append({"run": s, "base_events_per_s": b, "head_events_per_s": h, "ratio": h / b})
    w = max(len(r["run"]) for r in rows)
    print(f"\n{'run':<{w}}  base ev/s  head ev/s  head/base")
    for r in rows:
        print(
            f"{r['run']:<{w}}  {r['base_events_per_s']:9,.0f}  {r['head_events_per_s']:9,.0f}"
            f"  {r['ratio']:9.3f}"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "base": args.base,
        "rounds": args.rounds,
        "threads": args.threads,
        "rows": rows,
        "runs": runs,
    }
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
