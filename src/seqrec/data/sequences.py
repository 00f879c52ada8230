"""SequenceData: a ragged array of sequences that everything downstream works on."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from seqrec.columns import BASKET_CONTEXT, Columns
from seqrec.data.vocab import UnknownPolicy, Vocabulary
from seqrec.exceptions import DataError, SchemaError

logger = logging.getLogger(__name__)


def ragged_take(offsets: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions (into the flat array) and new offsets of the sequences ``idx``, vectorised."""
    idx = np.asarray(idx, dtype=np.int64)
    starts = offsets[idx]
    lengths = offsets[idx + 1] - starts
    new_offsets = np.zeros(len(idx) + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_offsets[1:])
    total = int(new_offsets[-1])
    # position j of the output belongs to sequence k: starts[k] + (j - new_offsets[k])
    seq_of = np.repeat(np.arange(len(idx)), lengths)
    pos = starts[seq_of] + (np.arange(total) - new_offsets[:-1][seq_of])
    return pos, new_offsets


@dataclass(frozen=True, eq=False)
class SequenceData:
    """Sequences of dense item indices stored as one flat array plus offsets.

    Sequence ``i`` is ``items[offsets[i]:offsets[i+1]]``, in time order. Item indices
    come from a :class:`~seqrec.data.Vocabulary` (``1..n_items-1``; 0 is padding and never
    stored). Optional per-event arrays (timestamps, ratings) share the flat layout.

    Attributes
    ----------
    items : int32 (n_events,)
    offsets : int64 (n_sequences + 1,)
    n_items : size of the embedding table (vocabulary size + 1 for padding)
    session_ids : external sequence ids (n_sequences,) or None
    timestamps, ratings : float64 (n_events,) or None
    """

    items: np.ndarray
    offsets: np.ndarray
    n_items: int
    session_ids: np.ndarray | None = None
    timestamps: np.ndarray | None = None
    ratings: np.ndarray | None = None
    user_ids: np.ndarray | None = field(default=None)
    is_target: np.ndarray | None = field(default=None)
    """bool (n_events,): events to predict in evaluation (None: every event after the first;
    for basket data: every basket after the first)."""
    basket_offsets: np.ndarray | None = field(default=None)
    """int64 (n_baskets + 1,): basket ``b`` is ``items[basket_offsets[b]:basket_offsets[b+1]]``
    (next-basket data; None for event sequences). Every sequence boundary is a basket
    boundary, baskets are non-empty, and the items of a basket are distinct."""
    basket_context: np.ndarray | None = field(default=None)
    """float32 (n_baskets, C): per-basket context (e.g. day of week, hour, days since the
    prior order), names in ``context_names``."""
    context_names: tuple[str, ...] = ()
    basket_dropped: np.ndarray | None = field(default=None)
    """int64 (n_baskets,): items of each basket dropped as unknown to the vocabulary (an
    evaluation counts the dropped items of a target basket as misses)."""

    def __post_init__(self) -> None:
        if self.offsets.ndim != 1 or len(self.offsets) < 1 or self.offsets[0] != 0:
            raise DataError("offsets must be a 1-D array starting at 0")
        if self.offsets[-1] != len(self.items):
            raise DataError("offsets[-1] must equal the number of events")
        if len(self.offsets) > 1 and np.any(np.diff(self.offsets) < 0):
            raise DataError("offsets must be non-decreasing")
        bo = self.basket_offsets
        if bo is not None:
            if bo.ndim != 1 or len(bo) < 1 or bo[0] != 0 or bo[-1] != len(self.items):
                raise DataError("basket_offsets must start at 0 and end at the number of events")
            if len(bo) > 1 and np.any(np.diff(bo) <= 0):
                raise DataError("baskets must be non-empty (basket_offsets strictly increasing)")
            if not np.isin(self.offsets, bo).all():
                raise DataError("every sequence boundary must be a basket boundary")
            ctx = self.basket_context
            if ctx is not None and (ctx.ndim != 2 or len(ctx) != len(bo) - 1):
                raise DataError("basket_context must be (n_baskets, C)")

    # -------------------------------------------------------------- builders
    @classmethod
    def from_frame(
        cls,
        df: pl.DataFrame,
        vocab: Vocabulary,
        *,
        group_by: str = Columns.session,
        unknown: UnknownPolicy = "drop",
        min_length: int = 1,
    ) -> SequenceData:
        """Group a canonical event frame into sequences.

        Events are sorted by (sequence, time) with a stable sort, so equal timestamps keep
        file order. Sequences are ordered by their first event time (GRU4Rec's session order).

        Parameters
        ----------
        unknown
            What to do with items not in ``vocab``: ``"drop"`` the events (the count is
            logged), or ``"error"``.
        min_length
            Sequences shorter than this after dropping unknown items are left out.
        """
        missing = {group_by, Columns.item} - set(df.columns)
        if missing:
            raise SchemaError(f"frame lacks column(s) {sorted(missing)}; have {df.columns}")
        has_time = Columns.time in df.columns
        idx = vocab.lookup(df.get_column(Columns.item).to_numpy())
        n_unknown = int((idx == 0).sum())
        if n_unknown and unknown == "error":
            vocab.encode(df.get_column(Columns.item).to_numpy(), unknown="error")
        frame = df.with_columns(
            pl.Series("_idx", idx.astype(np.int32)), pl.int_range(pl.len()).alias("_row")
        )
        baskets = Columns.basket in frame.columns
        if baskets:  # unknown items per basket, counted before they are dropped
            frame = frame.with_columns(
                (pl.col("_idx") == 0).sum().over([group_by, Columns.basket]).alias("_unk")
            )
        if n_unknown:
            logger.info("dropped %d event(s) with items not in the vocabulary", n_unknown)
            frame = frame.filter(pl.col("_idx") > 0)
        if baskets:  # a basket's events stay together, baskets in time order, items distinct
            frame = frame.unique(
                [group_by, Columns.basket, "_idx"], keep="first", maintain_order=True
            )
            key = [group_by, Columns.basket]
            t = pl.col(Columns.time) if has_time else pl.col("_row")
            frame = frame.with_columns(
                t.min().over(key).alias("_bt"), pl.col("_row").min().over(key).alias("_br")
            )
            sort_cols = [group_by, "_bt", "_br", "_row"]
        elif has_time:
            sort_cols = [group_by, Columns.time, "_row"]
        else:
            sort_cols = [group_by, "_row"]
        frame = frame.sort(sort_cols)
        keys = frame.get_column(group_by)
        lengths_frame = frame.group_by(group_by, maintain_order=True).agg(
            pl.len().alias("_n"),
            (pl.col(Columns.time).min() if has_time else pl.col("_row").min()).alias("_t0"),
        )
        if min_length > 1:
            keep = lengths_frame.filter(pl.col("_n") >= min_length).get_column(group_by)
            frame = frame.filter(pl.col(group_by).is_in(keep.implode()))
            lengths_frame = lengths_frame.filter(pl.col("_n") >= min_length)
            keys = frame.get_column(group_by)
        del keys
        lengths = lengths_frame.get_column("_n").to_numpy().astype(np.int64)
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        # reorder sequences by start time (stable), vectorised
        order = np.argsort(lengths_frame.get_column("_t0").to_numpy(), kind="stable")
        pos, offsets = ragged_take(offsets, order)

        def col(name: str, dtype: type) -> np.ndarray | None:
            if name not in frame.columns:
                return None
            return frame.get_column(name).to_numpy().astype(dtype)[pos]

        sessions = lengths_frame.get_column(group_by).to_numpy()[order]
        users = None
        if Columns.user in frame.columns and group_by != Columns.user:
            first = offsets[:-1]
            users = frame.get_column(Columns.user).to_numpy()[pos][first]
        basket_kw: dict = {}
        if baskets:
            bid = frame.get_column("_br").to_numpy()[pos]  # first row of the basket: unique
            starts = np.ones(len(pos), dtype=bool)
            starts[1:] = bid[1:] != bid[:-1]
            bo = np.append(np.flatnonzero(starts), len(pos)).astype(np.int64)
            names = tuple(c for c in BASKET_CONTEXT if c in frame.columns)
            ctx = None
            if names:
                ctx = frame.select(names).to_numpy().astype(np.float32)[pos][bo[:-1]]
                if np.isnan(ctx).any():
                    raise DataError(
                        f"basket context {names} has missing values; fill them (e.g. 0 for "
                        "days_since_prior_order of a first order) or drop the columns"
                    )
            dropped = frame.get_column("_unk").to_numpy()[pos][bo[:-1]].astype(np.int64)
            basket_kw = {
                "basket_offsets": bo,
                "basket_context": ctx,
                "context_names": names,
                "basket_dropped": dropped if dropped.any() else None,
            }
        return cls(
            items=frame.get_column("_idx").to_numpy()[pos].astype(np.int32),
            offsets=offsets,
            n_items=vocab.n_items,
            session_ids=sessions,
            timestamps=col(Columns.time, np.float64),
            ratings=col(Columns.rating, np.float64),
            user_ids=users,
            is_target=col("is_target", bool),
            **basket_kw,
        )

    @classmethod
    def from_baskets(
        cls,
        users: list[list[list[int]]],
        n_items: int | None = None,
        *,
        context: np.ndarray | None = None,
        context_names: tuple[str, ...] = (),
    ) -> SequenceData:
        """Build basket data from Python lists: ``users[u]`` is a list of baskets (oldest
        first), each a list of dense indices (duplicates inside a basket are dropped, first
        kept). Small data, tests, queries."""
        baskets = [list(dict.fromkeys(b)) for u in users for b in u]
        if any(len(b) == 0 for b in baskets):
            raise DataError("a basket is empty; every basket needs at least one item")
        flat = cls.from_lists(baskets, n_items)
        n_baskets = np.fromiter((len(u) for u in users), dtype=np.int64, count=len(users))
        seq_b = np.zeros(len(users) + 1, dtype=np.int64)
        np.cumsum(n_baskets, out=seq_b[1:])
        return cls(
            items=flat.items,
            offsets=flat.offsets[seq_b],
            n_items=flat.n_items,
            basket_offsets=flat.offsets,
            basket_context=None if context is None else np.asarray(context, dtype=np.float32),
            context_names=tuple(context_names),
        )

    @classmethod
    def from_lists(cls, sequences: list[list[int]], n_items: int | None = None) -> SequenceData:
        """Build from Python lists of dense indices (small data, tests, queries)."""
        lengths = np.array([len(s) for s in sequences], dtype=np.int64)
        offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        items = np.fromiter(
            (i for s in sequences for i in s), dtype=np.int32, count=int(offsets[-1])
        )
        if n_items is None:
            n_items = int(items.max()) + 1 if len(items) else 1
        return cls(items=items, offsets=offsets, n_items=n_items)

    # ------------------------------------------------------------- accessors
    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_events(self) -> int:
        return len(self.items)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.items[self.offsets[i] : self.offsets[i + 1]]

    def select(self, idx: np.ndarray) -> SequenceData:
        """The sequences ``idx`` (any order, repeats allowed), as a new SequenceData."""
        idx = np.asarray(idx, dtype=np.int64)
        pos, offsets = ragged_take(self.offsets, idx)

        def take(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[pos]

        basket_kw: dict = {}
        if self.basket_offsets is not None:
            first = self.basket_of_event()[pos]  # basket of each kept event
            starts = np.ones(len(pos), dtype=bool)
            starts[1:] = first[1:] != first[:-1]
            starts[offsets[:-1][np.diff(offsets) > 0]] = True  # a repeated sequence restarts
            bo = np.append(np.flatnonzero(starts), len(pos)).astype(np.int64)
            ctx, drop = self.basket_context, self.basket_dropped
            basket_kw = {
                "basket_offsets": bo,
                "basket_context": None if ctx is None else ctx[first[bo[:-1]]],
                "context_names": self.context_names,
                "basket_dropped": None if drop is None else drop[first[bo[:-1]]],
            }
        return SequenceData(
            items=self.items[pos],
            offsets=offsets,
            n_items=self.n_items,
            session_ids=None if self.session_ids is None else self.session_ids[idx],
            timestamps=take(self.timestamps),
            ratings=take(self.ratings),
            user_ids=None if self.user_ids is None else self.user_ids[idx],
            is_target=take(self.is_target),
            **basket_kw,
        )

    # --------------------------------------------------------------- baskets
    @property
    def is_baskets(self) -> bool:
        """Whether this is next-basket data (sequences of baskets)."""
        return self.basket_offsets is not None

    @property
    def n_baskets(self) -> int:
        return 0 if self.basket_offsets is None else len(self.basket_offsets) - 1

    def _require_baskets(self) -> np.ndarray:
        if self.basket_offsets is None:
            raise DataError("this SequenceData holds event sequences, not baskets")
        return self.basket_offsets

    def sequence_baskets(self) -> np.ndarray:
        """int64 (n_sequences + 1,): sequence ``i`` holds baskets ``[sb[i], sb[i+1])``."""
        return np.searchsorted(self._require_baskets(), self.offsets).astype(np.int64)

    def basket_of_event(self) -> np.ndarray:
        """int64 (n_events,): the basket index of every event."""
        bo = self._require_baskets()
        return np.repeat(np.arange(len(bo) - 1, dtype=np.int64), np.diff(bo))

    def baskets_of(self, i: int) -> list[np.ndarray]:
        """The baskets of sequence ``i`` as arrays (tests, small data)."""
        bo = self._require_baskets()
        sb = self.sequence_baskets()
        return [self.items[bo[b] : bo[b + 1]] for b in range(sb[i], sb[i + 1])]

    def target_baskets(self) -> np.ndarray:
        """int64: indices of the baskets to predict in evaluation — those whose events are
        flagged ``is_target`` (or, without flags, every basket after the first of its
        sequence); a sequence's first basket is never a target (it has no history)."""
        bo = self._require_baskets()
        first_event = bo[:-1]
        if self.is_target is not None:
            flags = self.is_target[first_event].copy()
        else:
            flags = np.ones(len(first_event), dtype=bool)
        flags[self.sequence_baskets()[:-1][self.lengths > 0]] = False
        return np.flatnonzero(flags).astype(np.int64)

    def target_mask(self) -> np.ndarray:
        """bool (n_events,): ``is_target`` if set, else every event but the first of its sequence."""
        if self.is_target is not None:
            mask = self.is_target.copy()
        else:
            mask = np.ones(self.n_events, dtype=bool)
        mask[self.offsets[:-1][self.lengths > 0]] = False  # a first event has no history
        return mask

    def item_counts(self) -> np.ndarray:
        """Number of events per item index, shape (n_items,) (index 0 is always 0)."""
        return np.bincount(self.items, minlength=self.n_items)

    def __repr__(self) -> str:
        baskets = f", {self.n_baskets} baskets" if self.is_baskets else ""
        return (
            f"SequenceData({len(self)} sequences{baskets}, {self.n_events} events, "
            f"n_items={self.n_items})"
        )
