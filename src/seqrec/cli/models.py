"""``seqrec models``: the registered models, their task and their settings."""

from __future__ import annotations

import argparse
import json
from typing import Any

from seqrec.cli._common import FORMATTER, common_options, out

EPILOG = """\
examples:
  seqrec models                 # one line per model
  seqrec models sasrec          # every [model] key of SASRec with its default
  seqrec models --json
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "models",
        parents=[common_options()],
        help="list the registered models (or one model's settings)",
        description="The models an experiment file can name in [model] name = ...",
        epilog=EPILOG,
        formatter_class=FORMATTER,
    )
    p.add_argument("name", nargs="?", help="show this model's [model] keys and defaults")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_models)


def _fields(config: type) -> dict[str, Any]:
    d = config().model_dump(mode="json")
    d.pop("name", None)
    return d


def cmd_models(args: argparse.Namespace) -> int:
    from seqrec.models import MODELS, get_spec

    if args.name:
        spec = get_spec(args.name)
        info = {
            "name": spec.name,
            "task": spec.task,
            "trained": spec.trained,
            "takes_objective": spec.objective is not None,
            "summary": spec.summary,
            "model": _fields(spec.config),
            "objective": _fields(spec.objective) if spec.objective is not None else None,
            "train_defaults": dict(spec.train_defaults),
        }
        if args.json:
            out(json.dumps(info, indent=2))
            return 0
        out(f"{spec.name} ({spec.task}{', trained' if spec.trained else ''}): {spec.summary}")
        for section in ("model", "objective", "train_defaults"):
            if info[section]:
                out(f"\n[{'train' if section == 'train_defaults' else section}]")
                for k, v in info[section].items():
                    out(f"  {k} = {json.dumps(v)}")
        return 0
    rows = [
        {"name": s.name, "task": s.task, "trained": s.trained, "summary": s.summary}
        for s in MODELS.values()
    ]
    if args.json:
        out(json.dumps(rows, indent=2))
        return 0
    w = max(len(r["name"]) for r in rows)
    for r in rows:
        out(f"{r['name']:<{w}}  {r['task']:<11}  {r['summary']}")
    return 0
