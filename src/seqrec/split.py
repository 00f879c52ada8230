"""Splits of an event log into train / valid / test, vectorised, never leaking the future.

Every splitter returns a :class:`Split`. Its ``valid`` and ``test`` frames carry whole
sessions (or session prefixes), because a sequential model needs the events before a target
as input, plus a boolean column ``is_target`` marking the events to predict:

* :func:`split_by_time` and :func:`presplit` (session-based protocol, GRU4Rec): every event
  of an evaluation session except its first is a target;
* :func:`leave_last_out` and :func:`split_by_ratio` (per-sequence hold-out): ``test`` is the
  full session with its last events marked; ``valid`` is the session prefix up to and
  including the validation targets; ``train`` is the prefix without any held-out event.

So ``train`` plus the targets of ``valid`` and ``test`` cover each event of the input once
for the hold-out splitters. Within a session, events are ordered by ``timestamp`` with a
stable sort (equal timestamps keep row order). Output frames are sorted by
``(session_id, timestamp, input row)``. ``train`` has no ``is_target`` column.

Examples
--------
>>> import polars as pl
>>> df = pl.DataFrame({"session_id": [1, 1, 1, 1], "item_id": [1, 2, 3, 4],
...                    "timestamp": [0.0, 1.0, 2.0, 3.0]})
>>> s = leave_last_out(df, n=1, valid=True)
>>> s.train["item_id"].to_list(), s.valid["is_target"].to_list(), s.test["is_target"].to_list()
([1, 2], [False, False, True], [False, False, False, True])
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import polars as pl

from seqrec.columns import Columns
from seqrec.exceptions import ConfigError, DataError, SchemaError
from seqrec.preprocess import MinItemSupport, MinSessionLength, Preprocessor

logger = logging.getLogger(__name__)

#: Boolean column of evaluation frames: the events to predict.
IS_TARGET = "is_target"

_DAY = 86_400.0
_ROW = "_seqrec_row"
_POS = "_seqrec_pos"
_LEN = "_seqrec_len"
_REV = "_seqrec_rev"
_HELPERS = [_ROW, _POS, _LEN, _REV]


@dataclass(frozen=True, eq=False)
class Split:
    """The parts of a split and how they were made.

    Attributes
    ----------
    train
        Training events (no ``is_target`` column).
    valid
        Validation sessions with ``is_target``, or None when no validation part was asked.
    test
        Test sessions with ``is_target``.
    protocol
        JSON-serialisable record: ``method``, its parameters, cut-offs, per-part ``counts``
        and what was dropped and why.
    """

    train: pl.DataFrame
    valid: pl.DataFrame | None
    test: pl.DataFrame
    protocol: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> pl.DataFrame:
        """Counts per part: ``part, events, sessions, items, targets`` (targets null for train)."""
        rows = [_part_counts("train", self.train)]
        if self.valid is not None:
            rows.append(_part_counts("valid", self.valid))
        rows.append(_part_counts("test", self.test))
        return pl.DataFrame(
            rows,
            schema={
                "part": pl.String,
                "events": pl.Int64,
                "sessions": pl.Int64,
                "items": pl.Int64,
                "targets": pl.Int64,
            },
            orient="row",
        )


def _part_counts(name: str, df: pl.DataFrame) -> tuple[str, int, int, int, int | None]:
    targets = int(df.get_column(IS_TARGET).sum()) if IS_TARGET in df.columns else None
    return (
        name,
        df.height,
        df.get_column(Columns.session).n_unique(),
        df.get_column(Columns.item).n_unique(),
        targets,
    )


def _counts_dict(split_parts: dict[str, pl.DataFrame | None]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for name, df in split_parts.items():
        if df is None:
            continue
        _, events, sessions, items, targets = _part_counts(name, df)
        entry = {"events": events, "sessions": sessions, "items": items}
        if targets is not None:
            entry["targets"] = targets
        out[name] = entry
    return out


# -------------------------------------------------------------------------- helpers
def _check(df: pl.DataFrame, what: str) -> None:
    missing = [c for c in (Columns.session, Columns.item, Columns.time) if c not in df.columns]
    if missing:
        raise SchemaError(
            f"{what} needs columns {missing}; the frame has {df.columns}. Read data with "
            "seqrec.data.read_interactions to get canonical names"
        )
    if df.height == 0:
        raise DataError(f"{what}: the frame is empty; nothing to split")
    if IS_TARGET in df.columns:
        raise SchemaError(
            f"{what}: the frame already has an {IS_TARGET!r} column (is it a split part?); "
            "split the full event log"
        )


def _ordered(df: pl.DataFrame) -> pl.DataFrame:
    """Stable (session, time) order with position, length and reverse position per session.

    For basket data (a ``basket_id`` column) the unit is the basket: the position, length and
    reverse position count baskets (ordered by their first event's time, then file order),
    so a hold-out takes whole baskets."""
    d = df.with_row_index(_ROW)
    if Columns.basket not in d.columns:
        return (
            d.sort([Columns.session, Columns.time, _ROW])
            .with_columns(
                pl.int_range(pl.len(), dtype=pl.Int64).over(Columns.session).alias(_POS),
                pl.len().over(Columns.session).cast(pl.Int64).alias(_LEN),
            )
            .with_columns((pl.col(_LEN) - 1 - pl.col(_POS)).alias(_REV))
        )
    key = [Columns.session, Columns.basket]
    d = d.with_columns(
        pl.col(Columns.time).min().over(key).alias("_bt"), pl.col(_ROW).min().over(key).alias("_br")
    ).sort([Columns.session, "_bt", "_br", _ROW])
    first = pl.col(_ROW) == pl.col("_br")  # the first row of its basket (rows sorted in it)
    d = d.with_columns((first.cast(pl.Int64).cum_sum().over(Columns.session) - 1).alias(_POS))
    d = d.with_columns((pl.col(_POS).max().over(Columns.session) + 1).alias(_LEN))
    return d.with_columns((pl.col(_LEN) - 1 - pl.col(_POS)).alias(_REV)).drop("_bt", "_br")


def _drop_helpers(df: pl.DataFrame) -> pl.DataFrame:
    return df.drop([c for c in _HELPERS if c in df.columns])


def _sorted_part(df: pl.DataFrame) -> pl.DataFrame:
    return df.sort([Columns.session, Columns.time, _ROW])


def _with_first_not_target(df: pl.DataFrame) -> pl.DataFrame:
    """``is_target`` = every event but the first (in time order) of each session."""
    d = _sorted_part(df)
    return d.with_columns((pl.int_range(pl.len()).over(Columns.session) > 0).alias(IS_TARGET))


def _iso(t: float) -> str:
    return datetime.fromtimestamp(float(t), tz=UTC).isoformat()


def _eval_filter(
    part: pl.DataFrame,
    train_items: pl.Series,
    *,
    train_items_only: bool,
    min_item_support: int,
    min_session_length: int,
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Keep train items only, then clean to a fixed point; report what was dropped."""
    events0 = part.height
    sessions0 = part.get_column(Columns.session).n_unique()
    unknown_events = 0
    unknown_sessions = 0
    if train_items_only:
        known = pl.col(Columns.item).is_in(train_items.implode())
        unknown = part.filter(~known)
        unknown_events = unknown.height
        unknown_sessions = unknown.get_column(Columns.session).n_unique()
        part = part.filter(known)
    events1 = part.height
    part = Preprocessor(
        [MinSessionLength(min_session_length), MinItemSupport(min_item_support)],
        until_stable=True,
    )(part)
    stats = {
        "events_before": events0,
        "sessions_before": sessions0,
        "unknown_item_events": unknown_events,
        "sessions_with_unknown_items": unknown_sessions,
        "cleaning_events": events1 - part.height,
        "events_dropped": events0 - part.height,
        "sessions_dropped": sessions0 - part.get_column(Columns.session).n_unique(),
    }
    return part, stats


def _eval_parts(
    parts: dict[str, pl.DataFrame | None],
    train_items: pl.Series,
    *,
    train_items_only: bool,
    min_item_support: int,
    min_session_length: int,
    empty_message: Callable[[str, dict[str, int]], str],
) -> tuple[dict[str, pl.DataFrame | None], dict[str, dict[str, int]]]:
    """:func:`_eval_filter` on each evaluation part, with targets marked; an empty part is an
    error whose text ``empty_message(name, stats)`` gives."""
    out: dict[str, pl.DataFrame | None] = dict(parts)
    dropped: dict[str, dict[str, int]] = {}
    for name, part in parts.items():
        if part is None:
            continue
        filtered, stats = _eval_filter(
            part,
            train_items,
            train_items_only=train_items_only,
            min_item_support=min_item_support,
            min_session_length=min_session_length,
        )
        dropped[name] = stats
        if filtered.height == 0:
            raise DataError(empty_message(name, stats))
        out[name] = _drop_helpers(_with_first_not_target(filtered))
    return out, dropped


def _eval_params(min_item_support_eval: int, min_session_length_eval: int) -> None:
    if min_item_support_eval < 1 or min_session_length_eval < 1:
        raise ConfigError(
            "min_item_support_eval and min_session_length_eval must be >= 1, got "
            f"{min_item_support_eval} and {min_session_length_eval}"
        )


# ---------------------------------------------------------------------- split_by_time
def split_by_time(
    df: pl.DataFrame,
    *,
    test_days: float,
    valid_days: float = 0.0,
    by: Literal["session_end", "event"] = "session_end",
    at_cutoff: Literal["earlier", "later"] = "earlier",
    train_items_only: bool = True,
    min_item_support_eval: int = 1,
    min_session_length_eval: int = 2,
) -> Split:
    """Temporal split, the GRU4Rec convention: the last days are test, the days before valid.

    With ``t_max`` the last timestamp of ``df``, ``test_cut = t_max - test_days * 86400`` and
    ``valid_cut = test_cut - valid_days * 86400``:

    * ``by="session_end"`` (default): a session goes to test when its last event is after
      ``test_cut``, else to valid when its last event is after ``valid_cut``, else to train.
      Sessions stay whole; every train session ends at or before ``valid_cut``.
    * ``by="event"``: each event goes by its own time (a session crossing a cut-off is cut
      in pieces that keep the same ``session_id``). This is the reference notebook's
      protocol (with ``at_cutoff="later"``).

    ``at_cutoff`` says where a key (session end or event time) exactly *at* a cut-off goes:
    ``"earlier"`` (default): to the part before it (test is ``key > test_cut``, train is
    ``key <= valid_cut``); ``"later"``: to the part after it (train is ``key < valid_cut``,
    test is ``key >= test_cut``), as the reference notebook (``Time < cutoff`` is train) and
    GRU4Rec's official preprocessing (``< tmax - 86400`` is train) do.

    Then valid and test keep only items seen in train (``train_items_only``) and are cleaned
    to a fixed point with ``min_item_support_eval`` / ``min_session_length_eval``. Train is
    left as is. ``is_target`` marks every event but the first of each evaluation session.

    Parameters
    ----------
    df
        Canonical frame with ``session_id``, ``item_id``, ``timestamp``.
    test_days, valid_days
        Lengths of the test and validation windows in days (``valid_days=0``: no valid part).
    by
        ``"session_end"`` or ``"event"``, see above.
    at_cutoff
        ``"earlier"`` or ``"later"``: the part a key equal to a cut-off joins, see above.
    train_items_only
        Drop evaluation events whose item never occurs in train (counted in the protocol).
    min_item_support_eval, min_session_length_eval
        Cleaning of the evaluation parts after the item filter.

    Returns
    -------
    Split
        ``protocol`` holds the cut-offs (unix seconds and ISO), parameters, counts and, per
        evaluation part, the events/sessions dropped for unknown items and by cleaning.

    Raises
    ------
    ConfigError
        Non-positive ``test_days``, negative ``valid_days``, an unknown ``by`` or
        ``at_cutoff``.
    DataError
        A part is empty (the message says which windows to change).
    """
    _check(df, "split_by_time")
    if not test_days > 0 or not valid_days >= 0:
        raise ConfigError(
            f"test_days must be > 0 and valid_days >= 0, got {test_days} and {valid_days}"
        )
    if by not in ("session_end", "event"):
        raise ConfigError(f"by must be 'session_end' or 'event', got {by!r}")
    if at_cutoff not in ("earlier", "later"):
        raise ConfigError(f"at_cutoff must be 'earlier' or 'later', got {at_cutoff!r}")
    _eval_params(min_item_support_eval, min_session_length_eval)

    d = df.with_row_index(_ROW)
    t_max = float(d.get_column(Columns.time).max())  # type: ignore[arg-type]
    test_cut = t_max - test_days * _DAY
    valid_cut = test_cut - valid_days * _DAY
    key = (
        pl.col(Columns.time).max().over(Columns.session)
        if by == "session_end"
        else pl.col(Columns.time)
    )

    def after(cut: float) -> pl.Expr:
        return key > cut if at_cutoff == "earlier" else key >= cut

    d = d.with_columns(
        pl.when(after(test_cut))
        .then(pl.lit("test"))
        .when(after(valid_cut))
        .then(pl.lit("valid"))
        .otherwise(pl.lit("train"))
        .alias("_part")
    )
    train = d.filter(pl.col("_part") == "train").drop("_part")
    test = d.filter(pl.col("_part") == "test").drop("_part")
    valid = d.filter(pl.col("_part") == "valid").drop("_part") if valid_days > 0 else None
    window = f"test_days={test_days}, valid_days={valid_days}"
    if train.height == 0:
        raise DataError(
            f"split_by_time: no {'session ends' if by == 'session_end' else 'event'} before "
            f"{_iso(valid_cut)} ({window}; data spans {_iso(d[Columns.time].min())} to "  # type: ignore[arg-type]
            f"{_iso(t_max)}); the train part would be empty, shorten the windows"
        )
    train_items = train.get_column(Columns.item).unique()
    parts, dropped = _eval_parts(
        {"valid": valid, "test": test},
        train_items,
        train_items_only=train_items_only,
        min_item_support=min_item_support_eval,
        min_session_length=min_session_length_eval,
        empty_message=lambda name, stats: (
            f"split_by_time: the {name} part is empty ({stats['events_before']} events "
            f"before keeping train items and cleaning; {window}); widen its window or relax "
            "min_session_length_eval / min_item_support_eval"
        ),
    )
    train_out = _drop_helpers(_sorted_part(train))
    protocol: dict[str, Any] = {
        "method": "split_by_time",
        "test_days": float(test_days),
        "valid_days": float(valid_days),
        "by": by,
        "at_cutoff": at_cutoff,
        "train_items_only": train_items_only,
        "min_item_support_eval": min_item_support_eval,
        "min_session_length_eval": min_session_length_eval,
        "t_max": t_max,
        "test_cutoff": test_cut,
        "valid_cutoff": valid_cut if valid_days > 0 else None,
        "t_max_iso": _iso(t_max),
        "test_cutoff_iso": _iso(test_cut),
        "valid_cutoff_iso": _iso(valid_cut) if valid_days > 0 else None,
        "targets": "all events of an evaluation session but its first",
        "dropped": dropped,
        "counts": _counts_dict({"train": train_out, **parts}),
    }
    logger.debug("split_by_time: %s", protocol["counts"])
    return Split(train=train_out, valid=parts["valid"], test=parts["test"], protocol=protocol)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- hold-out splits
def _holdout(
    d: pl.DataFrame,
    n_test: pl.Expr,
    n_valid: pl.Expr,
    *,
    with_valid: bool,
) -> tuple[pl.DataFrame, pl.DataFrame | None, pl.DataFrame, pl.DataFrame]:
    """Parts from per-event counts of test/valid targets of its session (vectorised)."""
    d = d.with_columns(n_test.alias("_n_test"), n_valid.alias("_n_valid"))
    held = pl.col("_n_test") + pl.col("_n_valid")
    eligible = pl.col(_LEN) - held >= 1
    train = d.filter(~eligible | (pl.col(_REV) >= held))
    test = d.filter(eligible).with_columns((pl.col(_REV) < pl.col("_n_test")).alias(IS_TARGET))
    valid = None
    if with_valid:
        valid = d.filter(eligible & (pl.col(_REV) >= pl.col("_n_test"))).with_columns(
            (pl.col(_REV) < held).alias(IS_TARGET)
        )
    too_short = d.filter(~eligible)
    tmp = ["_n_test", "_n_valid"]
    clean = [_drop_helpers(x.drop(tmp)) if x is not None else None for x in (train, valid, test)]
    return clean[0], clean[1], clean[2], too_short  # type: ignore[return-value]


def _holdout_protocol(
    method: str,
    params: dict[str, Any],
    train: pl.DataFrame,
    valid: pl.DataFrame | None,
    test: pl.DataFrame,
    too_short: pl.DataFrame,
    n_sessions: int,
) -> dict[str, Any]:
    if test.height == 0:
        raise DataError(
            f"{method}: no session is long enough to hold out events ({params}); every session "
            "stayed in train. Use fewer held-out events or longer sessions"
        )
    train_items = train.get_column(Columns.item).unique().implode()
    unknown: dict[str, int] = {}
    for name, part in (("valid", valid), ("test", test)):
        if part is not None:
            unknown[name] = part.filter(
                pl.col(IS_TARGET) & ~pl.col(Columns.item).is_in(train_items)
            ).height
    return {
        "method": method,
        **params,
        "order": "timestamp, stable (ties keep input order)",
        "sessions": n_sessions,
        "sessions_held_out": test.get_column(Columns.session).n_unique(),
        "sessions_too_short": too_short.get_column(Columns.session).n_unique(),
        "events_too_short": too_short.height,
        "targets_with_unknown_item": unknown,
        "counts": _counts_dict({"train": train, "valid": valid, "test": test}),
    }


def leave_last_out(df: pl.DataFrame, *, n: int = 1, valid: bool = True) -> Split:
    """Hold out the last ``n`` events of each session for test (and the ``n`` before for valid).

    For basket data (a ``basket_id`` column: each session is a user's sequence of baskets)
    the unit is the basket: the last ``n`` baskets are the test targets, the ``n`` before
    them the validation targets, and a user needs ``n * (2 if valid else 1) + 1`` baskets.

    Sessions are ordered by time with a stable sort (equal timestamps keep input order).
    Sessions shorter than ``n * (2 if valid else 1) + 1`` are too short to hold anything out
    and stay entirely in train (counted in the protocol).

    Parameters
    ----------
    df
        Canonical frame with ``session_id``, ``item_id``, ``timestamp``.
    n
        Events held out per session and part (>= 1).
    valid
        Also hold out a validation part.

    Returns
    -------
    Split
        ``test``: the full eligible sessions, ``is_target`` on their last ``n`` events;
        ``valid``: the prefixes without the test events, ``is_target`` on their last ``n``;
        ``train``: every event that is no target (short sessions whole, prefixes of the
        others). Targets whose item is absent from train are counted, not dropped.

    Raises
    ------
    ConfigError
        ``n < 1``.
    DataError
        No session is long enough.
    """
    _check(df, "leave_last_out")
    if n < 1:
        raise ConfigError(f"n must be >= 1, got {n}")
    d = _ordered(df)
    train, valid_df, test, too_short = _holdout(
        d, pl.lit(n, pl.Int64), pl.lit(n if valid else 0, pl.Int64), with_valid=valid
    )
    unit = "basket" if Columns.basket in df.columns else "event"
    protocol = _holdout_protocol(
        "leave_last_out",
        {
            "n": n,
            "unit": unit,
            "valid": valid,
            f"min_session_length{'_baskets' if unit == 'basket' else ''}": n * (2 if valid else 1)
            + 1,
        },
        train,
        valid_df,
        test,
        too_short,
        d.get_column(Columns.session).n_unique(),
    )
    return Split(train=train, valid=valid_df, test=test, protocol=protocol)


def split_by_ratio(df: pl.DataFrame, *, test_ratio: float = 0.2, valid_ratio: float = 0.0) -> Split:
    """Hold out the last fraction of each session's events (time order, stable).

    For a session of length ``L``: ``n_test = max(1, floor(L * test_ratio))`` and, when
    ``valid_ratio > 0``, ``n_valid = max(1, floor(L * valid_ratio))`` events before them.
    Sessions that would keep no training event (``L <= n_test + n_valid``) stay in train.

    Parameters
    ----------
    df
        Canonical frame with ``session_id``, ``item_id``, ``timestamp``.
    test_ratio
        Fraction of each session held out for test, in (0, 1).
    valid_ratio
        Fraction held out for validation, in [0, 1); ``test_ratio + valid_ratio < 1``.

    Returns
    -------
    Split
        Same ``is_target`` convention as :func:`leave_last_out`; ``valid`` is None when
        ``valid_ratio == 0``.

    Raises
    ------
    ConfigError
        Ratios out of range.
    DataError
        No session is long enough.
    """
    _check(df, "split_by_ratio")
    if not (0 < test_ratio < 1 and 0 <= valid_ratio < 1 and test_ratio + valid_ratio < 1):
        raise ConfigError(
            "need 0 < test_ratio < 1, 0 <= valid_ratio < 1 and test_ratio + valid_ratio < 1, got "
            f"test_ratio={test_ratio}, valid_ratio={valid_ratio}"
        )
    d = _ordered(df)
    eps = 1e-9  # so that 0.29 * 100 floors to 29, not 28

    def share(r: float) -> pl.Expr:
        return pl.max_horizontal(
            (pl.col(_LEN) * r + eps).floor().cast(pl.Int64), pl.lit(1, pl.Int64)
        )

    with_valid = valid_ratio > 0
    train, valid_df, test, too_short = _holdout(
        d,
        share(test_ratio),
        share(valid_ratio) if with_valid else pl.lit(0, pl.Int64),
        with_valid=with_valid,
    )
    protocol = _holdout_protocol(
        "split_by_ratio",
        {"test_ratio": test_ratio, "valid_ratio": valid_ratio, "rounding": "floor, at least 1"},
        train,
        valid_df,
        test,
        too_short,
        d.get_column(Columns.session).n_unique(),
    )
    return Split(train=train, valid=valid_df, test=test, protocol=protocol)


# ---------------------------------------------------------------------------- presplit
def presplit(
    df: pl.DataFrame,
    column: str = "split",
    *,
    train_items_only: bool = True,
    min_item_support_eval: int = 1,
    min_session_length_eval: int = 2,
) -> Split:
    """A :class:`Split` from a pre-split dataset's ``column`` (``"train"``/``"valid"``/``"test"``).

    For datasets shipped already split, such as ``yoochoose-100k`` from
    :func:`seqrec.datasets.load_dataset`. The evaluation parts get the same treatment as in
    :func:`split_by_time`: train items only, cleaning to a fixed point, ``is_target`` on every
    event but the first of each session. ``column`` is dropped from the parts.

    Parameters
    ----------
    df
        Canonical frame with the split column.
    column
        Name of the column holding the part of each event.
    train_items_only, min_item_support_eval, min_session_length_eval
        As in :func:`split_by_time`.

    Raises
    ------
    SchemaError
        ``column`` missing or holding other values than train/valid/test.
    DataError
        No train or no test events.
    """
    if column not in df.columns:
        raise SchemaError(
            f"presplit: no column {column!r} in {df.columns}; pass column= naming the column "
            "that says train/valid/test"
        )
    _check(df.drop(column), "presplit")
    _eval_params(min_item_support_eval, min_session_length_eval)
    values = set(df.get_column(column).cast(pl.String).unique().to_list())
    bad = values - {"train", "valid", "test"}
    if bad:
        raise SchemaError(
            f"presplit: column {column!r} has values {sorted(map(str, bad))}; expected only "
            "'train', 'valid', 'test'"
        )
    if not {"train", "test"} <= values:
        raise DataError(
            f"presplit: column {column!r} needs both 'train' and 'test' rows, has {sorted(values)}"
        )
    d = df.with_row_index(_ROW)
    label = pl.col(column).cast(pl.String)
    train = d.filter(label == "train").drop(column)
    train_items = train.get_column(Columns.item).unique()
    parts, dropped = _eval_parts(
        {
            name: d.filter(label == name).drop(column) if name in values else None
            for name in ("valid", "test")
        },
        train_items,
        train_items_only=train_items_only,
        min_item_support=min_item_support_eval,
        min_session_length=min_session_length_eval,
        empty_message=lambda name, _stats: (
            f"presplit: the {name} part is empty after keeping train items and cleaning"
        ),
    )
    train_out = _drop_helpers(_sorted_part(train))
    protocol: dict[str, Any] = {
        "method": "presplit",
        "column": column,
        "train_items_only": train_items_only,
        "min_item_support_eval": min_item_support_eval,
        "min_session_length_eval": min_session_length_eval,
        "targets": "all events of an evaluation session but its first",
        "dropped": dropped,
        "counts": _counts_dict({"train": train_out, **parts}),
    }
    return Split(train=train_out, valid=parts["valid"], test=parts["test"], protocol=protocol)  # type: ignore[arg-type]


__all__ = [
    "IS_TARGET",
    "Split",
    "leave_last_out",
    "presplit",
    "split_by_ratio",
    "split_by_time",
]
