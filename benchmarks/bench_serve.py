"""Load benchmark of ``seqrec serve``: held-out sessions of ML-100K and yoochoose-100k sent to
a served GRU4Rec and SASRec over loopback, with Debian's ``wrk`` (Lua script for the POST
bodies) as the load generator.

For each model and worker count: throughput, p50/p90/p99 latency and errors at fixed
offered rates (wrk connections pacing themselves with a Lua ``delay``) and at saturation;
then an in-process profile of one request's parts (JSON parse + validation, query building,
scoring alone and batched, response encoding) and of the framework alone (``/healthz``).

Bounded: every wrk run has a fixed duration; the whole run stops by itself.

    SEQREC_DATA=../shared/data python benchmarks/bench_serve.py --quick   # ~3 min
    SEQREC_DATA=../shared/data python benchmarks/bench_serve.py           # 60 s at the target rate

Writes ``benchmarks/results/serve.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from _serve import running_server  # noqa: E402
from seqrec.columns import Columns  # noqa: E402
from seqrec.datasets import load_dataset  # noqa: E402
from seqrec.models import MODELS  # noqa: E402
from seqrec.preprocess import clean  # noqa: E402
from seqrec.recommender import Recommender  # noqa: E402
from seqrec.split import presplit, split_by_time  # noqa: E402
from seqrec.train import TrainConfig  # noqa: E402

LUA = r"""
local bodies = {}
for line in io.lines("%(bodies)s") do bodies[#bodies + 1] = line end
local i = 0
local headers = {["Content-Type"] = "application/json"}
local pause = %(delay_ms)s
function request()
  i = i %% #bodies + 1
  return wrk.format("POST", "/v1/recommend", headers, bodies[i])
end
function delay()  -- whole milliseconds, randomly rounded: the mean is the fractional pause
  local d = math.floor(pause)
  if math.random() < pause - d then d = d + 1 end
  return d
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT %%d %%d %%d %%d %%d %%d %%d %%d %%d %%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect + e.read + e.write + e.timeout, e.status,
    e.timeout, summary.bytes))
