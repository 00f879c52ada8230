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

Next basket (next-basket models): --baskets 196,13176 21903,196 (each argument one basket,
oldest first), or --user ID (the user's baskets in the run's data or --dataset); prints rank,
item, score, whether the user bought it before, and the title where the data has titles.

examples:
  seqrec recommend runs/ml100k_gru4rec --items 50 181 258 -k 10
  seqrec recommend runs/instacart_tifu --user 347 -k 10
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
        "--baskets",
        nargs="+",
        metavar="IDS",
        help="next-basket models: the user's baskets, oldest first, each one argument of "
        "comma-separated item ids (e.g. --baskets 196,13176 21903,196)",
    )
    p.add_argument(
        "--user",
        metavar="ID",
        help="next-basket models: recommend the next basket of this user of the data (the "
        "run's [data], or --dataset), from all of the user's baskets",
    )
    p.add_argument(
        "--dataset",
        metavar="NAME",
        help="with --user: a registered dataset (e.g. instacart, tafeng) instead of the run's data; "
        "also the source of item titles",
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


def _user_baskets(args: argparse.Namespace, rec: Any) -> tuple[list[list[Any]], Any, Any]:
    """The baskets (and their context rows) of ``--user`` in the run's data or ``--dataset``,
    and the titles of that data (or None)."""
    import numpy as np
    import polars as pl

    from seqrec.columns import BASKET_CONTEXT
    from seqrec.datasets import load_dataset, load_titles  # noqa: I001
    from seqrec.experiment.prepare import experiment_of, find_run_config, read_data

    if args.dataset is not None:
        df, name = load_dataset(args.dataset), args.dataset
    elif find_run_config(args.model_dir) is not None:
        data_cfg = experiment_of(args.model_dir).data
        df, name = read_data(data_cfg), data_cfg.dataset
    else:
        raise ConfigError(
            f"--user needs the data holding the user's baskets: {args.model_dir} is not inside "
            "a run directory, so pass --dataset NAME"
        )
    if Columns.basket not in df.columns:
        raise ConfigError("--user needs basket data (a basket_id column); this data has none")
    sess = df.get_column(Columns.session)
    uid: Any = args.user
    if sess.dtype.is_integer():
        try:
            uid = int(args.user)
        except ValueError:
            raise ConfigError(
                f"--user: user ids of this data are integers, got {args.user!r}"
            ) from None
    rows = df.filter(pl.col(Columns.session) == uid)
    if rows.height == 0:
        raise ConfigError(
            f"--user {args.user}: no such user in the data ({sess.n_unique():,} users)"
        )
    ctx_cols = [c for c in BASKET_CONTEXT if c in rows.columns]
    g = (
        rows.with_row_index("_r")
        .group_by(Columns.basket, maintain_order=True)
        .agg(
            pl.col(Columns.item),
            pl.col(Columns.time).min().alias("_t"),
            pl.col("_r").min(),
            *(pl.col(c).first() for c in ctx_cols),
        )
        .sort(["_t", "_r"])
    )
    baskets = g.get_column(Columns.item).to_list()
    names = tuple(getattr(rec.model_, "context_names", ()) or ())
    context = None
    if names:
        missing = [c for c in names if c not in g.columns]
        if missing:
            raise ConfigError(
                f"the model uses order context {list(names)}; the data lacks {missing}"
            )
        context = np.column_stack([g.get_column(c).to_numpy() for c in names]).astype(np.float32)
    from seqrec.datasets import DATASETS

    titles = load_titles(name) if name in DATASETS else None
    return baskets, context, titles


def _basket_args(tokens: Sequence[str], vocab: Any) -> list[list[Any]]:
    out_ = []
    for t in tokens:
        parts = [x for x in t.replace(" ", ",").split(",") if x]
        if not parts:
            raise ConfigError(f"--baskets: empty basket {t!r}; give comma-separated item ids")
        out_.append(typed_ids(parts, vocab))
    return out_


def cmd_recommend_basket(args: argparse.Namespace, rec: Any) -> int:
    """``--baskets`` / ``--user``: the top-k items of a user's next basket."""
    from seqrec.datasets import load_titles

    if args.baskets is not None and args.user is not None:
        raise ConfigError("--baskets and --user are exclusive")
    titles = None
    if args.user is not None:
        baskets, context, titles = _user_baskets(args, rec)
        note(f"seqrec: user {args.user}: {len(baskets)} baskets in the data")
    else:
        baskets, context = _basket_args(args.baskets, rec.vocab_), None
        if getattr(rec.model_, "context_names", ()):
            raise ConfigError(
                f"this model uses order context {list(rec.model_.context_names)}; use --user "
                "(the context comes from the data) or the Python API (recommend_basket(context=))"
            )
        if args.dataset:
            titles = load_titles(args.dataset)
    exclude_seen = bool(args.exclude_seen)
    recs = rec.recommend_basket(
        baskets, k=args.k, context=context, exclude_seen=exclude_seen, unknown=args.unknown
    )
    seen = {i for b in baskets for i in b}
    names: dict[Any, str] = {}
    if titles is not None:
        import polars as pl

        wanted = titles.filter(pl.col(Columns.item).is_in(recs.get_column(Columns.item).implode()))
        names = dict(zip(wanted[Columns.item].to_list(), wanted["title"].to_list(), strict=True))
    rows_ = [
        {
            "rank": r,
            "item_id": i,
            "score": s,
            "bought_before": i in seen,
            **({"title": names.get(i)} if titles is not None else {}),
        }
        for r, i, s in recs.select("rank", Columns.item, "score").iter_rows()
    ]
    if args.json:
        out(json.dumps(rows_, default=str))
        return 0
    from seqrec.experiment import format_table

    head = ["rank", "item_id", "score", "repeat"] + (["title"] if titles is not None else [])
    table = [
        [
            str(x["rank"]),
            str(x["item_id"]),
            f"{x['score']:.4f}",
            "yes" if x["bought_before"] else "",
        ]
        + ([str(x.get("title") or "")] if titles is not None else [])
        for x in rows_
    ]
    out(format_table(head, table))
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    if getattr(args, "baskets", None) is not None or getattr(args, "user", None) is not None:
        if args.items is not None or args.input is not None:
            raise ConfigError("--baskets/--user (next basket) and --items/--input are exclusive")
        if args.k < 1:
            raise ConfigError(f"-k must be >= 1, got {args.k}")
        rec = load_model(args.model_dir)
        if rec.spec.task != "next-basket":
            raise ConfigError(
                f"--baskets/--user are for next-basket models; {rec.model.name!r} predicts next "
                "items: use --items"
            )
        return cmd_recommend_basket(args, rec)
    if args.items is None and args.input is None:
        raise ConfigError("give --items ID ... (one session) or --input FILE --output FILE (batch)")
    if args.items is not None and args.input is not None:
        raise ConfigError("--items and --input are exclusive: one session, or a file of sessions")
    if args.k < 1:
        raise ConfigError(f"-k must be >= 1, got {args.k}")
    rec = load_model(args.model_dir)
    if rec.spec.task == "next-basket":
        raise ConfigError(
            f"{rec.model.name!r} predicts next baskets: give --baskets IDS... (one argument per "
            "basket, comma-separated ids) or --user ID; batch files of baskets are not supported yet"
        )
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
