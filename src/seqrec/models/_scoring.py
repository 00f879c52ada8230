"""Shared machinery of the non-neural next-item baselines (``spop``, ``markov``, ``knn``, ...).

Every baseline computes a sparse **evidence** matrix ``(B, n_items)`` of non-negative scores
(session counts, transition counts, rule weights, similarities) and turns it into dense
float32 scores with :func:`assemble_scores`:

* items with positive evidence get their evidence value (as float32);
* items without evidence get the **popularity fallback** ``level - 1``, in ``[-1, 0)``, so they
  rank strictly below every item with evidence and among themselves exactly as the ``pop``
  model ranks them (by training count, equal counts tied). A query with an empty history, or
  whose history yields no evidence (unknown last item, no neighbours), therefore gets the
  ``pop`` ranking;
* with ``tie_break=True`` items with *equal* float32 evidence are ordered by training
  popularity (see :func:`tie_break_values`); items whose float32 evidence differs are never
  reordered.

Everything is vectorised over the batch (NumPy / SciPy sparse, no per-query loops).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from seqrec.data.query import QueryBatch
from seqrec.exceptions import NotFittedError


def popularity_levels(counts: np.ndarray) -> np.ndarray:
    """``level[i]`` in ``[0, 1)``: the dense rank of ``counts[i]`` among the distinct counts,
    divided by their number (0 = least popular). Equal counts get equal levels, so ordering by
    level is exactly ordering by count. float64 (n_items,)."""
    uniq, inv = np.unique(np.asarray(counts), return_inverse=True)
    return inv.reshape(-1).astype(np.float64) / len(uniq)


def fallback_scores(levels: np.ndarray) -> np.ndarray:
    """The popularity fallback ``level - 1`` as float32 (n_items,), in ``[-1, 0)``.

    Distinct levels stay distinct in float32 as long as there are fewer than 2**24 distinct
    counts (the float32 spacing in ``[-1, -0.5]`` is ``2**-24``)."""
    return (levels - 1.0).astype(np.float32)


def tie_break_values(rows: np.ndarray, values: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Order equal scores of a row by popularity without reordering different ones.

    Parameters
    ----------
    rows : int (n,)
        The row (query) of each entry.
    values : float32 (n,)
        Positive scores.
    levels : float64 (n,)
        The popularity level (in ``[0, 1)``) of each entry's item.

    Returns
    -------
    float32 (n,)
        ``float32(values + levels * g / 2)`` where ``g`` is, per row, the smallest positive
        difference between two distinct values of the row (or the row's smallest value if
        smaller, or if all its values are equal). Computed in float64 and rounded once.

    Why it never reorders: for float32 values ``a < b`` of a row, ``b - a >= g`` and the
    added term is ``< g / 2``, so ``a + t < (a + b) / 2``; round-to-nearest then gives a
    float32 ``< b`` (there is a float32 strictly between ``a + t`` and ``b`` or ``a + t``
    rounds down to ``a``), while ``b`` only grows. Equal values are separated when the
    float32 spacing at the value allows it (``g / 2 * Δlevel`` at least one ulp); otherwise
    they stay tied, never inverted.
    """
    if len(values) == 0:
        return values.astype(np.float32)
    # sort (row, value) pairs as one int64 key: positive float32 bit patterns order like the
    # values; only the sorted values are needed (g is per row), not the permutation
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.int32).astype(np.int64)
    key = np.sort((rows.astype(np.int64) << 32) | bits)
    r = key >> 32
    vs = (key & 0xFFFFFFFF).astype(np.int32).view(np.float32).astype(np.float64)
    new_row = np.empty(len(r), dtype=bool)
    new_row[0] = True
    np.not_equal(r[1:], r[:-1], out=new_row[1:])
    starts = np.flatnonzero(new_row)
    gaps = np.empty(len(vs), dtype=np.float64)
    gaps[:-1] = np.diff(vs)
    gaps[-1] = np.inf
    gaps[:-1][new_row[1:]] = np.inf  # a gap across two rows does not count
    gaps[gaps <= 0] = np.inf  # equal values: a tie, not a gap
    g = np.minimum(np.minimum.reduceat(gaps, starts), vs[starts])  # per present row
    g_of_row = np.zeros(int(r[-1]) + 1, dtype=np.float64)
    g_of_row[r[starts]] = g
    out = values.astype(np.float64) + levels * (0.5 * g_of_row[rows])
    return out.astype(np.float32)


