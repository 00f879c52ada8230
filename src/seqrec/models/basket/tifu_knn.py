"""TIFU-KNN (Hu, He, Gao & Zhang, "Modeling Personalized Item Frequency Information for
Next-basket Recommendation", SIGIR 2020): time-decayed personal item frequency vectors and
user-kNN, as the authors' code (``HaojiHu/TIFUKNN``, ``temporal_decay_sum_history`` and
``group_history_list``) computes them.

Vectorised with NumPy / SciPy sparse matrices: the user vectors of all training users in one
pass over the flat events, the query vectors the same way, cosine similarities as one sparse
product per chunk of queries, the ``k`` nearest by a partition of the dense ``(chunk, users)``
block, the neighbour mean as a second product. Exact definition, tie rules and deviations: ``docs/models/basket_baselines.md``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp
from pydantic import ConfigDict, Field
from torch import Tensor

from seqrec._config import ConfigModel
from seqrec.data.query import QueryBatch
from seqrec.data.sequences import SequenceData
from seqrec.models._scoring import assemble_scores, require_fitted
from seqrec.models.base import ArrayModel, ModelSpec
from seqrec.models.basket._frequency import (
    basket_counts,
    global_levels,
    query_flat,
    row_chunks,
    row_normalize,
    topk_dense,
    train_flat,
    user_item_matrix,
)


class TIFUKNNConfig(ConfigModel):
    """TIFU-KNN; defaults are the paper's Instacart values (Ta-Feng: ``k=300, rb=0.9,
    rg=0.7, alpha=0.7, m=7``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: Literal["tifu-knn"] = "tifu-knn"
    k: int = Field(900, ge=1)
    """Number of nearest training users (by cosine of the user vectors)."""
    rb: float = Field(0.9, ge=0, le=1)
    """Within-group (basket) decay: the ``j``-th of ``n`` history baskets weighs
    ``rb ** (n - 1 - j)`` (0-based ``j``; the last basket 1), as the authors' code."""
    rg: float = Field(0.7, ge=0, le=1)
    """Across-group decay: group ``g`` of ``m`` weighs ``rg ** (m - 1 - g)``."""
    alpha: float = Field(0.9, ge=0, le=1)
    """Mix: ``alpha * user vector + (1 - alpha) * mean of the neighbours' vectors``."""
    m: int = Field(3, ge=1)
    """Number of groups of consecutive baskets (``group_size`` in the authors' code); a user
    with fewer than ``m`` baskets has one group per basket."""


def tifu_vectors(
    rows: np.ndarray,
    pos: np.ndarray,
    items: np.ndarray,
    n_baskets: np.ndarray,
    n_items: int,
    config: TIFUKNNConfig,
) -> sp.csr_matrix:
    """TIFU user vectors ``(n_rows, n_items)`` from flat ``(row, basket position, item)``
    entries (items distinct within a basket).

    With ``n`` baskets (0-based ``j``, oldest first) and ``m`` groups: if ``n < m`` basket
    ``j`` is group ``j`` (size 1) and there are ``G = n`` groups; else ``base = n // m``,
    ``extra = n % m``, the first ``m - extra`` groups hold ``base`` consecutive baskets and
    the last ``extra`` groups ``base + 1``, ``G = m``. The entry of item ``i`` of basket ``j``
    in group ``g`` of size ``s`` contributes ``rb**(n-1-j) / s * rg**(m-1-g) / G``; the
    vector is the sum over baskets.
    """
    c = config
    m = c.m
    n = n_baskets[rows]  # (nnz,)
    small = n < m
    base = n // m
    extra = n - base * m
    split = (m - extra) * base  # first basket of the larger groups
    in_small_groups = pos < split
    g = np.where(
        in_small_groups,
        pos // np.maximum(base, 1),
        (m - extra) + (pos - split) // (base + 1),
    )
    size = np.where(in_small_groups, base, base + 1)
    g = np.where(small, pos, g)
    size = np.where(small, 1, size).astype(np.float64)
    n_groups = np.where(small, n, m).astype(np.float64)
    val = (
        np.power(c.rb, (n - 1 - pos).astype(np.float64))
        / size
        * np.power(c.rg, (m - 1 - g).astype(np.float64))
        / n_groups
    )
    return user_item_matrix(rows, items, val, (len(n_baskets), n_items))


