"""Readers: raw event logs (CSV/TSV/Parquet, MovieLens, session logs) -> canonical frames.

Every reader returns a :class:`polars.DataFrame` with the canonical columns of
:class:`~seqrec.columns.Columns` only, in this order (optional ones when present)::

    session_id, user_id, basket_id, item_id, timestamp, rating

* ``session_id`` / ``user_id`` / ``basket_id`` / ``item_id`` keep their type: ``Int64`` when
  the file holds integers, else ``String``;
* ``timestamp`` is ``Float64`` unix seconds (UTC);
* ``rating`` is ``Float64``.

Rows keep file order (readers never sort), so downstream stable sorts break timestamp ties by
file order. Every failure is a :class:`~seqrec.exceptions.DataError` (or its subclass
:class:`~seqrec.exceptions.SchemaError`) whose message says what to change; raw polars
exceptions never escape.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import polars as pl

from seqrec.columns import Columns
from seqrec.exceptions import DataError, SchemaError

logger = logging.getLogger(__name__)

TimeUnit = Literal["auto", "s", "ms", "us", "ns", "datetime"]

#: Seconds per unit of the numeric time units.
_UNIT_SECONDS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}

#: The valid range of a timestamp in unix seconds: 1970-01-01 to 9999-12-31 (Python's
#: datetime ends there; larger values are usually milliseconds read as seconds).
MAX_TIMESTAMP = 253402300799.0

_MAX_QUOTE = 60


def _q(value: object, limit: int = _MAX_QUOTE) -> str:
    """``repr`` cut to ``limit`` characters: messages never quote megabytes of a file."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _names(names: list[str], limit: int = 12) -> str:
    shown = [_q(n, 40) for n in names[:limit]]
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return "[" + ", ".join(shown) + more + "]"


def detect_time_unit(values: pl.Series) -> str:
    """The unit of numeric unix times from their median magnitude: seconds below 1e11
    (year 5138), milliseconds below 1e14, microseconds below 1e17, else nanoseconds."""
    finite = values.filter(values.is_finite() & (values > 0)) if values.len() else values
    if finite.len() == 0:
        return "s"
    med = float(finite.median())  # type: ignore[arg-type]
    if med < 1e11:
        return "s"
    if med < 1e14:
        return "ms"
    if med < 1e17:
        return "us"
    return "ns"


#: Canonical output order.
CANONICAL_ORDER: tuple[str, ...] = (
    Columns.session,
    Columns.user,
    Columns.basket,
    Columns.item,
    Columns.time,
    Columns.rating,
)

#: Names recognised without a ``columns=`` mapping, compared after lower-casing and removing
#: ``_``, ``-`` and spaces (so ``SessionId``, ``session_id`` and ``Session ID`` all match).
ALIASES: dict[str, tuple[str, ...]] = {
    Columns.session: ("sessionid", "session"),
    Columns.user: ("userid", "user", "visitorid"),
    Columns.basket: ("basketid", "basket"),
    Columns.item: ("itemid", "item", "productid", "product", "movieid"),
    Columns.time: ("time", "timestamp", "ts", "datetime", "eventtime"),
    Columns.rating: ("rating",),
}

_ID_COLUMNS = (Columns.session, Columns.user, Columns.basket, Columns.item)
_CANDIDATE_SEPS = ("\t", "::", ",", ";", "|")
_SEP_NAMES = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe", "::": "'::'", " ": "space"}
_PARQUET_SUFFIXES = {".parquet", ".pq"}


def _sep_name(sep: str) -> str:
    return _SEP_NAMES.get(sep, repr(sep))


# --------------------------------------------------------------------------- file helpers
def _check_file(path: str | Path) -> Path:
    p = Path(path)
    if not p.exists():
        raise DataError(
            f"file not found: {p} (check the path; relative paths resolve from {Path.cwd()})"
        )
    if p.is_dir():
        raise DataError(f"{p} is a directory; pass the path of the event file inside it")
    if p.stat().st_size == 0:
        raise DataError(f"{p} is empty (0 bytes); the event log has no rows")
    return p


