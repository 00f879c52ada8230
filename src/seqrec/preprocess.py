"""Preprocessing: filters and the fixed-point cleaning of session logs, vectorised with polars.

Each step is a small frozen, validated config (pydantic, unknown keys are errors) that is also
a function ``step(df) -> df`` on a canonical frame (see :class:`~seqrec.columns.Columns`).
Steps never reorder rows: the output keeps the input's row order, so file order still breaks
timestamp ties downstream. :class:`Preprocessor` chains steps, optionally to a fixed point;
:func:`clean` is the standard session-based recipe (GRU4Rec / SR-GNN): drop short sessions
and rare items until nothing changes.

Examples
--------
>>> import polars as pl
>>> df = pl.DataFrame({"session_id": [1, 1, 2], "item_id": [7, 8, 7], "timestamp": [0.0, 1.0, 2.0]})
>>> MinSessionLength(2)(df).height
2
>>> Preprocessor([MinSessionLength(2), MinItemSupport(2)], until_stable=True)(df).height
0
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import polars as pl
from pydantic import ConfigDict, Field, ValidationError, field_validator

from seqrec._config import ConfigModel
from seqrec.columns import Columns
from seqrec.exceptions import ConfigError, DataError, SchemaError

logger = logging.getLogger(__name__)

_ROW = "_seqrec_row"


def _require(df: pl.DataFrame, cols: Iterable[str], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise SchemaError(
            f"{what} needs column(s) {missing}; the frame has {df.columns}. Read data with "
            "seqrec.data.read_interactions (canonical names) or rename the columns"
        )


def _time_sort_keys(df: pl.DataFrame, key: str) -> list[str]:
    return [key, Columns.time, _ROW] if Columns.time in df.columns else [key, _ROW]


# ----------------------------------------------------------------------------- steps
class Step(ConfigModel):
    """Base class of preprocessing steps: a frozen config that is callable on a frame.

    Fields may be given positionally in declaration order (``MinSessionLength(2)``) or by
    name (``MinSessionLength(n=2)``). Invalid values raise
    :class:`~seqrec.exceptions.ConfigError`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: ClassVar[str] = "step"

    def __init__(self, *args: Any, **data: Any) -> None:
        fields = list(type(self).model_fields)
        if len(args) > len(fields):
            raise ConfigError(
                f"{type(self).__name__} takes at most {len(fields)} positional argument(s) "
                f"({', '.join(fields)}), got {len(args)}"
            )
        for field, value in zip(fields, args, strict=False):
            if field in data:
                raise ConfigError(f"{type(self).__name__}: {field!r} given twice")
            data[field] = value
        try:
            super().__init__(**data)
        except ValidationError as e:
            raise ConfigError(f"invalid {type(self).__name__}: {e}") from e

    def __call__(self, df: pl.DataFrame) -> pl.DataFrame:  # pragma: no cover - abstract
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description, ``{"step": name, **fields}`` (inverse of :func:`build_steps`)."""
        return {"step": self.name, **self.model_dump(mode="json")}


class MinSessionLength(Step):
    """Keep sessions with at least ``n`` events.

    Parameters
    ----------
    n
        Minimum number of events per session (>= 1).
    """

    name: ClassVar[str] = "min_session_length"
    n: int = Field(ge=1)

    def __call__(self, df: pl.DataFrame) -> pl.DataFrame:
        _require(df, [Columns.session], "MinSessionLength")
        return df.filter(pl.len().over(Columns.session) >= self.n)


class MinItemSupport(Step):
    """Keep events whose item occurs at least ``n`` times in the frame.

    Parameters
    ----------
    n
        Minimum number of events per item (>= 1).
    """

    name: ClassVar[str] = "min_item_support"
    n: int = Field(ge=1)

    def __call__(self, df: pl.DataFrame) -> pl.DataFrame:
        _require(df, [Columns.item], "MinItemSupport")
        return df.filter(pl.len().over(Columns.item) >= self.n)


class MinRating(Step):
    """Keep events with ``rating >= threshold`` (e.g. 4.0 to treat high ratings as positives).

    Parameters
    ----------
    threshold
        Smallest rating kept.
    """

    name: ClassVar[str] = "min_rating"
    threshold: float

    def __call__(self, df: pl.DataFrame) -> pl.DataFrame:
        _require(df, [Columns.rating], "MinRating")
        return df.filter(pl.col(Columns.rating) >= self.threshold)


class DropConsecutiveRepeats(Step):
    """Drop an event when the previous event of its session (in time order) has the same item.

    Time order is a stable sort on ``timestamp``: equal timestamps keep row order. ``A A B A``
    becomes ``A B A``.
    """

    name: ClassVar[str] = "drop_consecutive_repeats"

    def __call__(self, df: pl.DataFrame) -> pl.DataFrame:
        _require(df, [Columns.session, Columns.item], "DropConsecutiveRepeats")
        d = df.with_row_index(_ROW).sort(_time_sort_keys(df, Columns.session))
        repeat = (pl.col(Columns.item) == pl.col(Columns.item).shift(1)) & (
            pl.col(Columns.session) == pl.col(Columns.session).shift(1)
        )
        return d.filter(~repeat.fill_null(False)).sort(_ROW).drop(_ROW)


class Sessionize(Step):
    """Split each ``by`` group (user) into sessions at time gaps larger than ``gap_seconds``.

    Events of a user are ordered by time (stable); a new session starts at the user's first
    event and after every gap ``> gap_seconds``. ``session_id`` becomes a dense ``Int64`` id
    (``0..n_sessions-1``, numbered by user then time); the ``by`` column is kept.

    Parameters
    ----------
    gap_seconds
        Largest gap (seconds) inside one session; > 0. 1800 (30 minutes) is common.
    by
        The column grouping events before splitting: ``user_id`` (default), or ``session_id``
        to split existing sessions at long gaps.
    """

    name: ClassVar[str] = "sessionize"
    gap_seconds: float = Field(gt=0)
    by: str = Columns.user

    def __call__(self, df: pl.DataFrame) -> pl.DataFrame:
        _require(df, [self.by, Columns.time], f"Sessionize(by={self.by!r})")
        d = df.with_row_index(_ROW).sort([self.by, Columns.time, _ROW])
        new = (
            (pl.col(self.by) != pl.col(self.by).shift(1))
            | ((pl.col(Columns.time) - pl.col(Columns.time).shift(1)) > self.gap_seconds)
        ).fill_null(True)
        d = d.with_columns((new.cast(pl.Int64).cum_sum() - 1).alias(Columns.session))
        d = d.sort(_ROW).drop(_ROW)
        order = df.columns if Columns.session in df.columns else [Columns.session, *df.columns]
        return d.select(order)


class KeepItems(Step):
    """Keep only events whose item is in ``items`` (e.g. the training items).

    Parameters
    ----------
    items
        The item ids to keep (any iterable: list, set, numpy array, polars Series).
    """

    name: ClassVar[str] = "keep_items"
    items: frozenset[int | str]

    @field_validator("items", mode="before")
    @classmethod
    def _to_python(cls, v: Any) -> Any:
        if hasattr(v, "to_list"):  # polars
            return frozenset(v.to_list())
        if hasattr(v, "tolist"):  # numpy
            return frozenset(v.tolist())
        return v

    def __call__(self, df: pl.DataFrame) -> pl.DataFrame:
        _require(df, [Columns.item], "KeepItems")
        dtype = df.schema[Columns.item]
        kinds = {type(x) for x in self.items}
        if dtype.is_integer() and str in kinds or dtype == pl.String and int in kinds:
            raise SchemaError(
                f"KeepItems: item_id is {dtype} but the kept items include "
                f"{'strings' if dtype.is_integer() else 'integers'}; use ids of the same type"
            )
        keep = pl.Series("keep", list(self.items), dtype=dtype)
        return df.filter(pl.col(Columns.item).is_in(keep.implode()))


#: Explicit registry of step types by name (for experiment files).
STEPS: dict[str, type[Step]] = {
    cls.name: cls
    for cls in (
        MinSessionLength,
        MinItemSupport,
        MinRating,
        DropConsecutiveRepeats,
        Sessionize,
        KeepItems,
    )
}


def build_steps(specs: Sequence[Mapping[str, Any]]) -> list[Step]:
    """Steps from JSON-like dicts ``{"step": name, **fields}`` (see :data:`STEPS`).

    Raises
    ------
    ConfigError
        Unknown step name or invalid fields.
    """
    steps: list[Step] = []
    for spec in specs:
        kwargs = dict(spec)
        name = kwargs.pop("step", None)
        if name not in STEPS:
            raise ConfigError(f"unknown preprocessing step {name!r}; known steps: {sorted(STEPS)}")
        steps.append(STEPS[name](**kwargs))
    return steps


# ----------------------------------------------------------------------- preprocessor
def event_counts(df: pl.DataFrame) -> dict[str, int]:
    """Events, distinct sessions and distinct items of a canonical frame."""
    return {
        "events": df.height,
        "sessions": df.get_column(Columns.session).n_unique()
        if Columns.session in df.columns
        else 0,
        "items": df.get_column(Columns.item).n_unique() if Columns.item in df.columns else 0,
    }


class Preprocessor:
    """Apply steps in order, optionally repeating the whole list until a fixed point.

    Parameters
    ----------
    steps
        Callables ``df -> df`` (normally :class:`Step` instances), applied in order.
    until_stable
        Repeat the list until a round leaves the number of rows unchanged (e.g. dropping
        rare items can make sessions too short, and vice versa).
    max_rounds
        Safety bound on the rounds; reaching it logs a warning (``converged_`` is False).

    Attributes
    ----------
    history_ : list of dict
        Counts after each round ``{"round", "events", "sessions", "items"}``; round 0 is the
        input. Set by each call.
    converged_ : bool
        Whether the last call reached a fixed point (always True without ``until_stable``).

    Examples
    --------
    >>> import polars as pl
    >>> df = pl.DataFrame({"session_id": [1, 1, 2, 2, 3], "item_id": [1, 2, 1, 3, 1],
    ...                    "timestamp": [0.0, 1.0, 0.0, 1.0, 0.0]})
    >>> p = Preprocessor([MinSessionLength(2), MinItemSupport(2)], until_stable=True)
    >>> p(df).height, [h["events"] for h in p.history_]
    (0, [5, 2, 0, 0])
    """

    def __init__(
        self, steps: Sequence[Any], *, until_stable: bool = False, max_rounds: int = 100
    ) -> None:
        self.steps = steps
        self.until_stable = until_stable
        self.max_rounds = max_rounds

    def __call__(self, df: pl.DataFrame) -> pl.DataFrame:
        """Apply the steps to ``df`` and return the result (``history_`` records the counts)."""
        if self.max_rounds < 1:
            raise ConfigError(f"max_rounds must be >= 1, got {self.max_rounds}")
        for step in self.steps:
            if not callable(step):
                raise ConfigError(f"preprocessing steps must be callables df -> df, got {step!r}")
        history = [{"round": 0, **event_counts(df)}]
        rounds = self.max_rounds if self.until_stable else 1
        converged = not self.until_stable
        for r in range(1, rounds + 1):
            before = df.height
            for step in self.steps:
                df = step(df)
            history.append({"round": r, **event_counts(df)})
            if df.height == before and self.until_stable:
                converged = True
                break
        if not converged:
            logger.warning(
                "preprocessing did not reach a fixed point in %d rounds", self.max_rounds
            )
        self.history_ = history
        self.converged_ = converged
        return df

    def __repr__(self) -> str:
        return (
            f"Preprocessor({list(self.steps)!r}, until_stable={self.until_stable}, "
            f"max_rounds={self.max_rounds})"
        )


def clean(
    df: pl.DataFrame, *, min_session_length: int = 2, min_item_support: int = 5
) -> pl.DataFrame:
    """The standard session cleaning, to a fixed point.

    Drop sessions shorter than ``min_session_length`` and items with fewer than
    ``min_item_support`` events, and repeat until nothing changes (dropping sessions can push
    an item below its support, and dropping items can shorten sessions). The result is the
    largest sub-log satisfying both conditions; row order is kept.

    Parameters
    ----------
    df
        A canonical frame (``session_id``, ``item_id``, ...).
    min_session_length
        Minimum events per session.
    min_item_support
        Minimum events per item.

    Returns
    -------
    polars.DataFrame
        The cleaned frame.

    Raises
    ------
    DataError
        When the filters remove every event.
    """
    pre = Preprocessor(
        [MinSessionLength(min_session_length), MinItemSupport(min_item_support)],
        until_stable=True,
    )
    out = pre(df)
    logger.info(
        "clean: %d -> %d events in %d round(s)", df.height, out.height, len(pre.history_) - 1
    )
    if out.height == 0:
        raise DataError(
            f"cleaning removed every event (min_session_length={min_session_length}, "
            f"min_item_support={min_item_support}; input had {df.height} events); lower the "
            "filters"
        )
    return out


# --------------------------------------------------------------------------- describe
def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(float(t), tz=UTC).date().isoformat()


def _num(x: Any) -> float | int | None:
    if x is None:
        return None
    f = float(x)
    return int(f) if f.is_integer() else round(f, 4)


def describe(df: pl.DataFrame) -> dict[str, Any]:
    """Summary statistics of a canonical frame (for ``seqrec stats``), JSON-ready.

    Parameters
    ----------
    df
        A canonical frame.

    Returns
    -------
    dict
        ``events``, ``sessions``, ``items``, ``users`` (when present), ``time_range``
        (``{"first", "last"}`` ISO dates, UTC, when timestamps exist), ``session_length`` and
        ``item_support`` (``min``/``median``/``mean``/``max``), ``rating_distribution``
        (``{rating: count}`` as strings/ints, when ratings exist).
    """
    _require(df, [Columns.session, Columns.item], "describe")
    out: dict[str, Any] = {
        "events": df.height,
        "sessions": df.get_column(Columns.session).n_unique(),
        "items": df.get_column(Columns.item).n_unique(),
    }
    if Columns.user in df.columns:
        out["users"] = df.get_column(Columns.user).n_unique()
    if Columns.time in df.columns:
        t = df.get_column(Columns.time)
        out["time_range"] = {"first": _iso(t.min()), "last": _iso(t.max())}  # type: ignore[arg-type]

    def stats(key: str) -> dict[str, float | int | None]:
        n = df.group_by(key).len().get_column("len")
        return {
            "min": _num(n.min()),
            "median": _num(n.median()),
            "mean": _num(n.mean()),
            "max": _num(n.max()),
        }  # type: ignore[arg-type]

    out["session_length"] = stats(Columns.session)
    if Columns.basket in df.columns:  # next-basket data: users' baskets and basket sizes
        key = [Columns.session, Columns.basket]
        out["baskets"] = df.select(pl.struct(key).n_unique()).item()
        per_user = df.group_by(Columns.session).agg(pl.col(Columns.basket).n_unique().alias("n"))
        n = per_user.get_column("n")
        out["baskets_per_user"] = {
            "min": _num(n.min()),
            "median": _num(n.median()),
            "mean": _num(n.mean()),
            "max": _num(n.max()),
        }  # type: ignore[dict-item]
        size = df.group_by(key).len().get_column("len")
        out["basket_size"] = {
            "min": _num(size.min()),
            "median": _num(size.median()),
            "mean": _num(size.mean()),
            "max": _num(size.max()),
        }  # type: ignore[dict-item]
        if "time_range" in out:
            out["time_range"]["note"] = "basket data: a relative clock (see the reader)"
    out["item_support"] = stats(Columns.item)
    if Columns.rating in df.columns:
        dist = df.group_by(Columns.rating).len().sort(Columns.rating)
        out["rating_distribution"] = {
            f"{r:g}": int(n) for r, n in dist.iter_rows() if r is not None
        }
    return out


__all__ = [
    "STEPS",
    "DropConsecutiveRepeats",
    "KeepItems",
    "MinItemSupport",
    "MinRating",
    "MinSessionLength",
    "Preprocessor",
    "Sessionize",
    "Step",
    "build_steps",
    "clean",
    "describe",
]
