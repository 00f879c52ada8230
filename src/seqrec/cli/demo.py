"""``seqrec demo``: GRU4Rec against a popularity baseline on synthetic sessions (no download)."""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from seqrec.cli._common import FORMATTER, add_progress, common_options, note, out, progress

EPILOG = """\
Generates sessions whose next item follows a planted successor with probability 0.9
(seqrec.data.synthetic), splits the last days off as valid/test, trains GRU4Rec and a
popularity baseline and prints their test Recall@20 / MRR@20 next to the best achievable
Recall@20. Nothing is downloaded.

examples:
  seqrec demo
  seqrec demo --out runs/demo            # keep both run directories
  seqrec demo --sessions 500 --epochs 1  # quicker
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        parents=[common_options()],
        help="train GRU4Rec and a popularity baseline on synthetic sessions (no download)",
        description="Run the embedded demo: synthetic sessions, GRU4Rec vs popularity.",
        epilog=EPILOG,
        formatter_class=FORMATTER,
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        help="keep the two run directories under DIR (default: a temporary folder)",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace existing run directories under --out"
    )
    p.add_argument("--sessions", type=int, default=2000, help="synthetic sessions (default: 2000)")
    p.add_argument("--items", type=int, default=200, help="synthetic items (default: 200)")
    p.add_argument("--epochs", type=int, default=3, help="GRU4Rec training epochs (default: 3)")
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the data and the training (default: 0)"
    )
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    add_progress(p)
    p.set_defaults(func=cmd_demo)


def demo_configs(
    *, sessions: int = 2000, items: int = 200, epochs: int = 3, seed: int = 0
) -> list[Any]:
    """The embedded demo: synthetic sessions, GRU4Rec and the popularity baseline."""
    from seqrec.experiment import ExperimentConfig, apply_overrides

    raw: dict[str, Any] = {
        "name": "demo-gru4rec",
        "seed": seed,
        "data": {
            "dataset": "synthetic",
            "synthetic": {"n_sessions": sessions, "n_items": items, "seed": seed},
        },
        "preprocess": {"min_session_length": 2, "min_item_support": 1},
        "split": {"method": "time", "test_days": 6, "valid_days": 6},
        "model": {"name": "gru4rec", "layers": [64]},
        "objective": {"loss": "cross-entropy", "negatives": "sampled", "n_sample": 0},
        "train": {"epochs": epochs, "batch_size": 32, "learning_rate": 0.1, "optimizer": "adagrad"},
        "eval": {"metrics": ["recall@20", "mrr@20"], "on": ["valid", "test"]},
    }
    pop = apply_overrides(raw, [("model.name", "pop"), ("name", "demo-pop")])
    return [ExperimentConfig.model_validate(raw), ExperimentConfig.model_validate(pop)]


def cmd_demo(args: argparse.Namespace) -> int:
    from seqrec.data.synthetic import synthetic_optimal_recall
    from seqrec.experiment import format_table, run_one

    configs = demo_configs(
        sessions=args.sessions, items=args.items, epochs=args.epochs, seed=args.seed
    )
    keep = args.out is not None
    root = Path(args.out) if keep else Path(tempfile.mkdtemp(prefix="seqrec-demo-"))
    try:
        rows = []
        results = {}
        for cfg in configs:
            label = "GRU4Rec" if cfg.model.name == "gru4rec" else "popularity"
            note(f"demo: training {label} ...")
            res = run_one(
                cfg, root / cfg.model.name, progress=progress(args), overwrite=args.overwrite
            )
            rep = res.reports["test"]
            results[cfg.model.name] = res.metrics
            rows.append(
                [
                    label,
                    rep.metrics["recall@20"],
                    rep.metrics["mrr@20"],
                    res.metrics["train"]["seconds"],
                ]
            )
        best = synthetic_optimal_recall(args.items, 0.9, 20)
        rows.append(["oracle (expected)", best, None, None])
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        out(json.dumps(results, indent=2))
        return 0
    n_q = next(iter(results.values()))["test"]["n_queries"]
    out(
        f"seqrec demo: {args.sessions} synthetic sessions over {args.items} items "
        f"(next item = planted successor with p=0.9); test on the last 6 days ({n_q} next-item queries)"
    )
    out(format_table(["model", "Recall@20", "MRR@20", "train s"], rows))
    if keep:
        out(f"(run directories: {root / 'gru4rec'}, {root / 'pop'})")
    return 0