def _is_gzip(p: Path) -> bool:
    with p.open("rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _first_line(p: Path) -> str:
    opener = gzip.open if _is_gzip(p) else open
    try:
        with opener(p, "rt", encoding="utf-8", errors="replace") as fh:  # type: ignore[operator]
            return fh.readline().rstrip("\r\n")
    except (OSError, EOFError, UnicodeError) as e:  # corrupt or truncated gzip
        raise DataError(
            f"cannot read {p}: {_q(str(e), 120)}; is it a valid (gzip-compressed) text file?"
        ) from None


def _sniff_sep(p: Path, line: str) -> str:
    """Separator from the first line, the extension breaking ties."""
    counts = {s: line.count(s) for s in _CANDIDATE_SEPS}
    suffixes = [s.lower() for s in p.suffixes]
    if ".tsv" in suffixes and counts["\t"]:
        return "\t"
    if ".csv" in suffixes and counts[","]:
        return ","
    best = max(_CANDIDATE_SEPS, key=lambda s: counts[s])
    if counts[best] > 0:
        return best
    if line.count(" "):
        return " "
    # a single column: fall back on the extension so the column check reports it
    return "\t" if ".tsv" in suffixes or ".txt" in suffixes or ".data" in suffixes else ","


def _wrap_polars(p: Path, sep: str, e: Exception) -> DataError:
    first = str(e).splitlines()[0] if str(e) else type(e).__name__
    if len(first) > 200:
        first = first[:197] + "..."
    return DataError(
        f"could not parse {p} as a {_sep_name(sep)}-separated file: {first}. "
        "Check the separator (pass sep=...), has_header=, and that every row has the same "
        "number of fields"
    )


def _read_delimited(p: Path, sep: str, has_header: bool) -> pl.DataFrame:
    """Read a (possibly gzip-compressed) delimited file; multi-character separators allowed."""
    if len(sep) > 1:
        try:
            lines = pl.read_csv(
                p,
                separator="\x1f",
                has_header=False,
                quote_char=None,
                new_columns=["_line"],
                schema_overrides=[pl.String],
            )
        except pl.exceptions.PolarsError as e:
            raise _wrap_polars(p, sep, e) from e
        first = lines.get_column("_line")[0] if lines.height else ""
        n_fields = first.count(sep) + 1
        names = first.split(sep) if has_header else [f"column_{i}" for i in range(n_fields)]
        body = lines.slice(1) if has_header else lines
        frame = body.select(pl.col("_line").str.splitn(sep, n_fields)).unnest("_line")
        frame = frame.rename(dict(zip(frame.columns, names, strict=True)))
        return frame.with_columns(_infer_string_column(frame.get_column(c)) for c in frame.columns)
    kwargs: dict[str, object] = {
        "separator": sep,
        "has_header": has_header,
        "truncate_ragged_lines": False,
    }
    try:
        return pl.read_csv(p, infer_schema_length=10_000, **kwargs)  # type: ignore[arg-type]
    except pl.exceptions.ComputeError as e:
        if "could not parse" not in str(e):
            raise _wrap_polars(p, sep, e) from e
        # a late row has a different type than the first 10k: infer over the whole file
        try:
            return pl.read_csv(p, infer_schema_length=None, **kwargs)  # type: ignore[arg-type]
        except pl.exceptions.PolarsError as e2:
            raise _wrap_polars(p, sep, e2) from e2
    except pl.exceptions.PolarsError as e:
        raise _wrap_polars(p, sep, e) from e


def _infer_string_column(s: pl.Series) -> pl.Series:
    """String column -> Int64 or Float64 when every non-null value parses, else unchanged."""
    as_int = s.str.strip_chars().str.to_integer(strict=False)
    if as_int.null_count() == s.null_count():
        return as_int
    as_float = s.str.strip_chars().cast(pl.Float64, strict=False)
    if as_float.null_count() == s.null_count():
        return as_float
    return s


# ------------------------------------------------------------------------ column mapping
def _normalise(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "").replace(" ", "")


def _resolve_columns(
    found: list[str], columns: Mapping[str, str | int] | None, p: Path
) -> dict[str, str]:
    """Canonical name -> column name in the raw frame."""
    hint = (
        "pass columns={'session_id': ..., 'item_id': ..., 'timestamp': ...} mapping canonical "
        "names to the names in the file"
    )
    if columns is not None:
        bad = sorted(set(columns) - set(CANONICAL_ORDER))
        if bad:
            raise SchemaError(
                f"columns= has unknown canonical name(s) {bad}; the keys must be among "
                f"{list(CANONICAL_ORDER)}, the values names (or 0-based positions) in the file"
            )
        mapping: dict[str, str] = {}
        missing: list[str] = []
        for canon, raw in columns.items():
            if isinstance(raw, int) and not isinstance(raw, bool):
                if not 0 <= raw < len(found):
                    missing.append(f"{canon}=<position {raw}>")
                    continue
                mapping[canon] = found[raw]
            elif raw in found:
                mapping[canon] = raw
            else:
                missing.append(f"{canon}={raw!r}")
        if missing:
            raise SchemaError(
                f"{p}: column(s) {missing} not found; the file has columns {_names(found)}. "
                f"Fix columns= ({hint}); check the separator and has_header= too"
            )
    else:
        norm = {_normalise(c): c for c in reversed(found)}  # first occurrence wins
        mapping = {}
        for canon, aliases in ALIASES.items():
            for alias in aliases:
                if alias in norm:
                    mapping[canon] = norm[alias]
                    break
    required_ok = Columns.item in mapping and Columns.time in mapping
    if not required_ok or not ({Columns.session, Columns.user} & set(mapping)):
        expected = "session_id (or user_id), item_id, timestamp"
        recognised = {k: _q(v, 40) for k, v in mapping.items()}
        raise SchemaError(
            f"{p}: could not find the required columns ({expected}); found columns "
            f"{_names(found)}, recognised {recognised or 'none'}. Rename them or {hint} "
            "(CLI: --columns session_id=NAME,item_id=NAME,timestamp=NAME)"
        )
    return mapping


# ------------------------------------------------------------------------- conversions
def _convert_id(s: pl.Series, name: str) -> pl.Series:
    dtype = s.dtype
    if dtype.is_integer():
        return s.cast(pl.Int64)
    if dtype == pl.String:
        return s
    if dtype.is_float():
        integral = s.is_null() | (s == s.floor())
        if bool(integral.all()):
            return s.cast(pl.Int64)
        return s.cast(pl.String)
    if dtype == pl.Categorical or dtype == pl.Enum:
        return s.cast(pl.String)
    try:
        return s.cast(pl.String)
    except pl.exceptions.PolarsError as e:  # pragma: no cover - exotic dtypes
        raise SchemaError(f"column {name!r} has type {dtype}, which cannot be used as an id") from e


def _examples(s: pl.Series, mask: pl.Series) -> str:
    """The first bad values with their 0-based data rows, quoted briefly."""
    rows = mask.arg_true().head(3).to_list()
    vals = s.gather(rows).to_list()
    return ", ".join(f"row {r}: {_q(v, 40)}" for r, v in zip(rows, vals, strict=True))


def _parse_datetimes(s: pl.Series, raw_name: str, p: Path) -> pl.Series:
    parsed = None
    for kwargs in ({}, {"time_zone": "UTC"}):
        try:
            parsed = s.str.strip_chars().str.to_datetime(**kwargs)  # type: ignore[arg-type]
            break
        except pl.exceptions.PolarsError:
            continue
    if parsed is None:
        try:
            as_dt = s.str.strip_chars().str.to_datetime(strict=False)
            bad = as_dt.is_null() & s.is_not_null()
        except pl.exceptions.PolarsError:  # no format fits any value
            bad = s.is_not_null()
        raise SchemaError(
            f"{p}: could not parse timestamp column {raw_name!r} as dates/times "
            f"({_examples(s, bad) if bool(bad.any()) else _q(s.drop_nulls().head(3).to_list())}); "
            "use one ISO-8601 format throughout, or time_unit='s'/'ms' (CLI: --time-unit) "
            "for numeric times"
        )
    return parsed


def _convert_time(s: pl.Series, raw_name: str, time_unit: TimeUnit, p: Path) -> pl.Series:
    """The timestamp column as Float64 unix seconds, checked: no NaN/inf, within
    1970..9999 (each bad value named with its row). ``time_unit="auto"`` reads numbers in
    the unit their magnitude says (:func:`detect_time_unit`) and text as numbers or dates;
    the unit used is logged (a WARNING when it is not seconds)."""
    dtype = s.dtype
    if dtype == pl.Datetime or dtype == pl.Date:
        dt = s.cast(pl.Datetime("us")) if dtype == pl.Date else s
        return _check_times((dt.dt.epoch("us").cast(pl.Float64) / 1e6), raw_name, p, "datetime")
    if time_unit == "datetime":
        if dtype != pl.String:
            raise SchemaError(
                f"{p}: time_unit='datetime' but timestamp column {raw_name!r} is {dtype}, "
                "not text; pass time_unit='s' (unix seconds), 'ms' (milliseconds) or 'auto'"
            )
        parsed = _parse_datetimes(s, raw_name, p)
        return _check_times(parsed.dt.epoch("us").cast(pl.Float64) / 1e6, raw_name, p, "datetime")
    if dtype == pl.String:
        num = s.str.strip_chars().cast(pl.Float64, strict=False)
        bad = num.is_null() & s.is_not_null()
        if bool(bad.any()):
            if time_unit == "auto" and int(bad.sum()) == s.is_not_null().sum():
                parsed = _parse_datetimes(s, raw_name, p)
                logger.info("%s: timestamp column %r read as date/time text", p, raw_name)
                return _check_times(
                    parsed.dt.epoch("us").cast(pl.Float64) / 1e6, raw_name, p, "datetime"
                )
            raise SchemaError(
                f"{p}: timestamp column {raw_name!r} is not numeric ({_examples(s, bad)}); "
                "fix or drop those rows, or pass time_unit='datetime' (CLI: --time-unit "
                "datetime) for date/time strings"
            )
        s = num
    elif not dtype.is_numeric():
        raise SchemaError(
            f"{p}: timestamp column {raw_name!r} has type {dtype}; expected unix seconds, "
            "milliseconds (time_unit='ms') or date strings (time_unit='datetime')"
        )
    out = s.cast(pl.Float64)
    _check_finite(out, raw_name, p)
    unit = detect_time_unit(out) if time_unit == "auto" else time_unit
    if time_unit == "auto":
        if unit != "s":
            logger.warning(
                "%s: timestamps in %r look like %s (median %.3g); read as %s. Pass "
                "time_unit='s' (CLI: --time-unit s) if they are seconds",
                p,
                raw_name,
                {"ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}[unit],
                float(out.median() or 0.0),
                unit,
            )
        else:
            logger.info("%s: timestamps in %r read as unix seconds", p, raw_name)
    if unit != "s":
        out = out * _UNIT_SECONDS[unit]
    return _check_times(out, raw_name, p, unit)


def _check_finite(t: pl.Series, raw_name: str, p: Path) -> None:
    bad = t.is_nan() | t.is_infinite()
    if bool(bad.any()):
        raise SchemaError(
            f"{p}: timestamp column {raw_name!r} has {int(bad.sum())} NaN/infinite value(s) "
            f"({_examples(t, bad)}); drop or fix those rows"
        )


def _check_times(t: pl.Series, raw_name: str, p: Path, unit: str) -> pl.Series:
    """Unix seconds within 1970-01-01 .. 9999-12-31, else a SchemaError naming rows."""
    t = t.alias(Columns.time)
    _check_finite(t, raw_name, p)
    neg = t < 0
    if bool(neg.any()):
        raise SchemaError(
            f"{p}: timestamp column {raw_name!r} has {int(neg.sum())} negative value(s) "
            f"({_examples(t, neg)}); times are unix seconds since 1970 (or relative times "
            ">= 0): fix or drop those rows"
        )
    big = t > MAX_TIMESTAMP
    if bool(big.any()):
        hint = (
            "they look like milliseconds: pass time_unit='ms' or 'auto' (CLI: --time-unit)"
            if unit == "s"
            else "fix or drop those rows"
        )
        raise SchemaError(
            f"{p}: timestamp column {raw_name!r} has {int(big.sum())} value(s) after year 9999 "
            f"read as {unit} ({_examples(t, big)}); {hint}"
        )
    return t


def _convert_rating(s: pl.Series, raw_name: str, p: Path) -> pl.Series:
    if s.dtype == pl.String:
        num = s.str.strip_chars().cast(pl.Float64, strict=False)
        bad = num.is_null() & s.is_not_null()
        if bool(bad.any()):
            raise SchemaError(
                f"{p}: rating column {raw_name!r} is not numeric (e.g. {_examples(s, bad)})"
            )
        return num.alias(Columns.rating)
    if not s.dtype.is_numeric():
        raise SchemaError(f"{p}: rating column {raw_name!r} has type {s.dtype}; expected numbers")
    return s.cast(pl.Float64).alias(Columns.rating)


def _to_canonical(
    raw: pl.DataFrame, mapping: dict[str, str], time_unit: TimeUnit, p: Path
) -> pl.DataFrame:
    if raw.height == 0:
        raise DataError(f"{p} has a header but no rows; the event log is empty")
    out: dict[str, pl.Series] = {}
    for canon in CANONICAL_ORDER:
        if canon not in mapping:
            continue
        s = raw.get_column(mapping[canon])
        if canon in _ID_COLUMNS:
            out[canon] = _convert_id(s, mapping[canon]).alias(canon)
        elif canon == Columns.time:
            out[canon] = _convert_time(s, mapping[canon], time_unit, p)
        else:
            out[canon] = _convert_rating(s, mapping[canon], p)
    if Columns.session not in out:
        out = {Columns.session: out[Columns.user].alias(Columns.session), **out}
    frame = pl.DataFrame(list(out.values()))
    nulls = frame.null_count().row(0, named=True)
    bad = {k: v for k, v in nulls.items() if v}
    if bad:
        row_idx = (
            frame.with_row_index("_row")
            .filter(pl.any_horizontal(pl.col(list(bad)).is_null()))
            .get_column("_row")
            .head(5)
            .to_list()
        )
        raise DataError(
            f"{p}: missing values {bad} (e.g. data rows {row_idx}, 0-based); rows with too few "
            "fields usually mean a wrong separator or a truncated file; drop or fix those rows"
        )
    return frame


# ----------------------------------------------------------------------------- readers
def read_interactions(
    path: str | Path,
    *,
    columns: Mapping[str, str | int] | None = None,
    sep: str | None = None,
    has_header: bool = True,
    time_unit: TimeUnit = "auto",
) -> pl.DataFrame:
    """Read an event log (CSV/TSV, optionally gzip-compressed, or Parquet) into a canonical frame.

    Parameters
    ----------
    path
        The file. ``.parquet``/``.pq`` are read as Parquet; anything else as delimited text
        (gzip detected from the content, whatever the extension).
    columns
        Canonical name -> name in the file, e.g. ``{"session_id": "SessionId",
        "item_id": "ItemId", "timestamp": "Time"}``. Values may also be 0-based column
        positions (needed for files without a header, whose columns have no names). Without
        a mapping, common names are recognised case-insensitively (see :data:`ALIASES`).
    sep
        Field separator; multi-character separators such as ``"::"`` work. ``None`` sniffs it
        from the first line (the extension ``.tsv``/``.csv`` breaking ties).
    has_header
        Whether the first line holds column names.
    time_unit
        How to read the timestamp column: ``"auto"`` (default) numbers in the unit their
        median magnitude says (:func:`detect_time_unit`: seconds below 1e11, then
        milliseconds, microseconds, nanoseconds; logged, a WARNING when not seconds) and
        text that is not numeric as ISO-8601 dates; ``"s"``, ``"ms"``, ``"us"``, ``"ns"``
        unix seconds/milli-/micro-/nanoseconds; ``"datetime"`` date/time text (ISO-8601;
        naive times are taken as UTC). Every timestamp must be finite and within
        1970-01-01 .. 9999-12-31 once converted (else a SchemaError naming the rows).

    Returns
    -------
    polars.DataFrame
        Canonical columns (see the module docstring), rows in file order. When the file has a
        user column but no session column, ``session_id`` is a copy of ``user_id``.

    Raises
    ------
    DataError
        Missing, empty or unparsable file (the message names the expected separator/format).
    SchemaError
        Required columns missing or misnamed, non-numeric timestamps/ratings, or NaN,
        negative or out-of-range timestamps (the rows are named).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "log.tsv"
    >>> _ = f.write_text("SessionId\\tItemId\\tTime\\n1\\t10\\t5.0\\n1\\t11\\t6.0\\n")
    >>> read_interactions(f).columns
    ['session_id', 'item_id', 'timestamp']
    """
    p = _check_file(path)
    if p.suffix.lower() in _PARQUET_SUFFIXES:
        try:
            raw = pl.read_parquet(p)
        except (pl.exceptions.PolarsError, OSError, ValueError) as e:
            first = (str(e).splitlines() or [type(e).__name__])[0][:200]
            raise DataError(
                f"could not read {p} as Parquet: {first}; is it a complete Parquet file?"
            ) from None
        used_sep = "parquet"
    else:
        line = _first_line(p)
        if line.lstrip()[:1] in ("{", "["):
            raise DataError(
                f"{p} looks like JSON (it starts with {line.lstrip()[:1]!r}), not a delimited "
                "event log; seqrec reads CSV/TSV (optionally gzip-compressed) or Parquet with "
                "one event per row: convert it, or use the registered dataset's reader if it "
                "is one (seqrec stats --help lists them)"
            )
        if "\x00" in line:
            raise DataError(
                f"{p} is a binary file (NUL bytes in its first line), not a text event log; "
                "Parquet files must end in .parquet or .pq"
            )
        used_sep = sep if sep is not None else _sniff_sep(p, line)
        if sep is not None and sep not in line and line.count(",") + line.count("\t") > 0:
            guess = _sniff_sep(p, line)
            raise DataError(
                f"{p}: expected {_sep_name(sep)}-separated fields but the first line "
                f"{_q(line[:80])} contains none; it looks {_sep_name(guess)}-separated "
                f"(pass sep={guess!r} or sep=None to detect it; CLI: --sep)"
            )
        raw = _read_delimited(p, used_sep, has_header)
    mapping = _resolve_columns(raw.columns, columns, p)
    if raw.width == 1 and used_sep != "parquet":  # pragma: no cover - caught by mapping above
        raise DataError(f"{p}: only one column found; check sep= (tried {_sep_name(used_sep)})")
    frame = _to_canonical(raw, mapping, time_unit, p)
    logger.debug("read %d events from %s", frame.height, p)
    return frame


def read_item_lists(
    path: str | Path,
    *,
    session_col: str = "session_id",
    items_col: str = "items",
    sep: str | None = None,
    item_sep: str = " ",
) -> pl.DataFrame:
    """Read sessions stored one per row, the items of each as one text field
    (``session_id<TAB>split<TAB>1 2 3``: the SR-GNN / GCE-GNN preprocessed Diginetica, Tmall
    and Nowplaying files).

    Such files have no times: ``timestamp`` is the event's position in its session (0, 1,
    ...), so only splits within sessions or given in the file are meaningful
    (``leave-one-out``, ``ratio``, ``presplit`` on a ``split`` column), not ``time``. A
    ``split`` column of the file is kept.

    Parameters
    ----------
    session_col, items_col
        The column names (the file must have a header).
    sep
        Field separator (None: sniffed from the first line).
    item_sep
        What separates the items inside the items field.

    Raises
    ------
    DataError
        Missing or unparsable file; :class:`SchemaError` when a column is missing, a
        session has no items or an item is not an id.
    """
    p = _check_file(path)
    line = _first_line(p)
    used_sep = sep if sep is not None else _sniff_sep(p, line)
    if used_sep == item_sep:
        raise DataError(f"{p}: the field separator and item_sep are both {_sep_name(item_sep)}")
    raw = _read_delimited(p, used_sep, True)
    missing = [c for c in (session_col, items_col) if c not in raw.columns]
    if missing:
        raise SchemaError(
            f"{p}: column(s) {missing} not found; the file has columns {_names(raw.columns)} "
            "(pass session_col=/items_col=; CLI: --columns session_id=NAME,item_id=NAME)"
        )
    if raw.height == 0:
        raise DataError(f"{p} has a header but no rows; the file is empty")
    keep = [c for c in ("split",) if c in raw.columns and c not in (session_col, items_col)]
    lists = raw.select(
        pl.col(session_col).alias(Columns.session),
        pl.col(items_col).cast(pl.String).str.strip_chars().str.split(item_sep).alias("_items"),
        *[pl.col(c) for c in keep],
    )
    empty = lists.get_column("_items").is_null() | (
        lists.get_column("_items").list.eval(pl.element().str.len_chars() > 0).list.sum() == 0
    )
    if bool(empty.any()):
        raise SchemaError(
            f"{p}: sessions without items ({_examples(lists.get_column(Columns.session), empty)}); "
            "drop those rows"
        )
    events = (
        lists.with_columns(
            pl.col("_items").list.eval(pl.element().filter(pl.element().str.len_chars() > 0))
        )
        .with_columns(
            pl.col("_items").list.eval(pl.int_range(pl.len())).alias(Columns.time),
        )
        .explode(["_items", Columns.time])
        .rename({"_items": Columns.item})
    )
    item = _infer_string_column(events.get_column(Columns.item))
    session = _convert_id(events.get_column(Columns.session), session_col)
    return pl.DataFrame(
        [
            session.alias(Columns.session),
            _convert_id(item, items_col).alias(Columns.item),
            events.get_column(Columns.time).cast(pl.Float64).alias(Columns.time),
            *[events.get_column(c) for c in keep],
        ]
    )


def read_movielens(path: str | Path) -> pl.DataFrame:
    """Read MovieLens ratings: ML-100K ``u.data`` (tab) or ML-1M/10M ``ratings.dat`` (``::``).

    The format is detected from the first line. Each user is one sequence.

    Parameters
    ----------
    path
        The ratings file, or a directory holding ``u.data`` or ``ratings.dat``.

    Returns
    -------
    polars.DataFrame
        ``session_id`` (= user), ``user_id``, ``item_id`` (Int64), ``timestamp`` (Float64 unix
        seconds), ``rating`` (Float64), in file order.

    Raises
    ------
    DataError
        Missing file, or a line that is not ``user<sep>item<sep>rating<sep>timestamp``.
    """
    p = Path(path)
    if p.is_dir():
        for name in ("u.data", "ratings.dat"):
            if (p / name).is_file():
                p = p / name
                break
        else:
            raise DataError(f"{p} holds neither u.data (ML-100K) nor ratings.dat (ML-1M)")
    p = _check_file(p)
    line = _first_line(p)
    sep = "::" if "::" in line else "\t"
    n_fields = line.count(sep) + 1
    if n_fields != 4:
        raise DataError(
            f"{p}: expected MovieLens ratings 'user{sep}item{sep}rating{sep}timestamp' "
            f"({_sep_name(sep)}-separated, 4 fields, no header), but the first line {line[:80]!r} "
            f"has {n_fields} field(s); use read_interactions() for other layouts"
        )
    # fast path: a fixed schema, no inference. '::' is read as ':' with empty fillers between.
    names = ["u", "i", "r", "t"] if sep == "\t" else ["u", "_a", "i", "_b", "r", "_c", "t"]
    types = {"u": pl.Int64, "i": pl.Int64, "r": pl.Float64, "t": pl.Float64}
    schema = {n: types.get(n, pl.String) for n in names}
    try:
        raw = pl.read_csv(
            p,
            separator=sep[0],
            has_header=False,
            schema=schema,
            quote_char=None,
            truncate_ragged_lines=False,
        )
    except pl.exceptions.PolarsError as e:
        raise DataError(
            f"{p}: not a MovieLens ratings file (integers user{sep}item{sep}rating{sep}timestamp, "
            f"{_sep_name(sep)}-separated, no header): {str(e).splitlines()[0]}"
        ) from e
    fillers = [n for n in names if n.startswith("_")]
    if fillers and raw.select(pl.col(fillers).is_not_null().any()).row(0) != (False,) * len(
        fillers
    ):
        raise DataError(f"{p}: some lines are not '::'-separated MovieLens ratings")
    mapping = {Columns.user: "u", Columns.item: "i", Columns.rating: "r", Columns.time: "t"}
    return _to_canonical(raw, mapping, "s", p)


def read_session_log(path: str | Path) -> pl.DataFrame:
    """Read a GRU4Rec / session-rec session log: TSV with header ``SessionId ItemId Time``.

    Parameters
    ----------
    path
        The ``.txt``/``.tsv`` file (optionally gzip-compressed). ``Time`` is unix seconds.

    Returns
    -------
    polars.DataFrame
        ``session_id``, ``item_id``, ``timestamp`` in file order.

    Raises
    ------
    DataError
        Missing/unparsable file; :class:`SchemaError` when the header differs.
    """
    return read_interactions(
        path,
        columns={Columns.session: "SessionId", Columns.item: "ItemId", Columns.time: "Time"},
        sep="\t",
    )


__all__ = [
    "ALIASES",
    "CANONICAL_ORDER",
    "MAX_TIMESTAMP",
    "detect_time_unit",
    "read_item_lists",
    "read_interactions",
    "read_movielens",
    "read_session_log",
]
