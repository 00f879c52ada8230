"""Next-basket at full Instacart scale, on synthetic data of Instacart's shape.

The real Instacart has 206,209 users, 3.4M orders and 33.8M order lines over 49,688
products. :func:`seqrec.data.synthetic.synthetic_baskets` draws a log of that size (users
with 4..100 orders, mean ~16.6; baskets ~10 items; repeat purchases of personal staples;
Zipf popularity), and this script times every stage on it:

* generation, leave-last-basket-out split, SequenceData (vocabulary + basket offsets);
* TIFU-KNN (the paper's Instacart parameters): fit users/s over all training users, scoring
  users/s on the test users (streamed in chunks by ``evaluate_baskets``, nothing dense
  users x items), with the test metrics;
* the CNN-GRU ``basket-rnn`` (reference sizes: embedding 64, CNN 128/kernel 4, GRU 256 x 2, 5
  orders, logits over all 49,688 products): training throughput in target baskets/s (one
  epoch over a sample of ``--train-users`` users, batch 32) and scoring users/s;

and the peak resident memory after each stage (``ru_maxrss``; the machine has 24 GB).

    python benchmarks/bench_baskets_scale.py                     # full size (~10-20 min)
    python benchmarks/bench_baskets_scale.py --users 20000       # a tenth, quick look

Writes ``benchmarks/results/baskets_scale.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import numpy as np
import polars as pl
import torch

from seqrec.columns import Columns
from seqrec.data.sequences import SequenceData
from seqrec.data.synthetic import synthetic_baskets
from seqrec.data.vocab import Vocabulary
from seqrec.evaluate import evaluate_baskets
from seqrec.models.basket.rnn import BasketRNNConfig
from seqrec.models.basket.tifu_knn import TIFUKNNConfig
from seqrec.recommender import Recommender
from seqrec.split import leave_last_out
from seqrec.train import TrainConfig

ROOT = Path(__file__).resolve().parent.parent


def rss_gb() -> float:
    """Peak resident set size of this process so far, GB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--users", type=int, default=206_209)
    ap.add_argument("--items", type=int, default=49_688)
    ap.add_argument("--mean-baskets", type=float, default=16.6)
    ap.add_argument("--mean-size", type=float, default=11.0)
    ap.add_argument("--score-users", type=int, default=20_000, help="test users scored per model")
    ap.add_argument(
        "--train-users", type=int, default=1_000, help="users in the training-speed sample"
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "baskets_scale.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows: list[dict] = []

    def stage(name: str, seconds: float, **extra: object) -> None:
        row = {
            "stage": name,
            "seconds": round(seconds, 2),
            "peak_rss_gb": round(rss_gb(), 2),
            **extra,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)

    t = time.perf_counter()
    df = synthetic_baskets(
        args.users, args.items, mean_baskets=args.mean_baskets, mean_size=args.mean_size, seed=0
    )
    n_baskets = df.select(pl.col(Columns.basket).n_unique()).item()
    stage("generate", time.perf_counter() - t, users=args.users, baskets=n_baskets, lines=df.height)

    t = time.perf_counter()
    split = leave_last_out(df)
    del df
    stage("split leave-last-basket-out", time.perf_counter() - t)

    t = time.perf_counter()
    vocab = Vocabulary.fit(split.train.get_column(Columns.item))
    train = SequenceData.from_frame(split.train, vocab)
    test = SequenceData.from_frame(split.test, vocab)
    stage("SequenceData train+test", time.perf_counter() - t, train_baskets=train.n_baskets)
    score_idx = np.arange(min(args.score_users, len(test)))
    test_part = test.select(score_idx)

    # ------------------------------------------------------------------ TIFU-KNN
    t = time.perf_counter()
    tifu = Recommender(TIFUKNNConfig()).fit(train, vocab=vocab)
    dt = time.perf_counter() - t
    stage("tifu-knn fit", dt, users_per_s=round(len(train) / dt))
    t = time.perf_counter()
    rep = evaluate_baskets(tifu.model_, test_part, metrics=["recall@10", "ndcg@10"], batch_size=256)
    dt = time.perf_counter() - t
    stage(
        "tifu-knn score",
        dt,
        users=len(test_part),
        users_per_s=round(len(test_part) / dt),
        **rep.metrics,
    )
    del tifu

    # ------------------------------------------------------------------ CNN-GRU
    sample = train.select(np.arange(min(args.train_users, len(train))))
    cfg = BasketRNNConfig(embedding_dim=64, encoder="cnn", order_model="gru", n_orders=5)
    rnn = Recommender(
        cfg, train=TrainConfig(epochs=1, batch_size=32, progress=False, device="cpu"), seed=0
    )
    t = time.perf_counter()
    rnn.fit(sample, vocab=vocab)
    dt = time.perf_counter() - t
    targets = int(sum(max(0, b) for b in np.diff(sample.sequence_baskets()) - 1))
    stage(
        "basket-rnn cnn-gru train (1 epoch of the sample)",
        dt,
        train_users=len(sample),
        target_baskets=targets,
        baskets_per_s=round(targets / dt),
    )
    t = time.perf_counter()
    rep = evaluate_baskets(rnn.model_, test_part, metrics=["recall@10", "ndcg@10"], batch_size=256)
    dt = time.perf_counter() - t
    stage(
        "basket-rnn score",
        dt,
        users=len(test_part),
        users_per_s=round(len(test_part) / dt),
        **rep.metrics,
    )

    result = {
        "command": "python benchmarks/bench_baskets_scale.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "out"),
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads",
        "date": time.strftime("%Y-%m-%d"),
        "torch": torch.__version__,
        "stages": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    w = max(len(r["stage"]) for r in rows)
    print(f"\n{'stage':<{w}}  seconds  peak RSS GB  rate")
    for r in rows:
        rate = r.get("users_per_s") or r.get("baskets_per_s") or ""
        unit = " users/s" if "users_per_s" in r else " baskets/s" if "baskets_per_s" in r else ""
        print(f"{r['stage']:<{w}}  {r['seconds']:>7}  {r['peak_rss_gb']:>11}  {rate}{unit}")


if __name__ == "__main__":
    main()
