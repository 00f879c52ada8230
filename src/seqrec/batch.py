"""Batch recommendation: a file of sessions in, one row per session x rank out.

Streams the input in chunks of whole sessions (so a file larger than memory works), scores
each chunk with :meth:`Recommender.recommend_many`, and appends the rows to a temporary file
that is renamed into place at the end (a failed run leaves nothing half-written).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

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


def _scan(path: Path) -> pl.LazyFrame:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pl.scan_parquet(path)
    if suffix == ".gz":
        raise DataError(
            f"{path}: compressed input cannot be streamed; decompress it or convert it to Parquet"
        )
    sep = "\t" if suffix in (".tsv", ".txt") else ","
    return pl.scan_csv(path, separator=sep, infer_schema_length=10_000)


def _session_chunks(lf: pl.LazyFrame, session_col: str, chunk_rows: int) -> Iterator[pl.DataFrame]:
    """Frames of whole sessions from a session-sorted stream (a session never straddles two)."""
    pending: pl.DataFrame | None = None
    for chunk in lf.collect_batches(chunk_size=chunk_rows):
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
    file is streamed in constant memory.
    """
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {batch_size}")
    if unknown not in ("drop", "error"):
        raise ConfigError(f"unknown must be 'drop' or 'error', got {unknown!r}")
    src = Path(input_path).expanduser()
    dst = Path(output_path).expanduser()
    if not src.is_file():
        raise DataError(f"input file not found: {src}")
    out_kind = dst.suffix.lower()
    if out_kind not in (".csv", ".tsv", ".parquet", ".pq"):
        raise ConfigError(f"--output must end in .csv, .tsv or .parquet, got {dst.name!r}")
    lf = _scan(src)
    try:
        schema = lf.collect_schema()
    except (pl.exceptions.PolarsError, OSError) as e:
        raise DataError(f"cannot read {src}: {str(e).splitlines()[0]}") from e
    missing = [c for c in (session_col, item_col) if c not in schema]
    if missing:
        raise SchemaError(
            f"{src}: column(s) {missing} not found; the file has {list(schema)}. Name them with "
            "--session-col / --item-col"
        )
    use_time = time_col is not None and time_col in schema
    if time_col is not None and not use_time and time_col != Columns.time:
        raise SchemaError(f"{src}: time column {time_col!r} not found; the file has {list(schema)}")
    cols = [session_col, item_col, *([time_col] if use_time else [])]
    lf = lf.select(cols)
    if not presorted:
        lf = lf.sort([session_col, time_col] if use_time else [session_col], maintain_order=True)

    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    parts_dir = None
    stats = {"sessions": 0, "events": 0, "rows": 0, "unknown_events": 0, "empty_sessions": 0}
    vocab = rec.vocab_
    try:
        fh = None
        if out_kind in (".csv", ".tsv"):
            fh = tmp.open("wb")
        else:
            parts_dir = Path(tempfile.mkdtemp(prefix=f".{dst.name}.parts-", dir=dst.parent))
        n_part = 0
        try:
            for chunk in _session_chunks(lf, session_col, max(10_000, batch_size * 50)):
                keys = chunk.get_column(session_col)
                if keys.null_count() or chunk.get_column(item_col).null_count():
                    raise DataError(f"{src}: missing session or item ids; drop or fix those rows")
                if presorted and int((keys != keys.shift(1)).sum()) + 1 != keys.n_unique():
                    raise DataError(
                        f"{src}: --sorted was given but the rows of a session are not contiguous; "
                        "drop --sorted to let seqrec sort the input"
                    )
                idx = vocab.lookup(chunk.get_column(item_col).to_numpy())
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
                    .group_by(session_col, maintain_order=True)
                    .agg(pl.col(item_col), (pl.col("_idx") > 0).sum().alias("_known"))
                )
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
        except pl.exceptions.PolarsError as e:
            raise DataError(f"cannot read {src}: {str(e).splitlines()[0]}") from e
        finally:
            if fh is not None:
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
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        if parts_dir is not None:
            shutil.rmtree(parts_dir, ignore_errors=True)
    return stats


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
