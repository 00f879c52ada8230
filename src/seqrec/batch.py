"""Batch recommendation: a file of sessions in, one row per session x rank out.

Streams the input in chunks of whole sessions (so a file larger than memory works), scores
each chunk with :meth:`Recommender.recommend_many`, and appends the rows to a temporary file
that is renamed into place at the end (a failed run leaves nothing half-written).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from seqrec._checks import check_bool, check_choice, check_int, quote
from seqrec._io import (
    apply_umask,
    fsync_path,
    remove_dead_temporaries,
    remove_stale,
    stale_prefixes,
)
from seqrec.columns import Columns
from seqrec.exceptions import ConfigError, DataError, SchemaError, UnknownItemError


def _known(ids: Sequence[Any], vocab: Any) -> np.ndarray:
    """Boolean mask of the ids present in the vocabulary."""
    if vocab.ids.dtype.kind == "U":
        return vocab.lookup(np.asarray(ids, dtype=str)) > 0
    is_int = np.array([isinstance(i, int) for i in ids], dtype=bool)
    known = np.zeros(len(ids), dtype=bool)
    if is_int.any():
        known[is_int] = (
            vocab.lookup(np.asarray([i for i in ids if isinstance(i, int)], dtype=np.int64)) > 0
        )
    return known


def _scan(path: Path, sep: str | None = None) -> pl.LazyFrame:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pl.scan_parquet(path)
    if suffix == ".gz":
        raise DataError(
            f"{path}: compressed input cannot be streamed; decompress it or convert it to Parquet"
        )
    if sep is None:
        sep = "\t" if suffix in (".tsv", ".txt") else ","
    if len(sep) != 1:
        raise ConfigError(
            f"batch input separator must be one character, got {sep!r}; convert the file to "
            "CSV/TSV or Parquet"
        )
    return pl.scan_csv(path, separator=sep, infer_schema_length=10_000)


_ROW = "__seqrec_row"
_TIME = "__seqrec_time"


def _bad_rows(chunk: pl.DataFrame, mask: pl.Series, col: str) -> str:
    """``row N: value`` for the first bad rows (N = 0-based data row of the input file)."""
    bad = chunk.filter(mask).head(3)
    return ", ".join(
        f"row {r}: {quote(v, 40)}"
        for r, v in zip(bad.get_column(_ROW).to_list(), bad.get_column(col).to_list(), strict=True)
    )


def _time_expr(dtype: pl.DataType, time_col: str) -> pl.Expr:
    """The time column as Float64 (numbers, numeric text, datetimes); null where not numeric."""
    col = pl.col(time_col)
    if dtype == pl.Datetime or dtype == pl.Date:
        return col.cast(pl.Datetime("us")).dt.epoch("us").cast(pl.Float64)
    if dtype == pl.String:
        return col.str.strip_chars().cast(pl.Float64, strict=False)
    if dtype.is_numeric():
        return col.cast(pl.Float64)
    return pl.lit(None, dtype=pl.Float64)


def _item_expr(dtype: pl.DataType, item_col: str, string_ids: bool) -> pl.Expr:
    """The item column in the vocabulary's id type; ids of the other type are unknown
    (null in ``_known``), floats only when integral."""
    col = pl.col(item_col)
    if string_ids:
        if dtype.is_float():
            return pl.when(col == col.floor()).then(col.cast(pl.Int64).cast(pl.String))
        return col.cast(pl.String)
    if dtype.is_integer():
        return col.cast(pl.Int64)
    if dtype.is_float():
        return pl.when(col == col.floor()).then(col.cast(pl.Int64))
    return col.cast(pl.String).str.strip_chars().str.to_integer(strict=False)


def _session_chunks(lf: pl.LazyFrame, session_col: str, chunk_rows: int) -> Iterator[pl.DataFrame]:
    """Frames of whole sessions from a session-sorted stream (a session never straddles two)."""
    pending: pl.DataFrame | None = None
    if hasattr(lf, "collect_batches"):  # polars >= 1.34: streamed
        batches: Iterator[pl.DataFrame] = lf.collect_batches(chunk_size=chunk_rows)
    else:  # older polars: collected once, then sliced
        batches = lf.collect().iter_slices(chunk_rows)
    for chunk in batches:
        if pending is not None and pending.height:
            chunk = pl.concat([pending, chunk], how="vertical_relaxed")
        if chunk.height == 0:
            continue
        keys = chunk.get_column(session_col)
        last = keys[-1]
        n_last = int((keys == last).sum())
        pending = chunk.slice(chunk.height - n_last)
        done = chunk.slice(0, chunk.height - n_last)
        if done.height:
            yield done
    if pending is not None and pending.height:
        yield pending


def recommend_file(
    rec: Any,
    input_path: str | Path,
    output_path: str | Path,
    *,
    k: int = 20,
    exclude_seen: bool = False,
    session_col: str = Columns.session,
    item_col: str = Columns.item,
    time_col: str | None = Columns.time,
    batch_size: int = 1024,
    unknown: str = "drop",
    presorted: bool = False,
    sep: str | None = None,
    file_order: bool = False,
) -> dict[str, int]:
    """Top-``k`` for every session of an event file, streamed, into a CSV/TSV/Parquet file.

    The input is scanned lazily and sorted by (session, time) — stable, so equal times keep
    file order; without a time column, file order — then read in chunks of whole sessions;
    at most ``batch_size`` sessions are scored at once and each chunk of output rows
    (``session_id, rank, item_id, score``) is appended to a temporary file that is renamed
    to ``output_path`` at the end. Returns counts (sessions, events, rows, unknown events,
    sessions with no known item).

    Polars' sort holds the selected columns of the whole input; with ``presorted`` (the rows
    of each session are already contiguous and in time order) the sort is skipped and the
    file is streamed in constant memory; a session met again after another one (a
    fragment, even chunks later) or events out of time order are then an error naming the
    session.

    Times must be numbers (or a datetime column): a non-numeric or NaN time is a
    :class:`DataError` naming the row — text times would sort ``"10"`` before ``"9"``.
    ``file_order=True`` ignores the time column and keeps each session's events in file
    order (stable grouping by session). ``sep`` is the CSV field separator (default: tab
    for .tsv/.txt, else comma).

    Temporaries (``.<output>.tmp-<pid>``, ``.<output>.parts-<pid>/``) of killed earlier runs
    writing the same output are removed on start.
    """
    batch_size = check_int(batch_size, "batch_size (--batch-size)", minimum=1)
    k = check_int(k, "k", minimum=1)
    check_choice(unknown, "unknown", ("drop", "error"))
    check_bool(exclude_seen, "exclude_seen")
    src = Path(input_path).expanduser()
    dst = Path(output_path).expanduser()
    if not src.is_file():
        raise DataError(f"input file not found: {src}")
    out_kind = dst.suffix.lower()
    if out_kind not in (".csv", ".tsv", ".parquet", ".pq"):
        raise ConfigError(f"--output must end in .csv, .tsv or .parquet, got {dst.name!r}")
    lf = _scan(src, sep)
    try:
        schema = lf.collect_schema()
    except (pl.exceptions.PolarsError, OSError, ValueError) as e:
        raise DataError(f"cannot read {src}: {_first_line(e)}") from None
    missing = [c for c in (session_col, item_col) if c not in schema]
    if missing:
        raise SchemaError(
            f"{src}: column(s) {missing} not found; the file has {quote(list(schema)[:20], 300)}. Name them with "
            "--session-col / --item-col"
        )
    use_time = not file_order and time_col is not None and time_col in schema
    if not file_order and time_col is not None and not use_time and time_col != Columns.time:
        raise SchemaError(
            f"{src}: time column {time_col!r} not found; the file has {quote(list(schema)[:20], 300)} "
            "(name it with --time-col, or pass --file-order to keep file order)"
        )
    vocab = rec.vocab_
    string_ids = vocab.ids.dtype.kind == "U"
    exprs = [
        pl.col(session_col),
        pl.col(item_col),
        _item_expr(schema[item_col], item_col, string_ids).alias("__seqrec_item"),
        pl.int_range(pl.len(), dtype=pl.Int64).alias(_ROW),
    ]
    if use_time:
        exprs += [pl.col(time_col), _time_expr(schema[time_col], time_col).alias(_TIME)]
    lf = lf.select(exprs)
    if not presorted:
        lf = lf.sort([session_col, _TIME] if use_time else [session_col], maintain_order=True)

    dst.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(dst.parent, stale_prefixes(dst))
    remove_dead_temporaries(dst.parent)
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    parts_dir = None
    seen: set[Any] = set()  # presorted: sessions already finished (fragments are errors)
    stats = {"sessions": 0, "events": 0, "rows": 0, "unknown_events": 0, "empty_sessions": 0}
    try:
        fh = None
        if out_kind in (".csv", ".tsv"):
            fh = tmp.open("wb")
        else:
            parts_dir = dst.with_name(f".{dst.name}.parts-{os.getpid()}")
            shutil.rmtree(parts_dir, ignore_errors=True)
            parts_dir.mkdir()
        n_part = 0
        try:
            for chunk in _session_chunks(lf, session_col, max(10_000, batch_size * 50)):
                keys = chunk.get_column(session_col)
                missing_ids = keys.is_null() | chunk.get_column(item_col).is_null()
                if bool(missing_ids.any()):
                    raise DataError(
                        f"{src}: missing session or item ids "
                        f"({_bad_rows(chunk, missing_ids, item_col)}); drop or fix those rows"
                    )
                if use_time:
                    t = chunk.get_column(_TIME)
                    bad_t = (t.is_null() & chunk.get_column(time_col).is_not_null()) | t.is_nan()
                    if bool(bad_t.any()):
                        raise DataError(
                            f"{src}: time column {time_col!r} is not numeric "
                            f"({_bad_rows(chunk, bad_t, time_col)}); text times would be "
                            'ordered as text ("10" before "9"): fix those rows, or pass '
                            "--file-order (file_order=True) to keep each session's events in "
                            "file order"
                        )
                    if bool(t.is_null().any()):
                        raise DataError(
                            f"{src}: missing times ({_bad_rows(chunk, t.is_null(), time_col)}); "
                            "fix those rows or pass --file-order"
                        )
                if presorted:
                    _check_presorted(chunk, keys, seen, src, use_time)
                item_vals = chunk.get_column("__seqrec_item")
                idx = np.zeros(chunk.height, dtype=np.int64)
                ok = item_vals.is_not_null().to_numpy()
                if ok.any():
                    idx[ok] = vocab.lookup(item_vals.filter(item_vals.is_not_null()).to_numpy())
                unknown_mask = idx == 0
                n_unk = int(unknown_mask.sum())
                if n_unk and unknown == "error":
                    bad = (
                        chunk.filter(pl.Series(unknown_mask)).get_column(item_col).head(5).to_list()
                    )
                    raise UnknownItemError(
                        f"{src}: {n_unk} event(s) in this chunk have items unknown to the model, "
                        f"e.g. {bad}; use --unknown drop to skip them"
                    )
                stats["unknown_events"] += n_unk
                stats["events"] += chunk.height
                sessions = (
                    chunk.with_columns(pl.Series("_idx", idx))
                    .filter(pl.col("_idx") > 0)
                    .group_by(session_col, maintain_order=True)
                    .agg(pl.col("__seqrec_item").alias(item_col))
                )
                all_keys = keys.unique(maintain_order=True)
                if sessions.height != all_keys.len():  # sessions with no known item: empty
                    sessions = (
                        pl.DataFrame({session_col: all_keys})
                        .join(sessions, on=session_col, how="left", maintain_order="left")
                        .with_columns(
                            pl.col(item_col).fill_null(pl.lit([], dtype=sessions.schema[item_col]))
                        )
                    )
                sessions = sessions.with_columns(pl.col(item_col).list.len().alias("_known"))
                stats["sessions"] += sessions.height
                stats["empty_sessions"] += int((sessions.get_column("_known") == 0).sum())
                for start in range(0, sessions.height, batch_size):
                    part = sessions.slice(start, batch_size)
                    out = _score_batch(rec, part, session_col, item_col, k, exclude_seen)
                    stats["rows"] += out.height
                    if fh is not None:
                        out.write_csv(
                            fh,
                            include_header=n_part == 0,
                            separator="\t" if out_kind == ".tsv" else ",",
                        )
                    else:
                        out.write_parquet(parts_dir / f"part-{n_part:06d}.parquet")  # type: ignore[operator]
                    n_part += 1
        except (pl.exceptions.PolarsError, OSError) as e:
            if isinstance(e, OSError) and not isinstance(e, pl.exceptions.PolarsError):
                raise
            raise DataError(
                f"cannot read {src}: {_first_line(e)}; check the separator (--sep) and that "
                "every row has the same fields"
            ) from None
        finally:
            if fh is not None:
                fh.flush()
                os.fsync(fh.fileno())
                fh.close()
        if fh is not None and n_part == 0:
            tmp.write_text(
                "session_id,rank,item_id,score\n"
                if out_kind == ".csv"
                else "session_id\trank\titem_id\tscore\n"
            )
        if parts_dir is not None:
            files = sorted(parts_dir.glob("part-*.parquet"))
            if files:
                pl.scan_parquet(files).sink_parquet(tmp)
            else:
                pl.DataFrame(
                    schema={
                        "session_id": pl.String,
                        "rank": pl.Int64,
                        "item_id": pl.String,
                        "score": pl.Float64,
                    }
                ).write_parquet(tmp)
        apply_umask(tmp)
        fsync_path(tmp)
        os.replace(tmp, dst)
        fsync_path(dst.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        if parts_dir is not None:
            shutil.rmtree(parts_dir, ignore_errors=True)
    return stats


def _first_line(e: BaseException, limit: int = 200) -> str:
    text = (str(e).splitlines() or [type(e).__name__])[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_presorted(
    chunk: pl.DataFrame, keys: pl.Series, seen: set[Any], src: Path, use_time: bool
) -> None:
    """``--sorted``: each session contiguous (within the chunk and never seen in an earlier
    chunk) and, with times, in time order; errors name the session."""
    starts = keys != keys.shift(1)
    starts[0] = True
    run_keys = keys.filter(starts)
    dup = run_keys.is_duplicated()
    if bool(dup.any()):
        sid = run_keys.filter(dup)[0]
        raise DataError(
            f"{src}: --sorted was given but the rows of session {quote(sid, 40)} are not "
            "contiguous; drop --sorted to let seqrec sort the input"
        )
    again = [k for k in run_keys.to_list() if k in seen]
    if again:
        raise DataError(
            f"{src}: --sorted was given but session {quote(again[0], 40)} appears again after "
            "other sessions (its rows are not contiguous); drop --sorted to let seqrec sort "
            "the input"
        )
    seen.update(run_keys.to_list())
    if use_time:
        t = chunk.get_column(_TIME)
        back = (t < t.shift(1)) & ~starts
        if bool(back.any()):
            sid = keys.filter(back)[0]
            raise DataError(
                f"{src}: --sorted was given but the events of session {quote(sid, 40)} are not "
                "in time order; drop --sorted to let seqrec sort the input"
            )


def _score_batch(
    rec: Any, sessions: pl.DataFrame, session_col: str, item_col: str, k: int, exclude_seen: bool
) -> pl.DataFrame:
    """Top-k rows for a batch of (session, [items]) -> session_id, rank, item_id, score."""
    lists = sessions.get_column(item_col).to_list()
    res = rec.recommend_many(lists, k, exclude_seen=exclude_seen, unknown="drop")
    lengths = np.array([len(ids) for ids, _ in res], dtype=np.int64)
    keys = sessions.get_column(session_col)
    if lengths.sum() == 0:
        return pl.DataFrame(
            {
                "session_id": keys.head(0),
                "rank": pl.Series([], dtype=pl.Int64),
                "item_id": pl.Series([], dtype=pl.Int64),
                "score": pl.Series([], dtype=pl.Float64),
            }
        )
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    rank = np.arange(int(lengths.sum()), dtype=np.int64) - starts + 1
    items = np.concatenate([ids for ids, _ in res])
    scores = np.concatenate([s for _, s in res]).astype(np.float64)
    return pl.DataFrame(
        {
            "session_id": keys.gather(np.repeat(np.arange(len(lengths)), lengths)),
            "rank": rank,
            "item_id": items,
            "score": scores,
        }
    )


# -------------------------------------------------------------------------- parser


__all__ = ["recommend_file"]
