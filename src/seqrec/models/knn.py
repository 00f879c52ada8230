"""Nearest-neighbour baselines: ``iknn`` (item-kNN, GRU4Rec's official ``baselines.ItemKNN``),
``sknn`` and ``vsknn`` (session-kNN and vector-multiplication session-kNN, Jannach & Ludewig
2017, Ludewig & Jannach 2018, as in session-rec's ``ContextKNN`` / ``VMContextKNN``).

Scoring is vectorised over the batch with SciPy sparse products: the query matrix
``Q (B, n_items)``, the recency-ordered binary training matrix ``S (n_sessions, n_items)``,
overlaps ``Q @ S.T``, recency sampling and top-k on the CSR arrays, scores
``W (B, n_sessions) @ S``. Items without evidence get the popularity fallback below (see
:mod:`seqrec.models._scoring`). Exact definitions and deviations: ``docs/models/baselines.md``.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import ConfigDict, Field
from torch import Tensor

from seqrec._config import ConfigModel
from seqrec.data.query import QueryBatch
from seqrec.data.sequences import SequenceData
from seqrec.models._scoring import (
    assemble_scores,
    history_window,
    last_items,
    popularity_levels,
    query_matrix,
    require_fitted,
    topk_per_row,
)
from seqrec.models.base import ArrayModel, ModelSpec


def session_item_matrix(data: SequenceData, *, binary: bool) -> sp.csr_matrix:
    """``X[s, i]`` = events of item ``i`` in sequence ``s`` (1 if ``binary``), float64 CSR."""
    seq = np.repeat(np.arange(len(data), dtype=np.int64), data.lengths)
    x = query_matrix(seq, data.items.astype(np.int64), None, (len(data), data.n_items))
    x.sum_duplicates()
    if binary:
        x.data[:] = 1.0
    return x


# --------------------------------------------------------------------------- item-kNN
class ItemKNNConfig(ConfigModel):
    """Item-kNN, as GRU4Rec's official ``baselines.py`` ``ItemKNN`` (Hidasi et al. 2016)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: Literal["iknn"] = "iknn"
    n_sims: int = Field(100, ge=1)
    """Most similar items kept per item [``n_sims``]; the others score 0 (fallback)."""
    lmbd: float = Field(20.0, ge=0)
    """Regularisation added to both supports [``lmbd``]."""
    alpha: float = Field(0.5, ge=0, le=1)
    """Balance of the two supports [``alpha``]; 0.5 = cosine, 1 = confidence."""
    binary: bool = False
    """Count each (session, item) once (binary session x item matrix). Off (official): an
    item's support is its number of events and co-occurrences are products of counts; both
    agree on data without repeated items in a session."""
    tie_break_popularity: bool = True
    """Order items with equal similarity by training popularity."""


class ItemKNN(ArrayModel):
    """``score(j) = sim(last, j)`` with ``sim(i, j) = C[i, j] / ((supp_i + lmbd)^alpha
    (supp_j + lmbd)^(1 - alpha))``, ``C = X.T @ X``, ``sim(i, i) = 0``, top ``n_sims`` per row."""

    state_fields = ("sims_", "pop_level_")

    def __init__(self, config: ItemKNNConfig, n_items: int) -> None:
        super().__init__(config, n_items)
        self.sims_: sp.csr_matrix | None = None
        self.pop_level_: np.ndarray | None = None

    def fit(self, data: SequenceData) -> ItemKNN:
        c = self.config
        x = session_item_matrix(data, binary=c.binary)  # (n_seq, N)
        supp = np.asarray(x.sum(axis=0)).ravel()  # (N,) events (or sessions) per item
        co = (x.T @ x).tocsr()  # (N, N) co-occurrence
        co.sum_duplicates()
        rows = np.repeat(np.arange(co.shape[0], dtype=np.int64), np.diff(co.indptr))
        cols = co.indices
        norm = np.power(supp[rows] + c.lmbd, c.alpha) * np.power(supp[cols] + c.lmbd, 1 - c.alpha)
        norm[norm == 0] = 1.0
        co.data = np.where(rows == cols, 0.0, co.data / norm)  # no self-similarity
        co.eliminate_zeros()
        self.sims_ = topk_per_row(co, c.n_sims)
        self.pop_level_ = popularity_levels(data.item_counts())
        return self

    def score(self, batch: QueryBatch) -> Tensor:
        require_fitted(self, "sims_")
        evidence = self.sims_[last_items(batch)]  # (B, N); empty history -> row 0 (empty)
        return assemble_scores(evidence, self.pop_level_, self.config.tie_break_popularity)


