"""``seqrec recommend``: top-k next items for one session or a file of sessions."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from seqrec.batch import _known, recommend_file
from seqrec.cli._common import FORMATTER, common_options, load_model, note, out, parse_sep
from seqrec.columns import Columns
from seqrec.exceptions import ConfigError, UnknownItemError

EPILOG = """\
Single session: item ids in order (oldest first) after --items; prints rank, item, score.

The session's own items are not recommended again by next-item models unless
--no-exclude-seen (next-basket models recommend repeats unless --exclude-seen).

Batch: --input FILE (CSV/TSV or Parquet with a session, an item and optionally a numeric
time column; --file-order ignores the time column) -> --output FILE (.csv, .tsv or .parquet) with one row per session and rank:
session_id, rank, item_id, score (external ids). The input is streamed: sessions are
sorted (skipped with --sorted) and read in chunks, scored --batch-size sessions at a
time, and the output is written to a temporary file renamed at the end. Events with
items unknown to the model are dropped and counted on stderr (--unknown error makes
them an error).

examples:
  seqrec recommend runs/ml100k_gru4rec --items 50 181 258 -k 10
  seqrec recommend runs/ml100k_gru4rec --input sessions.csv --output recs.parquet -k 20
  seqrec recommend model/ --input log.tsv --output recs.csv --session-col SessionId \\
      --item-col ItemId --time-col Time --unknown error
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "recommend",
        parents=[common_options()],
        help="top-k next items for one session (--items) or a file of sessions (--input)",
        description="Recommend the next items with a saved model (a run directory or its artifact/).",
        epilog=EPILOG,
        formatter_class=FORMATTER,
    )
    p.add_argument("model_dir", metavar="MODEL_DIR", help="run directory or saved model directory")
    p.add_argument(
        "--items", nargs="+", metavar="ID", help="the live session's item ids, oldest first"
    )
    p.add_argument(
        "--input", metavar="FILE", help="batch mode: sessions file (.csv, .tsv, .parquet)"
    )
    p.add_argument(
        "--output", metavar="FILE", help="batch mode: output file (.csv, .tsv, .parquet)"
    )
    p.add_argument("-k", type=int, default=20, help="items per session (default: 20)")
    p.add_argument(
        "--exclude-seen",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="never recommend items already in the session (default: on for next-item models, "
        "whose answer should be something new; off for next-basket models, where repeat "
        "purchases are most of a next basket)",
    )
    p.add_argument(
        "--unknown",
        choices=["drop", "error"],
        default="drop",
        help="items unknown to the model: drop and count (default) or fail",
    )
    p.add_argument(
        "--session-col",
        default=Columns.session,
        metavar="NAME",
        help="batch: session column (default: session_id)",
    )
    p.add_argument(
        "--item-col",
        default=Columns.item,
        metavar="NAME",
        help="batch: item column (default: item_id)",
    )
    p.add_argument(
        "--time-col",
        default=Columns.time,
        metavar="NAME",
        help="batch: time column ordering a session's events (default: timestamp; file order if absent)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=1024,
        metavar="N",
        help="batch: sessions scored at once (default: 1024)",
    )
    p.add_argument(
        "--file-order",
        action="store_true",
        help="batch: ignore the time column; each session's events in file order",
    )
    p.add_argument(
        "--sep",
        metavar="SEP",
        help="batch: CSV field separator (default: tab for .tsv/.txt, else comma)",
    )
    p.add_argument(
        "--sorted",
        action="store_true",
        help="batch: rows of each session are contiguous and in time order; skip the sort and stream in constant memory",
    )
    p.add_argument("--json", action="store_true", help="single session: print JSON")
    p.set_defaults(func=cmd_recommend)


def typed_ids(tokens: Sequence[str], vocab: Any) -> list[Any]:
    """CLI tokens -> ids of the vocabulary's type (non-integers stay strings: unknown)."""
    if vocab.ids.dtype.kind == "U":
        return list(tokens)
    ids: list[Any] = []
    for t in tokens:
        try:
            ids.append(int(t))
        except ValueError:
            ids.append(t)
    return ids


def cmd_recommend(args: argparse.Namespace) -> int:
    if args.items is None and args.input is None:
        raise ConfigError("give --items ID ... (one session) or --input FILE --output FILE (batch)")
    if args.items is not None and args.input is not None:
        raise ConfigError("--items and --input are exclusive: one session, or a file of sessions")
    if args.k < 1:
        raise ConfigError(f"-k must be >= 1, got {args.k}")
    rec = load_model(args.model_dir)
    exclude_seen = args.exclude_seen
    if exclude_seen is None:
        exclude_seen = getattr(rec.spec, "task", "next-item") != "next-basket"
    if args.input is None and (args.file_order or args.sep or args.sorted):
        raise ConfigError("--file-order, --sep and --sorted apply to batch mode (--input FILE)")
    if args.input is not None:
        if args.output is None:
            raise ConfigError("--input needs --output FILE (.csv, .tsv or .parquet)")
        stats = recommend_file(
            rec,
            args.input,
            args.output,
            k=args.k,
            exclude_seen=exclude_seen,
            session_col=args.session_col,
            item_col=args.item_col,
            time_col=args.time_col,
            batch_size=args.batch_size,
            unknown=args.unknown,
            presorted=args.sorted,
            sep=parse_sep(args.sep),
            file_order=args.file_order,
        )
        note(
            f"seqrec: wrote {stats['rows']:,} rows for {stats['sessions']:,} sessions to {args.output} "
            f"({stats['events']:,} events read; {stats['unknown_events']:,} with unknown items dropped; "
            f"{stats['empty_sessions']:,} sessions had no known item)"
        )
        return 0
    ids = typed_ids(args.items, rec.vocab_)
    known = _known(ids, rec.vocab_)
    n_unknown = int((~known).sum())
    if n_unknown and args.unknown == "error":
        bad = [i for i, ok in zip(ids, known, strict=True) if not ok]
        raise UnknownItemError(f"{n_unknown} item id(s) not known to the model: {bad[:10]}")
    if n_unknown:
        note(
            f"seqrec: dropped {n_unknown} unknown item id(s): {[i for i, ok in zip(ids, known, strict=True) if not ok][:10]}"
        )
    session = [i for i, ok in zip(ids, known, strict=True) if ok]
    if not session:
        note("seqrec: no known item in the session: the model's empty-history answer follows")
    recs = rec.recommend(session, k=args.k, exclude_seen=exclude_seen)
    if args.json:
        out(json.dumps(recs.to_dicts(), default=str))
        return 0
    from seqrec.experiment import format_table

    rows = [
        [str(r), str(i), f"{s:.4f}"]
        for r, i, s in recs.select("rank", Columns.item, "score").iter_rows()
    ]
    out(format_table(["rank", "item_id", "score"], rows))
    return 0
