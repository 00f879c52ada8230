"""Every next-item model on three protocols, RecBole's GRU4Rec and SASRec side by side.

Usage (from the repo root, real data under $SEQREC_DATA):

    SEQREC_DATA=../shared/data python benchmarks/bench_next_item.py            # everything
    SEQREC_DATA=../shared/data python benchmarks/bench_next_item.py --protocols loo \\
        --models sasrec-ce,sknn --no-recbole                                     # a part

Protocols (each from its experiment file under configs/, so the split is exactly the one
``seqrec run`` makes):

* ``loo`` — ML-100K leave-one-out (``configs/ml100k_loo_gru4rec.toml``): each user one
  sequence in stable time order, last event test, second-to-last valid, all items ranked,
  no seen-item masking;
* ``notebook`` — the reference notebook's protocol on ML-100K
  (``configs/ml100k_notebook.toml``: fixed-point cleaning, each event split by its own time,
  last 14 days test, 14 before valid);
* ``yoochoose`` — yoochoose-100k's own train/test files (``configs/yoochoose100k_gru4rec.toml``).

Each (protocol, model) runs in its own worker process (so peak RSS is the model's), trains
with early stopping on valid NDCG@10 where the protocol has a valid part, and reports test
Recall@10/20, MRR@20, NDCG@10/20, training seconds, seconds per epoch, the training seconds to
the best valid NDCG@10, evaluation queries/s and peak RSS. RecBole 1.2.1 runs in its own
virtual environment (``benchmarks/recbole_side.py``) on the same leave-one-out split.

Prints one table per protocol and writes ``benchmarks/results/next_item.json``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROTOCOLS = {
    "loo": ROOT / "configs" / "ml100k_loo_gru4rec.toml",
    "notebook": ROOT / "configs" / "ml100k_notebook.toml",
    "yoochoose": ROOT / "configs" / "yoochoose100k_gru4rec.toml",
}
METRICS = ["recall@10", "recall@20", "mrr@20", "ndcg@10", "ndcg@20"]
VALID_METRIC = "ndcg@10"

# SASRec: the same settings on every protocol, only the loss varies between the variants.
_SASREC = {"max_len": 50, "hidden": 64, "blocks": 2, "heads": 1, "dropout": 0.5}
_SASREC_TRAIN = {"epochs": 200, "patience": 10, "batch_size": 128, "learning_rate": 1e-3}

MODELS: dict[str, dict[str, Any]] = {
    # name -> {"model": ..., "objective": ..., "train": ...}; "from_file": the protocol's own
    "gru4rec": {"from_file": True},
    "sasrec-ce": {"model": {"name": "sasrec", "loss": "ce", **_SASREC}, "train": _SASREC_TRAIN},
    "sasrec-bce": {"model": {"name": "sasrec", "loss": "bce", **_SASREC}, "train": _SASREC_TRAIN},
    "sasrec-gbce": {
        "model": {"name": "sasrec", "loss": "gbce", **_SASREC},
        "train": _SASREC_TRAIN,
    },
    "sasrec-ssm": {
        "model": {"name": "sasrec", "loss": "sampled-softmax", **_SASREC},
        "train": _SASREC_TRAIN,
    },
    "pop": {"model": {"name": "pop"}},
    "recent-pop": {"model": {"name": "recent-pop"}},
    "spop": {"model": {"name": "spop"}},
    "markov": {"model": {"name": "markov"}},
    "sr": {"model": {"name": "sr"}},
    "iknn": {"model": {"name": "iknn"}},
    "sknn": {"model": {"name": "sknn"}},
    "vsknn": {"model": {"name": "vsknn"}},
}
NO_VALID_EPOCHS = 30
"""Epochs of a trained model on a protocol without a valid part (yoochoose: test only)."""
LOO_ONLY = {"sasrec-bce", "sasrec-gbce", "sasrec-ssm"}  # loss comparison on one protocol
NEURAL = {"gru4rec", "sasrec-ce", "sasrec-bce", "sasrec-gbce", "sasrec-ssm"}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


# ----------------------------------------------------------------------------- worker
def worker(protocol: str, model_name: str, threads: int, max_epochs: int | None) -> dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    from seqrec.experiment import load_experiment, prepare_data
    from seqrec.models import MODELS as REGISTRY
    from seqrec.recommender import Recommender
    from seqrec.train import TrainConfig

    cfg = load_experiment(PROTOCOLS[protocol])
    t0 = time.perf_counter()
    split, stats = prepare_data(cfg)
    prep_s = time.perf_counter() - t0
    entry = MODELS[model_name]
    has_valid = split.valid is not None and split.valid.height > 0
    base_train = {"progress": False, "device": "cpu", "valid_metric": VALID_METRIC}
    if entry.get("from_file"):
        model_cfg = cfg.model
        objective = cfg.objective
        train = cfg.train.model_dump()
        train.update(base_train)
        if has_valid:
            train["patience"] = max(train.get("patience") or 0, 3)
    else:
        spec = REGISTRY[entry["model"]["name"]]
        model_cfg = spec.config.model_validate(entry["model"])
        objective = None
        train = {**entry.get("train", {}), **base_train}
        if not has_valid:  # no early stopping: a fixed budget
            train.pop("patience", None)
            train["epochs"] = min(train.get("epochs", NO_VALID_EPOCHS), NO_VALID_EPOCHS)
    if max_epochs is not None and "epochs" in train:
        train["epochs"] = min(train["epochs"], max_epochs)
    rec = Recommender(model_cfg, objective, TrainConfig.model_validate(train), seed=cfg.seed)
    t0 = time.perf_counter()
    rec.fit(split.train, split.valid if has_valid else None)
    fit_s = time.perf_counter() - t0
    report = rec.evaluate(split.test, metrics=METRICS, split="test")
    hist = rec.history_
    out: dict[str, Any] = {
        "protocol": protocol,
        "model": model_name,
        "config": rec.config.model_dump(mode="json"),
        "prep_seconds": prep_s,
        "fit_seconds": fit_s,
        "test": report.metrics,
        "eval_seconds": report.seconds,
        "eval_queries": report.n_queries,
        "eval_queries_per_second": report.queries_per_second,
        "eval_protocol": report.protocol,
        "split_counts": stats["split"],
        "peak_rss_mb": peak_rss_mb(),
        "threads": threads,
    }
    if hist:
        train_s = [h.seconds for h in hist]
        out["epochs"] = len(hist)
        out["train_seconds"] = sum(train_s)
        out["seconds_per_epoch"] = sum(train_s) / len(train_s)
        out["history"] = [
            {"epoch": h.epoch, "loss": h.loss, "seconds": h.seconds, "valid": h.valid} for h in hist
        ]
        if has_valid:
            vals = [h.valid.get(VALID_METRIC, float("-inf")) for h in hist]
            best = max(range(len(vals)), key=vals.__getitem__)
            out["best_epoch"] = best + 1
            out["best_valid_ndcg@10"] = vals[best]
            out["seconds_to_best"] = sum(train_s[: best + 1])
    else:
        out["train_seconds"] = fit_s
    return out


def run_worker(protocol: str, model: str, threads: int, max_epochs: int | None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", protocol, model, "--threads", str(threads)]
    if max_epochs is not None:
        cmd += ["--max-epochs", str(max_epochs)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        tail = p.stderr.strip().splitlines()[-5:]
        return {"protocol": protocol, "model": model, "error": " | ".join(tail)}
    res = json.loads(p.stdout.strip().splitlines()[-1])
    res["wall_seconds"] = time.perf_counter() - t0
    return res


# ----------------------------------------------------------------------------- RecBole
def run_recbole_side(models: list[str], epochs: int, threads: int) -> list[dict[str, Any]]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import recbole_side  # noqa: PLC0415 - benchmarks/recbole_side.py

    from seqrec.datasets import load_dataset

    frame = load_dataset("ml-100k")
    out = []
    for m in models:
        t0 = time.perf_counter()
        try:
            res = recbole_side.run_recbole(
                m,
                frame,
                epochs=epochs,
                threads=threads,
                out_json=ROOT / "benchmarks" / "results" / f"recbole_{m.lower()}.json",
                extra={},
            )
        except Exception as e:  # noqa: BLE001 - report and go on
            res = {"error": f"{type(e).__name__}: {e}"}
        res.update(
            protocol="loo", model=f"recbole-{m.lower()}", wall_seconds=time.perf_counter() - t0
        )
        if "epochs_log" in res:  # RecBole's JSON -> the columns of our rows
            train_s = [e["train_s"] for e in res["epochs_log"]]
            res["epochs"] = len(train_s)
            res["train_seconds"] = sum(train_s)
            res["seconds_per_epoch"] = sum(train_s) / len(train_s)
            res["best_epoch"] = res["best"]["epochs_trained_to_reach_it"]
            res["best_valid_ndcg@10"] = res["best"]["valid_ndcg@10"]
            res["seconds_to_best"] = res["best"]["train_s_cum"]
            res["history"] = [
                {"epoch": e["epoch"] + 1, "seconds": e["train_s"], "valid": e["valid"]}
                for e in res["epochs_log"]
            ]
        out.append(res)
    return out


# ----------------------------------------------------------------------------- tables
def fmt(v: Any, digits: int = 4) -> str:
    if v is None or v == "":
        return ""
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if abs(v) >= 10:
            return f"{v:.1f}"
        return f"{v:.{digits}f}"
    return str(v)


def table(rows: list[dict[str, Any]]) -> str:
    cols = [
        ("model", lambda r: r["model"]),
        *[(m, lambda r, m=m: r.get("test", {}).get(m)) for m in METRICS],
        ("train s", lambda r: r.get("train_seconds")),
        ("s/epoch", lambda r: r.get("seconds_per_epoch")),
        ("epochs", lambda r: r.get("epochs")),
        ("best ep", lambda r: r.get("best_epoch")),
        ("s to best", lambda r: r.get("seconds_to_best")),
        ("eval q/s", lambda r: r.get("eval_queries_per_second")),
        ("peak RSS MB", lambda r: r.get("peak_rss_mb")),
    ]
    cells = []
    for r in rows:
        if "error" in r:
            cells.append([r["model"], f"ERROR {r['error'][:80]}"] + [""] * (len(cols) - 2))
        else:
            cells.append([fmt(f(r)) for _, f in cols])
    w = [max(len(c), *(len(x[i]) for x in cells)) for i, (c, _) in enumerate(cols)]
    lines = ["| " + " | ".join(c.ljust(w[i]) for i, (c, _) in enumerate(cols)) + " |"]
    lines.append("|" + "|".join("-" * (x + 2) for x in w) + "|")
    lines += ["| " + " | ".join(x[i].ljust(w[i]) for i in range(len(cols))) + " |" for x in cells]
    return "\n".join(lines)


def _seconds_to_reach(row: dict[str, Any], level: float | None) -> float | None:
    if level is None:
        return None
    t = 0.0
    for h in row.get("history", []):
        t += h["seconds"]
        if h["valid"].get(VALID_METRIC, float("-inf")) >= level:
            return t
    return None


def ratios(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """seqrec vs RecBole (same split, same run): speed, time to best, metrics, memory."""
    by = {r["model"]: r for r in rows if "error" not in r}
    out: dict[str, Any] = {}
    for ours, theirs in (("sasrec-ce", "recbole-sasrec"), ("gru4rec", "recbole-gru4rec")):
        a, b = by.get(ours), by.get(theirs)
        if not a or not b:
            continue
        out[f"{ours}_vs_{theirs}"] = {
            "seconds_per_epoch_ratio": b.get("seconds_per_epoch", 0) / a["seconds_per_epoch"]
            if a.get("seconds_per_epoch")
            else None,
            "seconds_to_best_ratio": b.get("seconds_to_best", 0) / a["seconds_to_best"]
            if a.get("seconds_to_best")
            else None,
            "peak_rss_ratio": a["peak_rss_mb"] / b["peak_rss_mb"] if b.get("peak_rss_mb") else None,
            # seqrec's training seconds until its valid NDCG@10 first reached RecBole's best
            "seconds_to_recbole_best": _seconds_to_reach(a, b.get("best_valid_ndcg@10")),
            "test_ndcg@10": (a["test"].get("ndcg@10"), b.get("test", {}).get("ndcg@10")),
            "test_recall@20": (a["test"].get("recall@20"), b.get("test", {}).get("recall@20")),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--protocols", default="loo,notebook,yoochoose")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--threads", type=int, default=2, help="torch threads per worker (default 2)")
    ap.add_argument("--max-epochs", type=int, default=None, help="cap every model's epochs")
    ap.add_argument("--no-recbole", action="store_true", help="skip the RecBole side")
    ap.add_argument("--recbole-models", default="GRU4Rec,SASRec")
    ap.add_argument(
        "--recbole-epochs", type=int, default=5, help="RecBole epochs (slow: ~2-4 min each)"
    )
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "next_item.json"))
    ap.add_argument("--worker", nargs=2, metavar=("PROTOCOL", "MODEL"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args.threads, args.max_epochs)))
        return
    protocols = [p for p in args.protocols.split(",") if p]
    models = [m for m in args.models.split(",") if m]
    unknown = [m for m in models if m not in MODELS] + [p for p in protocols if p not in PROTOCOLS]
    if unknown:
        ap.error(
            f"unknown model/protocol {unknown}; models: {list(MODELS)}, protocols: {list(PROTOCOLS)}"
        )
    results: dict[str, list[dict[str, Any]]] = {}
    for proto in protocols:
        rows = []
        for m in models:
            if m in LOO_ONLY and proto != "loo":
                continue
            print(f"[{proto}] {m} ...", file=sys.stderr, flush=True)
            rows.append(run_worker(proto, m, args.threads, args.max_epochs))
        if proto == "loo" and not args.no_recbole:
            rb = [m for m in args.recbole_models.split(",") if m]
            print(f"[{proto}] RecBole {rb} ...", file=sys.stderr, flush=True)
            rows += run_recbole_side(rb, args.recbole_epochs, args.threads)
        results[proto] = rows
        print(f"\n## {proto} ({PROTOCOLS[proto].name})\n")
        print(table(rows))
    summary = {
        "date": _dt.date.today().isoformat(),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
            "threads": args.threads,
            "python": platform.python_version(),
        },
        "command": " ".join(["python", "benchmarks/bench_next_item.py", *sys.argv[1:]]),
        "results": results,
        "ratios": ratios(results.get("loo", [])),
    }
    if summary["ratios"]:
        print("\n## seqrec vs RecBole (ML-100K leave-one-out, same run)\n")
        print(json.dumps(summary["ratios"], indent=2))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(summary, indent=2, default=str))
    os.replace(tmp, out)
    print(f"\nwrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