# ------------------------------------------------------------------------ session-kNN
PositionWeighting = Literal["div", "same", "quadratic", "log"]


def position_weight(
    kind: PositionWeighting, pos: np.ndarray, length: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """V-SKNN weight of a query item whose last occurrence is at 1-based ``pos`` of a window
    of ``length`` events (session-rec ``VMContextKNN`` ``weighting``), as ``(numerator,
    denominator)``: integer numerators where the weight is rational (``div`` ``p / L``,
    ``quadratic`` ``p^2 / L^2``, ``same`` ``1 / 1``), so that sums of weights are exact and
    equal similarities are exactly equal; ``log`` ``1 / log10(L - p + 1.7)`` over 1."""
    pos = pos.astype(np.float64)
    length = length.astype(np.float64)
    if kind == "div":
        return pos, length
    if kind == "same":
        return np.ones_like(pos), np.ones_like(length)
    if kind == "quadratic":
        return pos * pos, length * length
    return 1.0 / np.log10(length - pos + 1.7), np.ones_like(length)  # "log"


def step_weight(kind: PositionWeighting, step: np.ndarray) -> np.ndarray:
    """V-SKNN decay of a neighbour whose most recent shared item is ``step`` events from the
    end of the query window (1 = the last event; session-rec ``weighting_score``)."""
    step = step.astype(np.float64)
    if kind == "div":
        return 1.0 / step
    if kind == "same":
        return np.ones_like(step)
    if kind == "quadratic":
        return 1.0 / (step * step)
    return 1.0 / np.log10(step + 1.7)  # "log"


class SessionKNNConfig(ConfigModel):
    """Session-kNN (SKNN; Jannach & Ludewig 2017, Ludewig & Jannach 2018)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: Literal["sknn"] = "sknn"
    k: int = Field(100, ge=1)
    """Number of neighbour sessions."""
    sample_size: int = Field(500, ge=0)
    """Candidates: only the ``sample_size`` most recent training sessions (by last event time)
    sharing an item with the query history (0: all of them)."""
    similarity: Literal["cosine", "jaccard"] = "cosine"
    """Similarity of the binary item sets: ``|q & s| / sqrt(|q| |s|)`` or
    ``|q & s| / |q | s|``."""
    last_n: int | None = Field(None, ge=1)
    """Use only the last ``last_n`` events of the query for the similarity (None: all)."""
    tie_break_popularity: bool = True
    """Order items with equal scores by training popularity."""


class VSKNNConfig(ConfigModel):
    """Vector-multiplication session-kNN (V-SKNN; Ludewig & Jannach 2018)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: Literal["vsknn"] = "vsknn"
    k: int = Field(100, ge=1)
    """Number of neighbour sessions."""
    sample_size: int = Field(500, ge=0)
    """As in ``sknn``."""
    weighting: PositionWeighting = "div"
    """Query item weight by its last position ``p`` in a window of ``L`` events: ``div``
    ``p / L`` (session-rec default), ``same`` 1, ``quadratic`` ``(p / L)^2``, ``log``
    ``1 / log10(L - p + 1.7)``."""
    weighting_score: PositionWeighting = "div"
    """Neighbour decay by the step ``t`` (1 = last event) of the most recent query item it
    contains: ``div`` ``1 / t`` (session-rec default), ``same`` 1, ``quadratic`` ``1 / t^2``,
    ``log`` ``1 / log10(t + 1.7)``."""
    last_n: int | None = Field(None, ge=1)
    """Use only the last ``last_n`` events of the query (weights, similarity, decay)."""
    tie_break_popularity: bool = True
    """Order items with equal scores by training popularity."""


class _SessionKNNBase(ArrayModel):
    """Shared fit and neighbour search of SKNN and V-SKNN.

    ``sessions_`` is the binary training matrix with its rows sorted by recency: row ``j`` is
    the ``j``-th oldest non-empty training sequence by the time of its last event (ties and
    data without timestamps: by position in the training data, later = more recent). Column
    order of ``Q @ S.T`` is therefore recency order, which makes recency sampling a slice of
    every CSR row.
    """

    state_fields = ("sessions_", "pop_level_")
    config: Any

    def __init__(self, config: Any, n_items: int) -> None:
        super().__init__(config, n_items)
        self.sessions_: sp.csr_matrix | None = None
        self.pop_level_: np.ndarray | None = None
        self._cache: tuple[Any, sp.csr_matrix, np.ndarray] | None = None

    def fit(self, data: SequenceData) -> Any:
        lengths = data.lengths
        nonempty = np.flatnonzero(lengths > 0)
        if data.timestamps is not None and len(nonempty):
            end = np.full(len(data), -np.inf)
            end[nonempty] = np.maximum.reduceat(data.timestamps, data.offsets[:-1][nonempty])
        else:
            end = np.arange(len(data), dtype=np.float64)
        order = nonempty[np.lexsort((nonempty, end[nonempty]))]  # oldest first
        x = session_item_matrix(data, binary=True)  # (n_seq, N)
        self.sessions_ = x[order]  # (n_sessions, N), recency-sorted rows
        self.pop_level_ = popularity_levels(data.item_counts())
        self._cache = None
        return self

    def set_state(self, tensors: Any, meta: Any) -> None:
        super().set_state(tensors, meta)
        self._cache = None

    def _derived(self) -> tuple[sp.csr_matrix, np.ndarray]:
        """The pruned ``S.T`` and the session sizes, computed once per fitted state.

        Row ``i`` of the pruned ``S.T`` holds only the ``sample_size`` most recent sessions
        containing item ``i``. That loses nothing: a session among the ``sample_size`` most
        recent of the union over the query's items is, for every query item it contains,
        among that item's ``sample_size`` most recent sessions (fewer than ``sample_size``
        sessions of the union are more recent). So the candidates and their overlaps computed
        with the pruned matrix are exact, and the cost per query is bounded by
        ``|history| * sample_size`` instead of the items' full session lists."""
        s = self.sessions_
        if self._cache is None or self._cache[0] is not s:
            st = s.T.tocsr()  # (N, n_sessions)
            st.sort_indices()  # ascending session = ascending recency
            n = self.config.sample_size
            counts = np.diff(st.indptr)
            if n > 0 and counts.max(initial=0) > n:
                rows = np.repeat(np.arange(st.shape[0], dtype=np.int64), counts)
                keep = st.indptr[rows + 1] - 1 - np.arange(st.nnz) < n  # the n most recent
                indptr = np.zeros(st.shape[0] + 1, dtype=np.int64)
                np.cumsum(np.minimum(counts, n), out=indptr[1:])
                st = sp.csr_matrix((st.data[keep], st.indices[keep], indptr), shape=st.shape)
            self._cache = (s, st, np.diff(s.indptr).astype(np.float64))
        return self._cache[1], self._cache[2]

    def _candidates(self, batch: QueryBatch) -> sp.csr_matrix:
        """``(B, n_sessions)`` overlap counts ``|history & s|`` of the ``sample_size`` most
        recent training sessions ``s`` sharing an item with each query's whole history
        (session-rec's ``relevant_sessions``); other sessions are absent."""
        st, _ = self._derived()
        rows, items, _, _ = history_window(batch, None)
        q = query_matrix(rows, items, None, (len(batch), self.n_items))  # (B, N)
        q.sum_duplicates()
        q.data[:] = 1.0
        cand = (q @ st).tocsr()  # (B, n_sessions)
        cand.sort_indices()  # column (= recency) order within each row
        n = self.config.sample_size
        counts = np.diff(cand.indptr)
        if n > 0 and counts.max(initial=0) > n:
            r = np.repeat(np.arange(len(batch), dtype=np.int64), counts)
            from_end = cand.indptr[r + 1] - 1 - np.arange(cand.nnz)  # 0 = most recent
            cand.data[from_end >= n] = 0.0
            cand.eliminate_zeros()
        return cand

    @staticmethod
    def _restrict(m: sp.csr_matrix, cand: sp.csr_matrix) -> sp.csr_matrix:
        """``m`` on the sparsity pattern of ``cand`` only."""
        mask = cand.copy()
        mask.data[:] = 1.0
        return m.multiply(mask).tocsr()

    def _neighbours(self, sims: sp.csr_matrix) -> sp.csr_matrix:
        """Top ``k`` similarities per row (ties: the more recent session)."""
        sims = sims.tocsr()
        sims.eliminate_zeros()
        return topk_per_row(sims, self.config.k, prefer_high_column=True)


class SessionKNN(_SessionKNNBase):
    """``score(i) = sum of sim(q, n) over the k nearest neighbours n containing i``."""

    def __init__(self, config: SessionKNNConfig, n_items: int) -> None:
        super().__init__(config, n_items)

    def score(self, batch: QueryBatch) -> Tensor:
        require_fitted(self, "sessions_")
        c = self.config
        st, size = self._derived()
        b = len(batch)
        cand = self._candidates(batch)  # (B, n_sessions) overlaps with the whole history
        rows, items, _, _ = history_window(batch, c.last_n)
        qw = query_matrix(rows, items, None, (b, self.n_items))
        qw.sum_duplicates()
        qw.data[:] = 1.0  # binary item set of the window
        qsize = np.diff(qw.indptr).astype(np.float64)  # (B,) distinct items
        if c.last_n is None:
            ov = cand  # the window is the whole history
        else:
            ov = self._restrict(qw @ st, cand)  # (B, n_sessions) window overlaps
        r = np.repeat(np.arange(b, dtype=np.int64), np.diff(ov.indptr))
        n = ov.indices
        if c.similarity == "cosine":
            ov.data = ov.data / np.sqrt(qsize[r] * size[n])
        else:
            ov.data = ov.data / (qsize[r] + size[n] - ov.data)
        w = self._neighbours(ov)  # (B, n_sessions) top-k similarities
        evidence = w @ self.sessions_  # (B, N)
        return assemble_scores(evidence, self.pop_level_, c.tie_break_popularity)


class VSKNN(_SessionKNNBase):
    """``score(i) = sum over the k nearest neighbours n containing i of
    sim(q, n) * decay(n)``, with the position-weighted similarity
    ``sim(q, n) = sum_{j in q & n} w(j) / |q|``."""

    def __init__(self, config: VSKNNConfig, n_items: int) -> None:
        super().__init__(config, n_items)

    def score(self, batch: QueryBatch) -> Tensor:
        require_fitted(self, "sessions_")
        c = self.config
        st, _ = self._derived()
        b, n_items = len(batch), self.n_items
        cand = self._candidates(batch)  # (B, n_sessions)
        rows, items, pos, length = history_window(batch, c.last_n)
        # last occurrence of each distinct (query, item) in the window
        key = rows * n_items + items
        ukey, first_rev = np.unique(key[::-1], return_index=True)
        last = len(key) - 1 - first_rev
        urows, uitems, upos = rows[last], items[last], pos[last]
        qsize = np.bincount(urows, minlength=b).astype(np.float64)  # (B,) distinct items
        num, _ = position_weight(c.weighting, upos, length[urows])
        _, den = position_weight(c.weighting, length, length)  # (B,) per-query denominator
        qw = sp.csr_matrix((num, (urows, uitems)), shape=(b, n_items))
        sims = self._restrict(qw @ st, cand)  # (B, n_sessions) sum of weight numerators
        sr = np.repeat(np.arange(b, dtype=np.int64), np.diff(sims.indptr))
        sims.data = sims.data / (den * qsize)[sr]  # sim = sum_j w(j) / |q|
        nb = self._neighbours(sims)
        # decay: step of the most recent query item each neighbour contains
        nr = np.repeat(np.arange(b, dtype=np.int64), np.diff(nb.indptr))
        ns = nb.indices.astype(np.int64)
        s_ptr, s_items = self.sessions_.indptr, self.sessions_.indices
        sizes = s_ptr[ns + 1] - s_ptr[ns]  # (n_pairs,) >= 1
        pair = np.repeat(np.arange(len(ns), dtype=np.int64), sizes)
        pair_start = np.zeros(len(ns), dtype=np.int64)
        np.cumsum(sizes[:-1], out=pair_start[1:])
        member = s_items[s_ptr[ns][pair] + (np.arange(len(pair)) - pair_start[pair])]
        look = nr[pair] * n_items + member
        at = np.minimum(np.searchsorted(ukey, look), max(len(ukey) - 1, 0))
        found = ukey[at] == look if len(ukey) else np.zeros(len(look), dtype=bool)
        p = np.where(found, upos[at], 0) if len(ukey) else np.zeros(len(look), np.int64)
        pmax = np.maximum.reduceat(p, pair_start) if len(ns) else np.zeros(0, np.int64)
        step = length[nr] - pmax + 1
        nb.data = nb.data * step_weight(c.weighting_score, step)
        evidence = nb @ self.sessions_  # (B, N)
        return assemble_scores(evidence, self.pop_level_, c.tie_break_popularity)


IKNN_SPEC = ModelSpec(
    name="iknn",
    config=ItemKNNConfig,
    task="next-item",
    build=ItemKNN,
    planted_recall=(0.85, 1.0),
    summary="item-kNN: items most similar (regularised cosine) to the last item",
)

SKNN_SPEC = ModelSpec(
    name="sknn",
    config=SessionKNNConfig,
    task="next-item",
    build=SessionKNN,
    planted_recall=(0.65, 0.95),
    summary="session-kNN: items of the most similar recent training sessions",
)

VSKNN_SPEC = ModelSpec(
    name="vsknn",
    config=VSKNNConfig,
    task="next-item",
    build=VSKNN,
    planted_recall=(0.75, 1.0),
    summary="session-kNN with position-weighted query items and decayed neighbours",
)
