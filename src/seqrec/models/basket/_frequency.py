"""Shared machinery of the next-basket baselines (``g-topfreq``, ``p-topfreq``, ``gp-topfreq``,
``upcf``, ``tifu-knn``): flat (row, basket position, item) views of training data and of basket
queries, the global order every tie and every fallback follows, and the assembly of scores.

Everything is vectorised (NumPy / SciPy sparse): no per-user Python loops.

The **global order** is the G-TopFreq order: more training baskets containing the item first,
then the lower dense item index. :func:`global_levels` encodes it as distinct levels in
``[0, 1)``; :func:`seqrec.models._scoring.assemble_scores` with these levels gives every
item without evidence the score ``level - 1`` (in ``[-1, 0)``, below every item with
evidence, in the global order) and orders items of equal float32 evidence by the global order.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from seqrec.data.query import QueryBatch
from seqrec.data.sequences import SequenceData
from seqrec.exceptions import DataError


def train_flat(data: SequenceData) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every event of basket data as ``rows (n,)`` (sequence = user), ``pos (n,)`` (its
    basket's position in the user's history, 0 = oldest), ``items (n,)`` and ``n_baskets
    (n_sequences,)``; all int64."""
    if data.basket_offsets is None:
        raise DataError(
            "next-basket models are fitted on basket data (a frame with a basket_id column, "
            "or SequenceData.from_baskets)"
        )
    sb = data.sequence_baskets()
    rows = np.repeat(np.arange(len(data), dtype=np.int64), data.lengths)
    pos = data.basket_of_event() - sb[rows]
    return rows, pos.astype(np.int64), data.items.astype(np.int64), np.diff(sb).astype(np.int64)


def _segments(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(owner (n,), within (n,))`` of ragged segments of the given lengths."""
    owner = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    first = np.cumsum(lengths) - lengths
    return owner, np.arange(len(owner), dtype=np.int64) - first[owner]


def query_flat(batch: QueryBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The same view of a batch of basket queries: ``rows``, ``pos`` (0 = the oldest basket
    of the query's history), ``items`` and ``n_baskets (B,)``; all int64 NumPy arrays (what
    :meth:`QueryBatch.basket_flat` gives, computed in NumPy on the cached CPU copies)."""
    batch._baskets()  # raises DataError for a flat (non-basket) batch
    items = batch.numpy("items").astype(np.int64, copy=False)
    bo = batch.numpy("basket_offsets").astype(np.int64, copy=False)
    bs = batch.numpy("basket_starts").astype(np.int64, copy=False)
    n_b = batch.numpy("basket_ends").astype(np.int64, copy=False) - bs
    b_row, b_pos = _segments(n_b)  # every history basket: its query and position
    b_idx = bs[b_row] + b_pos
    size = bo[b_idx + 1] - bo[b_idx]
    e_basket, e_within = _segments(size)
    rows = b_row[e_basket]
    pos = b_pos[e_basket]
    flat = items[bo[b_idx][e_basket] + e_within] if len(e_basket) else np.zeros(0, np.int64)
    return rows, pos, flat, n_b.copy()


def row_chunks(n_rows: int, width: int, budget: int = 1 << 22) -> list[slice]:
    """Row slices such that a dense ``(rows, width)`` block holds at most ``budget`` entries
    (at least one row per slice)."""
    step = max(1, budget // max(width, 1))
    return [slice(a, min(a + step, n_rows)) for a in range(0, n_rows, step)] or [slice(0, 0)]


def topk_dense(sims: np.ndarray, k: int) -> np.ndarray:
    """bool ``(b, U)``: the ``k`` largest positive entries of every row of a dense block;
    among equal values the lower column first (so exactly ``min(k, #positive)`` per row)."""
    b, u = sims.shape
    positive = sims > 0
    if k >= u or b == 0:
        return positive
    kth = -np.partition(-sims, k - 1, axis=1)[:, k - 1 : k]  # (b, 1) the k-th largest
    above = sims > kth
    tied = (sims == kth) & positive
    need = k - above.sum(axis=1, keepdims=True)
    return (above & positive) | (tied & (np.cumsum(tied, axis=1) <= need))


def basket_counts(data: SequenceData) -> np.ndarray:
    """int64 (n_items,): number of training baskets containing each item (items of a basket
    are distinct, so this is the item's event count)."""
    return np.bincount(data.items.astype(np.int64), minlength=data.n_items).astype(np.int64)


def global_levels(counts: np.ndarray) -> np.ndarray:
    """float64 (n_items,) distinct levels in ``[0, 1)`` ordering items by the global order:
    larger ``counts`` first, then the lower index (level ``(N - 1 - p) / N`` for the item at
    position ``p`` of that order)."""
    n = len(counts)
    order = np.lexsort((np.arange(n), -np.asarray(counts, dtype=np.int64)))
    levels = np.empty(n, dtype=np.float64)
    levels[order] = (n - 1 - np.arange(n, dtype=np.float64)) / max(n, 1)
    return levels


def user_item_matrix(
    rows: np.ndarray, items: np.ndarray, values: np.ndarray | None, shape: tuple[int, int]
) -> sp.csr_matrix:
    """CSR ``(n_rows, n_items)`` float64 from flat entries, duplicates summed (``values=None``:
    counts), indices sorted."""
    data = np.ones(len(rows), dtype=np.float64) if values is None else values
    m = sp.csr_matrix((data, (rows, items)), shape=shape)
    m.sum_duplicates()
    return m


def binary(m: sp.csr_matrix) -> sp.csr_matrix:
    """A copy of ``m`` with every stored value set to 1."""
    out = m.copy()
    out.data = np.ones_like(out.data)
    return out


def row_normalize(m: sp.csr_matrix) -> sp.csr_matrix:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(sp.diags(inv) @ m)


def row_entries(m: sp.csr_matrix) -> np.ndarray:
    """int64 (nnz,): the row of every stored entry of a CSR matrix."""
    return np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
