"""Vocabulary: external item ids <-> dense indices (0 is padding)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from seqrec.exceptions import ArtifactError, DataError, UnknownItemError

UnknownPolicy = Literal["drop", "error", "mask"]


class Vocabulary:
    """Bijective map between external ids and dense indices ``1..n``; index 0 is padding.

    External ids are integers or strings. Encoding is vectorised (a sorted-array
    search), never a Python loop.

    Parameters
    ----------
    ids
        The external ids, in index order: ``ids[i]`` gets index ``i + 1``. Must be unique.

    Examples
    --------
    >>> v = Vocabulary.fit([30, 10, 10, 20])
    >>> v.encode([20, 10, 99], unknown="mask").tolist()
    [2, 1, 0]
    >>> v.decode(np.array([1, 3])).tolist()
    [10, 30]
    """

    def __init__(self, ids: Iterable[object] | np.ndarray) -> None:
        arr = np.asarray(ids if isinstance(ids, np.ndarray) else list(ids))
        if arr.ndim != 1:
            raise DataError("Vocabulary ids must be one-dimensional")
        if arr.dtype.kind == "O":
            arr = arr.astype(str)
        if arr.dtype.kind not in "iuU":
            raise DataError(f"Vocabulary ids must be integers or strings, got dtype {arr.dtype}")
        self.ids = arr
        order = np.argsort(arr, kind="stable")
        sorted_ids = arr[order]
        if len(arr) > 1 and np.any(sorted_ids[1:] == sorted_ids[:-1]):
            raise DataError("Vocabulary ids must be unique")
        self._sorted = sorted_ids
        self._sorted_index = order.astype(np.int64) + 1

    # ------------------------------------------------------------------ build
    @classmethod
    def fit(
        cls, ids: Iterable[object] | np.ndarray | pl.Series, *, min_count: int = 1
    ) -> Vocabulary:
        """Build a vocabulary from observed ids, ordered by decreasing frequency (ties by id).

        Parameters
        ----------
        ids
            Observed ids (one per event).
        min_count
            Ids seen fewer times are left out (they become unknown).
        """
        s = (
            ids
            if isinstance(ids, pl.Series)
            else pl.Series("id", np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids))
        )
        counts = s.value_counts(name="n").filter(pl.col("n") >= min_count)
        counts = counts.sort(["n", counts.columns[0]], descending=[True, False])
        return cls(counts.get_column(counts.columns[0]).to_numpy())

    # ---------------------------------------------------------------- mapping
    def __len__(self) -> int:
        """Number of real ids (padding excluded)."""
        return len(self.ids)

    @property
    def n_items(self) -> int:
        """Size of an embedding table over this vocabulary (ids + padding row)."""
        return len(self.ids) + 1

    def __contains__(self, x: object) -> bool:
        return bool(self.lookup(np.asarray([x]))[0] > 0)

    def lookup(self, ids: Iterable[object] | np.ndarray) -> np.ndarray:
        """Indices of ``ids``, 0 where unknown (no policy applied)."""
        arr = np.asarray(ids if isinstance(ids, np.ndarray) else list(ids))
        if len(arr) == 0 or len(self._sorted) == 0:
            return np.zeros(len(arr), dtype=np.int64)
        if self._sorted.dtype.kind == "U":
            arr = arr.astype(str)
        elif arr.dtype.kind not in "iu":
            try:
                as_int = arr.astype(np.int64)
            except (TypeError, ValueError):
                return np.zeros(len(arr), dtype=np.int64)
            arr = as_int
        pos = np.searchsorted(self._sorted, arr)
        pos_c = np.minimum(pos, len(self._sorted) - 1)
        found = self._sorted[pos_c] == arr
        return np.where(found, self._sorted_index[pos_c], 0)

    def encode(
        self, ids: Iterable[object] | np.ndarray, *, unknown: UnknownPolicy = "drop"
    ) -> np.ndarray:
        """Map external ids to indices.

        Parameters
        ----------
        unknown
            ``"drop"``: unknown ids are removed from the output; ``"mask"``: they map to 0
            (padding); ``"error"``: raise :class:`~seqrec.exceptions.UnknownItemError`.
        """
        idx = self.lookup(ids)
        if unknown == "mask":
            return idx
        missing = idx == 0
        if missing.any():
            if unknown == "error":
                arr = np.asarray(ids if isinstance(ids, np.ndarray) else list(ids))
                bad = arr[missing][:5].tolist()
                raise UnknownItemError(
                    f"{int(missing.sum())} id(s) not in the vocabulary, e.g. {bad}; "
                    "use ids seen in training or pass unknown='drop'"
                )
            if unknown == "drop":
                return idx[~missing]
            raise ValueError(f"unknown policy must be 'drop', 'error' or 'mask', got {unknown!r}")
        return idx

    def decode(self, idx: np.ndarray) -> np.ndarray:
        """External ids of indices ``idx`` (all must be in ``1..len(self)``)."""
        idx = np.asarray(idx)
        if idx.size and (idx.min() < 1 or idx.max() > len(self.ids)):
            raise DataError(f"indices must lie in 1..{len(self.ids)} (0 is padding)")
        return self.ids[idx - 1]

    # -------------------------------------------------------------------- I/O
    def to_json(self) -> dict[str, object]:
        kind = "str" if self.ids.dtype.kind == "U" else "int"
        return {"kind": kind, "ids": self.ids.tolist()}

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Vocabulary:
        try:
            kind, ids = obj["kind"], obj["ids"]
        except (KeyError, TypeError) as e:
            raise ArtifactError("vocabulary JSON must have 'kind' and 'ids'") from e
        dtype = np.int64 if kind == "int" else str
        return cls(np.asarray(ids, dtype=dtype))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json()))

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        return cls.from_json(json.loads(Path(path).read_text()))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and np.array_equal(self.ids, other.ids)

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} ids)"
