"""GRU4Rec benchmark: preprocessing time, training events/s, evaluation queries/s, accuracy.

Usage (from the repo root, real data under $SEQREC_DATA):

    SEQREC_DATA=../shared/data python benchmarks/bench_gru4rec.py            # everything
    SEQREC_DATA=../shared/data python benchmarks/bench_gru4rec.py --only speed --epochs 2

Prints tables and writes benchmarks/results/gru4rec.json. Compare ratios within one run: the
machines are noisy. Reference figures (official code, RecBole) are from the issue text and are
printed beside ours, not measured here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from seqrec.data import SequenceData, Vocabulary
from seqrec.data.synthetic import synthetic_sessions
from seqrec.datasets import load_dataset
from seqrec.models import GRU4RecConfig, PopularityConfig
from seqrec.models.gru4rec import ObjectiveConfig
from seqrec.preprocess import clean
from seqrec.recommender import Recommender
from seqrec.split import leave_last_out, presplit, split_by_time
from seqrec.train import TrainConfig

REFERENCE = {
    "official_yoochoose_events_per_s_2cores": "7,000-8,500",
    "official_yoochoose_events_per_s_1core": "~3,500",
    "official_yoochoose_test": {"recall@20": 0.68, "mrr@20": 0.36},
    "recbole_ml100k_loo_test": {"recall@20": 0.19, "ndcg@10": 0.057, "seconds_per_epoch": 150},
}

# the authors' published RSC15 parameters (paramfiles/rsc15_xe_shared_best.py)
YOO_MODEL = GRU4RecConfig(
    layers=[100], constrained_embedding=True, dropout_embed=0.0, dropout_hidden=0.4
)
YOO_OBJ = ObjectiveConfig(loss="cross-entropy", n_sample=2048, sample_alpha=0.5, logq=1.0)
YOO_TRAIN = dict(batch_size=32, optimizer="adagrad", learning_rate=0.2, momentum=0.2)
# the faithful setting used for the >= 25k events/s target: 100 units, batch >= 128, 2048 samples
FAITHFUL_MODEL = GRU4RecConfig(layers=[100], dropout_hidden=0.2)
FAITHFUL_OBJ = ObjectiveConfig(loss="cross-entropy", n_sample=2048, sample_alpha=0.5, logq=1.0)
FAITHFUL_TRAIN = dict(batch_size=128, optimizer="adagrad", learning_rate=0.1, momentum=0.0)
ML_LOO_MODEL = GRU4RecConfig(layers=[200], dropout_hidden=0.3)
ML_LOO_OBJ = ObjectiveConfig(loss="cross-entropy", n_sample=2048, sample_alpha=0.5, logq=1.0)
ML_LOO_TRAIN = dict(batch_size=32, optimizer="adagrad", learning_rate=0.05, momentum=0.0)
LOO_METRICS = ["recall@10", "recall@20", "mrr@20", "ndcg@10", "ndcg@20"]


def table(rows: list[dict], cols: list[str]) -> str:
    def fmt(v: object) -> str:
        if isinstance(v, float):
            return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.4f}"
        return str(v)

    cells = [[fmt(r.get(c, "")) for c in cols] for r in rows]
    w = [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(cols)]
    out = ["  ".join(c.ljust(w[i]) for i, c in enumerate(cols)), "  ".join("-" * x for x in w)]
    out += ["  ".join(x[i].ljust(w[i]) for i in range(len(cols))) for x in cells]
    return "\n".join(out)


def bench_prep(data_dir: str | None) -> dict:
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        df = load_dataset("ml-100k", data_dir=data_dir)
        df = clean(df, min_session_length=2, min_item_support=5)
        sp = split_by_time(df, test_days=14, valid_days=14)
        vocab = Vocabulary.fit(sp.train["item_id"])
        SequenceData.from_frame(sp.train, vocab)
        SequenceData.from_frame(sp.test, vocab)
        times.append(time.perf_counter() - t0)
    return {
        "task": "ML-100K read+clean+time split+index",
        "median_s": statistics.median(times),
        "min_s": min(times),
    }


def gru(
    model: GRU4RecConfig, objective: ObjectiveConfig, train: dict, epochs: int, seed: int = 0
) -> Recommender:
    """A seeded CPU recommender with these settings (no progress bars)."""
    return Recommender(
        model,
        objective,
        TrainConfig(epochs=epochs, progress=False, device="cpu", **train),
        seed=seed,
    )


def fit_eval(name: str, rec: Recommender, train, test, metrics, valid=None) -> dict:
    t0 = time.perf_counter()
    rec.fit(train)
    fit_s = time.perf_counter() - t0
    rep = rec.evaluate(test, metrics=metrics)
    eps = [h.events_per_second for h in rec.history_]
    row = {
        "run": name,
        "train_s": fit_s,
        "epochs": len(rec.history_),
        "events/s": statistics.median(eps[1:] or eps) if eps else float("nan"),
        "eval_q/s": rep.queries_per_second,
        **rep.metrics,
    }
    if valid is not None:
        row["valid"] = rec.evaluate(valid, metrics=metrics).metrics
    return row


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--only", choices=["prep", "speed", "accuracy"], action="append")
    ap.add_argument("--epochs", type=int, default=10, help="epochs for accuracy runs (default 10)")
    ap.add_argument(
        "--speed-epochs", type=int, default=3, help="epochs for speed runs (median of epochs 2..)"
    )
    ap.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="seeds of the yoochoose authors'-params accuracy run (default 1)",
    )
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    ap.add_argument("--out", default="benchmarks/results/gru4rec.json")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    only = set(args.only or ["prep", "speed", "accuracy"])
    data_dir = os.environ.get("SEQREC_DATA")
    result: dict = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
        },
        "reference": REFERENCE,
    }
    yoo = presplit(load_dataset("yoochoose-100k", data_dir=data_dir))
    ml = load_dataset("ml-100k", data_dir=data_dir)
    ml_loo = leave_last_out(ml, n=1, valid=True)
    synth = synthetic_sessions(n_sessions=20000, n_items=2000, seed=0)
    synth_split = split_by_time(synth, test_days=5)

    if "prep" in only:
        result["prep"] = bench_prep(data_dir)
        print("\n== preprocessing\n" + table([result["prep"]], ["task", "median_s", "min_s"]))

    if "speed" in only:
        rows = []
        runs = [
            (
                "yoochoose-100k authors' params (B=32, sampled 2048)",
                YOO_MODEL,
                YOO_OBJ,
                YOO_TRAIN,
                yoo,
            ),
            (
                "yoochoose-100k authors' params, full softmax",
                YOO_MODEL,
                ObjectiveConfig(negatives="full"),
                YOO_TRAIN,
                yoo,
            ),
            (
                "yoochoose-100k faithful (B=128, sampled 2048)",
                FAITHFUL_MODEL,
                FAITHFUL_OBJ,
                FAITHFUL_TRAIN,
                yoo,
            ),
            (
                "ML-100K faithful (B=128, sampled 2048)",
                FAITHFUL_MODEL,
                FAITHFUL_OBJ,
                FAITHFUL_TRAIN,
                ml_loo,
            ),
            (
                "synthetic faithful (B=128, sampled 2048)",
                FAITHFUL_MODEL,
                FAITHFUL_OBJ,
                FAITHFUL_TRAIN,
                synth_split,
            ),
            (
                "ML-100K faithful, autograd (fused off)",
                FAITHFUL_MODEL,
                FAITHFUL_OBJ,
                {**FAITHFUL_TRAIN, "fused": False},
                ml_loo,
            ),
        ]
        for name, m, o, t, sp in runs:
            rec = gru(m, o, t, args.speed_epochs)
            rows.append(fit_eval(name, rec, sp.train, sp.test, ["recall@20", "mrr@20"]))
            print(rows[-1]["run"], f"{rows[-1]['events/s']:,.0f} ev/s", flush=True)
        result["speed"] = rows
        print(
            "\n== speed (median events/s of epochs 2..; eval = full ranking)\n"
            + table(rows, ["run", "events/s", "eval_q/s", "recall@20", "mrr@20"])
        )
        eps = rows[0]["events/s"]
        result["speedup_vs_official"] = {"vs_8500": eps / 8500, "vs_7000": eps / 7000}
        print(
            "reference: official GRU4Rec PyTorch on this machine, yoochoose-100k authors' params:",
            REFERENCE["official_yoochoose_events_per_s_2cores"],
            f"events/s (2 cores) -> seqrec is {eps / 8500:.1f}x-{eps / 7000:.1f}x faster",
        )

    if "accuracy" in only:
        ep = args.epochs
        yoo_runs = [
            (
                f"yoochoose-100k GRU4Rec sampled (authors' params, seed {seed})",
                gru(YOO_MODEL, YOO_OBJ, YOO_TRAIN, ep, seed=seed),
            )
            for seed in range(args.seeds)
        ] + [
            (
                "yoochoose-100k GRU4Rec full softmax",
                gru(YOO_MODEL, ObjectiveConfig(negatives="full"), YOO_TRAIN, ep),
            ),
            ("yoochoose-100k popularity", Recommender(PopularityConfig())),
        ]
        rows = [
            fit_eval(name, rec, yoo.train, yoo.test, ["recall@20", "mrr@20"])
            for name, rec in yoo_runs
        ]
        print(
            "\n== yoochoose-100k (presplit, last day test; full ranking, conservative ties)\n"
            + table(rows, ["run", "train_s", "events/s", "recall@20", "mrr@20"])
        )
        print("reference: official GRU4Rec, 10 epochs: recall@20 ~0.68, mrr@20 ~0.36")
        ml_runs = [
            ("ML-100K LOO GRU4Rec", gru(ML_LOO_MODEL, ML_LOO_OBJ, ML_LOO_TRAIN, ep)),
            ("ML-100K LOO popularity", Recommender(PopularityConfig())),
        ]
        ml_rows = [
            fit_eval(name, rec, ml_loo.train, ml_loo.test, LOO_METRICS) for name, rec in ml_runs
        ]
        print(
            "\n== ML-100K leave-one-out (1,682 items ranked, seen items not masked)\n"
            + table(ml_rows, ["run", "train_s", "events/s", *LOO_METRICS])
        )
        print("reference: RecBole 1.2.1 GRU4Rec: recall@20 ~0.19, ndcg@10 ~0.057, ~150 s/epoch")
        result["accuracy"] = rows + ml_rows
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, default=str))
    os.replace(tmp, out)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
