"""``seqrec evaluate``: a saved model on a split of its run's data, or of other data.

A thin adapter over :func:`seqrec.experiment.evaluation_data`, which re-derives the split.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from seqrec.cli._common import (
    FORMATTER,
    add_data_source,
    add_progress,
    artifact_dir,
    common_options,
    data_config,
    data_options,
    is_experiment_file,
    load_model,
    note,
    out,
    progress,
)
from seqrec.exceptions import ConfigError

EPILOG = """\
DATA is an experiment file (its data, preprocessing and split are used), a registered
dataset name, or an event file; without DATA the run's own data is used. Unless
--split all, DATA is preprocessed and split as the run's config.resolved.toml (or
--experiment FILE) says, and the chosen part is evaluated. --split all evaluates every
session of DATA as it is (every event but the first of a session is a target). Items
unknown to the model are dropped and counted in the protocol.

examples:
  seqrec evaluate runs/ml100k_gru4rec                       # its own test split again
  seqrec evaluate runs/ml100k_gru4rec --split valid --metrics recall@10 ndcg@10
  seqrec evaluate runs/synthetic/artifact test_sessions.csv --split all --json
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "evaluate",
        parents=[common_options()],
        help="evaluate a saved model on a split of a dataset or event file",
        description="Evaluate a saved model (a run directory or its artifact/).",
        epilog=EPILOG,
        formatter_class=FORMATTER,
    )
    p.add_argument("model_dir", metavar="MODEL_DIR", help="run directory or saved model directory")
    p.add_argument(
        "data",
        metavar="DATA",
        nargs="?",
        help="experiment file, registered dataset or event file (default: the run's data)",
    )
    p.add_argument(
        "--split",
        choices=["test", "valid", "all"],
        default="test",
        help="part to evaluate (default: test)",
    )
    p.add_argument(
        "--experiment",
        metavar="FILE",
        help="experiment file giving preprocessing/split (default: the run's config.resolved.toml)",
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a setting of that experiment (repeatable)",
    )
    p.add_argument(
        "--metrics",
        nargs="+",
        metavar="M",
        help="metrics, e.g. recall@20 mrr@20 (default: the experiment's)",
    )
    p.add_argument(
        "--ties",
        choices=["conservative", "optimistic", "average"],
        help="tie policy (default: the experiment's, else conservative)",
    )
    p.add_argument(
        "--exclude-seen",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="mask items seen earlier in the session",
    )
    p.add_argument("--candidates", metavar="full|N", help="'full' ranking or N sampled negatives")
    add_data_source(p)
    p.add_argument(
        "--json", action="store_true", help="print the report (with its protocol) as JSON"
    )
    add_progress(p)
    p.set_defaults(func=cmd_evaluate)


def _candidates(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return "full" if text == "full" else int(text)
    except ValueError:
        raise ConfigError(f"--candidates must be 'full' or a number, got {text!r}") from None


def cmd_evaluate(args: argparse.Namespace) -> int:
    from seqrec.experiment import evaluation_data, find_run_config, metrics_table

    rec = load_model(args.model_dir)
    # which experiment says how to read, clean and split; which data replaces its own
    source: str | Path | None
    data = None
    if args.data is not None and is_experiment_file(args.data):
        source = args.data
    else:
        source = args.experiment or find_run_config(args.model_dir)
        if source is None and args.set:
            raise ConfigError(
                "--set needs an experiment: pass --experiment FILE or a run directory"
            )
        if args.data is not None:
            data = data_config(args.data, **data_options(args))
    candidates = _candidates(args.candidates)
    if source is None and args.split == "all" and data is None:
        raise ConfigError("--split all needs DATA (a dataset name or an event file)")
    if source is None and args.split != "all":
        raise ConfigError(
            f"{args.model_dir} has no config.resolved.toml saying how to split the data: "
            "pass --experiment FILE, an experiment file as DATA, or --split all"
        )
    ev = evaluation_data(source, args.split, data=data, overrides=args.set or ())
    report = ev.evaluate(
        rec,
        metrics=args.metrics,
        ties=args.ties,
        exclude_seen=args.exclude_seen,
        candidates=candidates,
        progress=progress(args),
    )
    if args.json:
        out(json.dumps(report.to_dict(), indent=2, default=str))
        return 0
    label = args.data or (ev.data.dataset or ev.data.path if ev.data is not None else "?")
    out(
        f"model: {artifact_dir(args.model_dir)} ({rec.model.name}); data: {label}, part: {args.split}"
    )
    dropped = report.protocol.get("unknown_events_dropped")
    if dropped:
        note(f"seqrec: {dropped} event(s) with items unknown to the model were dropped")
    out(metrics_table({args.split: report}))
    return 0
