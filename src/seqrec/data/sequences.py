"""SequenceData: a ragged array of sequences that everything downstream works on."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from seqrec.columns import Columns
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
    """bool (n_events,): events to predict in evaluation (None: every event after the first)."""

    def __post_init__(self) -> None:
        if self.offsets.ndim != 1 or len(self.offsets) < 1 or self.offsets[0] != 0:
            raise DataError("offsets must be a 1-D array starting at 0")
        if self.offsets[-1] != len(self.items):
            raise DataError("offsets[-1] must equal the number of events")
        if len(self.offsets) > 1 and np.any(np.diff(self.offsets) < 0):
            raise DataError("offsets must be non-decreasing")

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
        if n_unknown:
            logger.info("dropped %d event(s) with items not in the vocabulary", n_unknown)
            frame = frame.filter(pl.col("_idx") > 0)
        sort_cols = [group_by, Columns.time, "_row"] if has_time else [group_by, "_row"]
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
        return cls(
            items=frame.get_column("_idx").to_numpy()[pos].astype(np.int32),
            offsets=offsets,
            n_items=vocab.n_items,
            session_ids=sessions,
            timestamps=col(Columns.time, np.float64),
            ratings=col(Columns.rating, np.float64),
            user_ids=users,
            is_target=col("is_target", bool),
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

        return SequenceData(
            items=self.items[pos],
            offsets=offsets,
            n_items=self.n_items,
            session_ids=None if self.session_ids is None else self.session_ids[idx],
            timestamps=take(self.timestamps),
            ratings=take(self.ratings),
            user_ids=None if self.user_ids is None else self.user_ids[idx],
            is_target=take(self.is_target),
        )

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
        return (
            f"SequenceData({len(self)} sequences, {self.n_events} events, n_items={self.n_items})"
        )
