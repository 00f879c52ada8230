"""``seqrec stats``: statistics of a dataset or event file, before and after cleaning."""

from __future__ import annotations

import argparse
import json
from typing import Any

from seqrec.cli._common import (
    FORMATTER,
    add_data_source,
    common_options,
    data_config,
    data_options,
    out,
)

EPILOG = """\
examples:
  seqrec stats ml-100k
  seqrec stats ml-100k --clean --min-item-support 5 --min-session-length 2
  seqrec stats events.csv --json
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "stats",
        parents=[common_options()],
        help="describe a dataset or event file (before/after cleaning)",
        description="Statistics of a registered dataset or an event file: events, sessions, items, lengths.",
        epilog=EPILOG,
        formatter_class=FORMATTER,
    )
    p.add_argument(
        "data",
        metavar="DATASET_OR_PATH",
        help="registered dataset (ml-100k, ml-1m, yoochoose-100k, synthetic) or event file",
    )
    p.add_argument("--clean", action="store_true", help="also show the statistics after cleaning")
    p.add_argument(
        "--min-item-support",
        type=int,
        default=5,
        metavar="N",
        help="cleaning: drop items with fewer events (default: 5)",
    )
    p.add_argument(
        "--min-session-length",
        type=int,
        default=2,
        metavar="N",
        help="cleaning: drop shorter sessions (default: 2)",
    )
    add_data_source(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_stats)


def cmd_stats(args: argparse.Namespace) -> int:
    from seqrec.experiment import (
        PreprocessConfig,
        apply_preprocess,
        flatten_dict,
        format_table,
        read_data,
    )
    from seqrec.preprocess import describe

    cfg = data_config(args.data, **data_options(args))
    df = read_data(cfg)
    columns = {"raw": describe(df)}
    if args.clean:
        pre = PreprocessConfig(
            min_session_length=args.min_session_length, min_item_support=args.min_item_support
        )
        cleaned, info = apply_preprocess(df, pre)
        columns["cleaned"] = describe(cleaned)
        columns["cleaned"]["filter_rounds"] = info.get("filter_rounds", 0)
    if args.json:
        out(json.dumps(columns, indent=2))
        return 0
    flat = {name: flatten_dict(d) for name, d in columns.items()}
    keys: list[str] = []
    for f in flat.values():
        keys += [k for k in f if k not in keys]
    rows = [[k, *[_cell(flat[n].get(k)) for n in flat]] for k in keys]
    out(f"{args.data}")
    out(format_table(["statistic", *flat], rows))
    if args.clean:
        out(
            f"(cleaned: sessions >= {args.min_session_length} events, items >= "
            f"{args.min_item_support} events, repeated until stable)"
        )
    return 0


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)
