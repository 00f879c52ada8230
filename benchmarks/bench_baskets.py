"""Next-basket accuracy on the Instacart sample and Ta-Feng: every baseline and the deep variants.

Protocol (docs/protocols.md): leave-last-basket-out per user (test target = last basket,
validation target = the one before, history = every basket before the target), every user
evaluated, full ranking over the training vocabulary, target items unknown to it counted as
misses; metrics per user averaged over users. Baselines predict the set = their top-m items,
m = the user's mean history basket size; the deep models predict ``sigmoid > threshold``
with the threshold chosen on validation (best F1 micro over 0.05..0.95). F1 macro averages
over every vocabulary item.

Models: g-topfreq, p-topfreq, gp-topfreq, upcf, tifu-knn (the paper's parameters per
dataset) and ``basket-rnn`` variants: the reference CNN-GRU with BCE (pos_weight 10), the
attention encoder and the transformer over orders, each without and with the repeat-aware
head; then, with the repeat head, order context, ``bce+bpr``, ``bce+margin`` and ``bpr``. Deep models train with Adam 0.001, batch 32, early stopping on validation
recall@10 (``--epochs`` at most, patience 2), 1 torch thread.

    SEQREC_DATA=../shared/data python benchmarks/bench_baskets.py            # both datasets
    SEQREC_DATA=../shared/data python benchmarks/bench_baskets.py --datasets instacart --quick

Writes ``benchmarks/results/baskets.json`` and prints one table per dataset.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import torch

from seqrec.datasets import load_dataset
from seqrec.evaluate import THRESHOLD_GRID
from seqrec.models.basket.rnn import BasketRNNConfig
from seqrec.models.basket.tifu_knn import TIFUKNNConfig
from seqrec.models.basket.topfreq import GPTopFreqConfig, GTopFreqConfig, PTopFreqConfig
from seqrec.models.basket.upcf import UPCFConfig
from seqrec.recommender import Recommender
from seqrec.split import leave_last_out
from seqrec.train import TrainConfig

ROOT = Path(__file__).resolve().parent.parent

COLUMNS = [
    "f1_micro",
    "f1_macro",
    "precision@10",
    "recall@10",
    "ndcg@10",
    "phr@10",
    "precision@20",
    "recall@20",
    "ndcg@20",
    "phr@20",
    "repeat_recall@10",
    "explore_recall@10",
]

TIFU = {  # the paper's parameters (Hu et al., SIGIR 2020)
    "instacart": {"k": 900, "rb": 0.9, "rg": 0.7, "alpha": 0.9, "m": 3},
    "tafeng": {"k": 300, "rb": 0.9, "rg": 0.7, "alpha": 0.7, "m": 7},
}

DEEP: list[tuple[str, dict[str, Any]]] = [
    ("cnn-gru bce", {}),
    ("attention-gru bce", {"encoder": "attention"}),
    ("cnn-transformer bce", {"order_model": "transformer"}),
    ("cnn-gru bce +repeat", {"repeat": True}),
    ("attention-gru bce +repeat", {"encoder": "attention", "repeat": True}),
    ("cnn-transformer bce +repeat", {"order_model": "transformer", "repeat": True}),
    ("cnn-gru bce +repeat +context", {"repeat": True, "context": True}),
    ("cnn-gru bce+bpr +repeat", {"loss": "bce+bpr", "repeat": True}),
    ("cnn-gru bce+margin +repeat", {"loss": "bce+margin", "repeat": True}),
    ("cnn-gru bpr +repeat", {"loss": "bpr", "repeat": True}),
]


def baselines(dataset: str) -> list[tuple[str, Any]]:
    return [
        ("g-topfreq", GTopFreqConfig()),
        ("p-topfreq", PTopFreqConfig()),
        ("gp-topfreq", GPTopFreqConfig()),
        ("upcf", UPCFConfig()),
        ("tifu-knn", TIFUKNNConfig(**TIFU[dataset])),
    ]


def run_one(name: str, model: Any, split: Any, epochs: int) -> dict[str, Any]:
    deep = isinstance(model, BasketRNNConfig)
    train = TrainConfig(
        epochs=epochs,
        patience=2,
        valid_metric="recall@10",
        progress=False,
        device="cpu",
        eval_batch_size=256,
    )
    rec = Recommender(model, train=train if deep else None, seed=0)
    t = time.perf_counter()
    rec.fit(split.train, split.valid if deep else None)
    fit_s = time.perf_counter() - t
    opts: dict[str, Any] = {}
    if deep:  # the decision threshold: best F1 micro on validation
        v = rec.evaluate(split.valid, metrics=["f1_micro"], thresholds=list(THRESHOLD_GRID))
        best = max(v.extra["f1_by_threshold"], key=lambda r: (r["f1_micro"], -r["threshold"]))
        opts["threshold"] = best["threshold"]
    t = time.perf_counter()
    rep = rec.evaluate(split.test, metrics=COLUMNS, **opts)
    row = {
        "model": name,
        **{c: rep.metrics[c] for c in COLUMNS},
        "train_s": round(fit_s, 1),
        "eval_s": round(time.perf_counter() - t, 1),
        "epochs": len(getattr(rec, "history_", [])) or None,
        "threshold": opts.get("threshold"),
        "set_rule": rep.protocol["set_rule"],
        "users": rep.n_queries,
    }
    print(json.dumps(row), flush=True)
    return row


def table(rows: list[dict[str, Any]]) -> str:
    heads = [
        "model",
        "F1mi",
        "F1ma",
        "P@10",
        "R@10",
        "N@10",
        "PHR@10",
        "P@20",
        "R@20",
        "N@20",
        "PHR@20",
        "rep R@10",
        "exp R@10",
        "train s",
    ]
    w = max(len(r["model"]) for r in rows)
    lines = [f"{heads[0]:<{w}}  " + "  ".join(f"{h:>8}" for h in heads[1:])]
    for r in rows:
        vals = [f"{r[c]:.4f}" for c in COLUMNS] + [f"{r['train_s']:.1f}"]
        lines.append(f"{r['model']:<{w}}  " + "  ".join(f"{v:>8}" for v in vals))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--datasets", nargs="+", default=["instacart", "tafeng"])
    ap.add_argument(
        "--epochs", type=int, default=10, help="at most this many epochs per deep model"
    )
    ap.add_argument("--quick", action="store_true", help="2 epochs, the first 3 deep variants")
    ap.add_argument(
        "--deep", nargs="*", help="only the deep variants whose name contains one of these"
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "baskets.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    epochs = 2 if args.quick else args.epochs
    deep = DEEP[:3] if args.quick else DEEP
    if args.deep is not None:
        unknown = set(args.deep) - {n for n, _ in DEEP}
        if unknown:
            ap.error(f"unknown deep variants {sorted(unknown)}; choose from {[n for n, _ in DEEP]}")
        deep = [(n, kw) for n, kw in deep if n in args.deep]
    result: dict[str, Any] = {
        "command": "python benchmarks/bench_baskets.py "
        + " ".join(
            [f"--datasets {' '.join(args.datasets)}", f"--epochs {epochs}"]
            + (["--quick"] if args.quick else [])
        ),
        "machine": f"{platform.processor() or platform.machine()}, {args.threads} torch thread(s)",
        "date": time.strftime("%Y-%m-%d"),
        "torch": torch.__version__,
        "datasets": {},
    }
    for ds in args.datasets:
        split = leave_last_out(load_dataset(ds))
        rows = [run_one(n, m, split, epochs) for n, m in baselines(ds)]
        has_context = "order_dow" in split.train.columns  # Ta-Feng has no order context
        rows += [
            run_one(f"basket-rnn {n}", BasketRNNConfig(**kw), split, epochs)
            for n, kw in deep
            if has_context or not kw.get("context")
        ]
        result["datasets"][ds] = {"split": split.protocol["counts"], "rows": rows}
        print(f"\n{ds} (leave-last-basket-out, test, {rows[0]['users']} users)\n{table(rows)}\n")
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