class TIFUKNN(ArrayModel):
    """``score = alpha * v_u + (1 - alpha) * mean(v_nbr for the k nearest training users)``;
    items without evidence follow in the G-TopFreq order (an empty history: the G-TopFreq
    ranking)."""

    state_fields = ("users_", "users_unit_", "levels_")
    config: TIFUKNNConfig

    def __init__(self, config: TIFUKNNConfig, n_items: int) -> None:
        super().__init__(config, n_items)
        self.users_: sp.csr_matrix | None = None
        self.users_unit_: sp.csr_matrix | None = None
        self.levels_: np.ndarray | None = None

    def fit(self, data: SequenceData) -> TIFUKNN:
        rows, pos, items, n_b = train_flat(data)
        users = tifu_vectors(rows, pos, items, n_b, self.n_items, self.config)  # (U, N)
        self.users_ = users
        self.users_unit_ = row_normalize(users)
        self.levels_ = global_levels(basket_counts(data))
        return self

    def query_vectors(self, batch: QueryBatch) -> sp.csr_matrix:
        """(B, N) the TIFU vectors of the queries' history baskets."""
        rows, pos, items, n_b = query_flat(batch)
        return tifu_vectors(rows, pos, items, n_b, self.n_items, self.config)

    def evidence(self, batch: QueryBatch) -> sp.csr_matrix:
        """(B, N) ``alpha * v_u + (1 - alpha) * mean of the k nearest training users'
        vectors`` (cosine > 0; equal similarities: the lower training-user index first; the
        mean is over the neighbours found, at most ``k``), before ties and fallback.

        Similarities are computed in row chunks whose dense ``(rows, n_training_users)``
        block holds at most 2**22 entries."""
        require_fitted(self, "users_")
        assert self.users_ is not None and self.users_unit_ is not None
        a = self.config.alpha
        q = self.query_vectors(batch)  # (B, N)
        qn = row_normalize(q)
        n_users = self.users_.shape[0]
        unit_t = self._unit_t()
        parts = []
        for sl in row_chunks(len(batch), n_users):
            sims = (qn[sl] @ unit_t).toarray()  # (b, U) cosine
            take = topk_dense(sims, self.config.k)  # (b, U) the neighbours
            r, u = np.nonzero(take)
            found = np.bincount(r, minlength=take.shape[0]).astype(np.float64)
            w = sp.csr_matrix((1.0 / found[r], (r, u)), shape=take.shape)  # (b, U) 1 / found
            parts.append(w @ self.users_)  # (b, N) neighbour mean
        nbr = sp.vstack(parts, format="csr") if parts else sp.csr_matrix(q.shape)
        return (a * q + (1.0 - a) * nbr).tocsr()

    def _unit_t(self) -> sp.csr_matrix:
        """The unit user vectors transposed, ``(N, U)`` CSR, built once per fitted state (a
        CSR @ CSC product would convert the transpose again for every chunk)."""
        assert self.users_unit_ is not None
        cached = getattr(self, "_unit_t_cache", None)
        if cached is None or cached[0] is not self.users_unit_:
            cached = (self.users_unit_, self.users_unit_.T.tocsr())
            self._unit_t_cache = cached
        return cached[1]

    def score(self, batch: QueryBatch) -> Tensor:
        evidence = self.evidence(batch)
        assert self.levels_ is not None
        return assemble_scores(evidence, self.levels_, True)


SPEC = ModelSpec(
    name="tifu-knn",
    config=TIFUKNNConfig,
    task="next-basket",
    build=TIFUKNN,
    example={"model": {"name": "tifu-knn", "k": 50}},
    planted_recall=(0.58, 0.8),
    summary="time-decayed personal item frequencies mixed with the k nearest users' (TIFU-KNN)",
)