def assemble_scores(evidence: sp.csr_matrix, levels: np.ndarray, tie_break: bool) -> Tensor:
    """Dense float32 scores ``(B, n_items)`` from sparse non-negative evidence.

    Entries with positive evidence keep their value (float32, tie-broken by popularity when
    ``tie_break``), every other item gets the popularity fallback (see the module docstring).
    ``evidence`` must not hold duplicate entries (SciPy products, row gathers and matrices
    built from COO triplets never do); its indices need not be sorted.
    """
    ev = evidence.tocsr()
    b, n = ev.shape
    out = np.empty((b, n), dtype=np.float32)
    out[:] = fallback_scores(levels)
    rows = np.repeat(np.arange(b, dtype=np.int64), np.diff(ev.indptr))
    cols = ev.indices
    data = ev.data
    keep = data > 0
    if not keep.all():
        rows, cols, data = rows[keep], cols[keep], data[keep]
    vals = data.astype(np.float32)
    if tie_break:
        vals = tie_break_values(rows, vals, levels[cols])
    out[rows, cols] = vals
    return torch.from_numpy(out)


def topk_per_row(m: sp.csr_matrix, k: int, *, prefer_high_column: bool = False) -> sp.csr_matrix:
    """Keep the ``k`` largest entries of every row of ``m``; among equal values the lower
    column wins (``prefer_high_column``: the higher one). ``k <= 0`` keeps everything.
    Column indices of the result are sorted."""
    m = m.tocsr()
    m.sum_duplicates()  # also sorts the indices
    if k <= 0:
        return m
    counts = np.diff(m.indptr)
    if counts.max(initial=0) <= k:
        return m
    n_rows, width = m.shape[0], int(counts.max())
    rows = np.repeat(np.arange(n_rows, dtype=np.int64), counts)
    within = np.arange(m.nnz, dtype=np.int64) - m.indptr[rows]  # column order in the row
    if n_rows * width <= 4 * m.nnz + 4096:
        # balanced rows: a dense (rows, width) block, k-th largest by partition, ties by column
        slot = (counts[rows] - 1 - within) if prefer_high_column else within
        vals = np.full((n_rows, width), -np.inf)
        vals[rows, slot] = m.data
        kth = -np.partition(-vals, k - 1, axis=1)[:, k - 1 : k]  # (rows, 1) k-th largest
        above = vals > kth
        tied = vals == kth
        need = k - above.sum(axis=1, keepdims=True)
        take = above | (tied & (np.cumsum(tied, axis=1) <= need))
        keep = take[rows, slot]
    else:
        col_key = -m.indices.astype(np.int64) if prefer_high_column else m.indices
        order = np.lexsort((col_key, -m.data, rows))  # row, value desc, column
        rank = np.empty(m.nnz, dtype=np.int64)
        rank[order] = within  # rows[order] == rows: the i-th of a row in sorted order
        keep = rank < k
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.minimum(counts, k), out=indptr[1:])
    return sp.csr_matrix((m.data[keep], m.indices[keep], indptr), shape=m.shape)


def history_window(
    batch: QueryBatch, last_n: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The last ``last_n`` events (all when None) of every query, flat.

    Returns ``rows (n,)``, ``items (n,)``, ``pos (n,)`` (1-based position within the
    query's window, oldest = 1) and ``length (B,)`` (window length of each query)."""
    items = batch.numpy("items")
    starts = batch.numpy("starts").astype(np.int64)
    ends = batch.numpy("ends").astype(np.int64)
    if last_n is not None:
        starts = np.maximum(starts, ends - last_n)
    length = np.maximum(ends - starts, 0)
    offsets = np.zeros(len(length) + 1, dtype=np.int64)
    np.cumsum(length, out=offsets[1:])
    rows = np.repeat(np.arange(len(length), dtype=np.int64), length)
    within = np.arange(offsets[-1], dtype=np.int64) - offsets[:-1][rows]
    flat = items[starts[rows] + within].astype(np.int64) if len(rows) else np.zeros(0, np.int64)
    return rows, flat, within + 1, length


def query_matrix(
    rows: np.ndarray, items: np.ndarray, data: np.ndarray | None, shape: tuple[int, int]
) -> sp.csr_matrix:
    """CSR ``(B, n_items)`` from flat ``(rows, items, data)``; duplicates are summed
    (``data=None``: counts)."""
    if data is None:
        data = np.ones(len(rows), dtype=np.float64)
    return sp.csr_matrix((data, (rows, items)), shape=shape)


def last_items(batch: QueryBatch) -> np.ndarray:
    """(B,) the most recent item of each query, 0 for an empty history."""
    items, _ = batch.last(1)
    return items[:, 0].cpu().numpy().astype(np.int64)


def require_fitted(model: Any, field: str) -> None:
    """Raise :class:`NotFittedError` when ``model.<field>`` is unset."""
    if getattr(model, field, None) is None:
        raise NotFittedError(f"{type(model).__name__} is not fitted: call fit(data) or load it")