end
"""


# ------------------------------------------------------------------------- data
def held_out_sessions(name: str) -> tuple[pl.DataFrame, list[list[int]]]:
    """(train frame, held-out request sessions: a prefix of each test session)."""
    if name == "ml-100k":
        df = clean(load_dataset("ml-100k"), min_session_length=2, min_item_support=5)
        split = split_by_time(df, test_days=14, valid_days=0)
    else:
        split = presplit(load_dataset("yoochoose-100k"), column="split", train_items_only=True)
    test = split.test.sort([Columns.session, Columns.time])
    groups = test.group_by(Columns.session, maintain_order=True).agg(pl.col(Columns.item))
    rng = np.random.default_rng(0)
    sessions = []
    for items in groups.get_column(Columns.item).to_list():
        cut = int(rng.integers(1, len(items) + 1))
        sessions.append(items[max(0, cut - 20) : cut])  # the last <= 20 items of a prefix
    return split.train, sessions


def train(model: str, df: pl.DataFrame, epochs: int, out: Path) -> Path:
    cfg = {"gru4rec": {"layers": [100]}, "sasrec": {"max_len": 50, "hidden": 64, "blocks": 2}}
    spec = MODELS[model]
    rec = Recommender(
        spec.config.model_validate({"name": model, **cfg[model]}),
        train=TrainConfig(epochs=epochs, progress=False, device="cpu"),
    ).fit(df)
    rec.save(out)
    return out


# ------------------------------------------------------------------------- load
def wrk(
    url: str, bodies: Path, *, rate: float | None, seconds: int, connections: int
) -> dict[str, Any]:
    """One wrk run; ``rate``: offered requests/s (each connection pauses
    connections/rate between its requests), None: as fast as it can (saturation)."""
    delay = 0.0 if rate is None else 1000 * connections / rate
    if rate is not None:  # closed loop: a connection's cycle is pause + latency; calibrate
        slot = delay
        for _ in range(2):
            probe = _wrk(url, bodies, delay, 2, connections)
            latency = max(0.0, 1000 * connections / max(probe["rps"], 1.0) - delay)
            delay = max(0.0, slot - latency)
    res = _wrk(url, bodies, delay, seconds, connections)
    res["offered_rps"] = rate
    res["delay_ms"] = round(delay, 2)
    return res


def _wrk(url: str, bodies: Path, delay: float, seconds: int, connections: int) -> dict[str, Any]:
    script = bodies.with_suffix(f".{delay:.3f}.lua")
    script.write_text(LUA % {"bodies": bodies, "delay_ms": f"{delay:.3f}"})
    cmd = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "2s",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30).stdout
    m = re.search(r"RESULT (.*)", out)
    if m is None:
        raise RuntimeError(f"wrk gave no result:\n{out}")
    n, dur, p50, p90, p99, mx, sock_err, status_err, timeouts, nbytes = map(int, m.group(1).split())
    return {
        "connections": connections,
        "requests": n,
        "rps": round(n / (dur / 1e6), 1),
        "p50_ms": p50 / 1000,
        "p90_ms": p90 / 1000,
        "p99_ms": p99 / 1000,
        "max_ms": mx / 1000,
        "errors": sock_err + status_err,
        "seconds": round(dur / 1e6, 1),
    }


# ---------------------------------------------------------------------- profile
def profile(model_dir: Path, sessions: list[list[int]]) -> dict[str, float]:
    """Microseconds per request of each part, in process (median of repeats)."""
    from seqrec.serve import (
        RecommendRequest,
        ServeConfig,
        _dumps,
        build_queries,
        load_model,
        result_payload,
    )

    cfg = ServeConfig()
    m = load_model(model_dir)
    bodies = [json.dumps({"items": s, "k": 20}).encode() for s in sessions[:200]]

    def per(fn: Any, n: int) -> float:
        times = []
        for _ in range(5):
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) / n * 1e6)
        return round(float(np.median(times)), 1)

    reqs = [RecommendRequest.model_validate_json(b) for b in bodies]
    built = [build_queries(r, m, cfg) for r in reqs]
    qs = [b[0][0] for b in built]
    out: dict[str, float] = {}
    out["parse_validate_us"] = per(
        lambda: [RecommendRequest.model_validate_json(b) for b in bodies], len(bodies)
    )
    out["build_queries_us"] = per(lambda: [build_queries(r, m, cfg) for r in reqs], len(reqs))
    out["score_batch1_us"] = per(lambda: [m.rec.recommend_queries([q], 20) for q in qs[:50]], 50)
    out["score_batch32_per_query_us"] = per(
        lambda: [m.rec.recommend_queries(qs[i : i + 32], 20) for i in range(0, 192, 32)], 192
    )
    recs = [m.rec.recommend_queries([q], 20) for q in qs]
    out["encode_response_us"] = per(
        lambda: [
            _dumps(
                {"model": "x", "model_version": "v", "results": result_payload(m, r, [[]], False)}
            )
            for r in recs
        ],
        len(recs),
    )
    return out


def framework_only(url: str, seconds: int) -> float:
    """Requests/s of GET /healthz at saturation: uvicorn + FastAPI with no work."""
    cmd = ["wrk", "-t1", "-c32", f"-d{seconds}s", url + "/healthz"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30).stdout
    m = re.search(r"Requests/sec:\s*([\d.]+)", out)
    return float(m.group(1)) if m else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="5 s per point, fewer points (~3 min)")
    ap.add_argument("--seconds", type=int, default=None, help="seconds per wrk point")
    ap.add_argument(
        "--target-seconds", type=int, default=60, help="seconds at the 1,000 req/s target"
    )
    ap.add_argument("--datasets", nargs="+", default=["ml-100k", "yoochoose-100k"])
    ap.add_argument("--models", nargs="+", default=["gru4rec", "sasrec"])
    ap.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--rates", nargs="+", type=float, default=None)
    ap.add_argument("--batch-window-ms", type=float, default=0.0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "serve.json"))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(
        1
    )  # training and the profile: 2 OpenMP threads on a shared 2-core box crawl
    if shutil.which("wrk") is None:
        sys.exit("bench_serve: needs Debian's wrk (apt-get install -y wrk)")
    seconds = args.seconds or (5 if args.quick else 15)
    target_s = 10 if args.quick else args.target_seconds
    rates = args.rates or ([250.0, 1000.0] if args.quick else [250.0, 500.0, 1000.0, 1500.0])
    epochs = 1 if args.quick else 3
    results: dict[str, Any] = {
        "command": " ".join(sys.argv),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpus": os.cpu_count(),
        "load_before": os.getloadavg(),
        "runs": [],
        "profile": {},
    }
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        for ds in args.datasets:
            df, sessions = held_out_sessions(ds)
            bodies = tmp / f"{ds}.bodies"
            bodies.write_text("\n".join(json.dumps({"items": s, "k": 20}) for s in sessions) + "\n")
            print(f"{ds}: {len(sessions):,} held-out request sessions", flush=True)
            for model in args.models:
                t = time.time()
                mdir = train(model, df, epochs, tmp / f"{ds}-{model}")
                print(f"  trained {model} in {time.time() - t:.1f} s", flush=True)
                results["profile"][f"{ds}/{model}"] = profile(mdir, sessions)
                print(f"  profile {results['profile'][f'{ds}/{model}']}", flush=True)
                for workers in args.workers:
                    flags = [
                        "--workers",
                        str(workers),
                        "--torch-threads",
                        "1",
                        "--batch-window-ms",
                        str(args.batch_window_ms),
                    ]
                    with running_server(mdir, flags) as url:
                        wrk(url, bodies, rate=None, seconds=2, connections=8)  # warm-up
                        fw = framework_only(url, min(seconds, 5))
                        results["runs"].append(
                            {"dataset": ds, "model": model, "workers": workers, "healthz_rps": fw}
                        )
                        print(
                            f"  {model:8s} w={workers} GET /healthz (framework only): {fw:,.0f} req/s"
                        )
                        # paced points: 8 connections (more connections fall into step and
                        # arrive in bursts); saturation: 32
                        points = [(r, seconds, 8) for r in rates if r != 1000.0]
                        points.append((1000.0, target_s, 8))
                        points.append((None, seconds, 32))
                        for rate, secs, conns in sorted(points, key=lambda p: p[0] or 1e9):
                            res = wrk(url, bodies, rate=rate, seconds=secs, connections=conns)
                            res.update(
                                dataset=ds, model=model, workers=workers, load=os.getloadavg()[0]
                            )
                            results["runs"].append(res)
                            print(
                                f"  {model:8s} w={workers} offered={rate or 'max':>6} -> "
                                f"{res['rps']:8.1f} req/s  p50 {res['p50_ms']:.2f}  p90 {res['p90_ms']:.2f}  "
                                f"p99 {res['p99_ms']:.2f} ms  errors {res['errors']}  ({res['seconds']} s)",
                                flush=True,
                            )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
