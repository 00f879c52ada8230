"""UP-CF@r (Faggioli, Polato & Aiolli, "Recency Aware Collaborative Filtering for Next Basket
Recommendation", UMAP 2020): user-based collaborative filtering over recency-aware user-wise
popularities.

Vectorised with NumPy / SciPy sparse matrices (overlaps ``Q @ X.T`` and scores
``W**q @ P`` per chunk of queries). Exact
definition, tie rules and deviations: ``docs/models/basket_baselines.md``.
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
    binary,
    global_levels,
    query_flat,
    row_chunks,
    topk_dense,
    train_flat,
    user_item_matrix,
)


class UPCFConfig(ConfigModel):
    """UP-CF@r; defaults are the Reality-Check repository's script defaults (recency 10,
    asymmetry 0.75, locality 10), all users as neighbours as in the paper."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: Literal["upcf"] = "upcf"
    r: int | None = Field(10, ge=1)
    """Recency window: the user-wise popularity counts only the last ``r`` baskets
    (None: every basket, i.e. UP-CF without recency)."""
    alpha: float = Field(0.75, ge=0, le=1)
    """Asymmetry of the cosine ``|I_u & I_v| / (|I_u|**alpha |I_v|**(1 - alpha))``
    (0.5: the ordinary cosine of the binary item sets)."""
    q: float = Field(10.0, ge=0)
    """Locality: similarities are raised to the power ``q``."""
    k: int | None = Field(None, ge=1)
    """Keep only the ``k`` most similar training users per query (None: all, the paper)."""


def user_popularity(
    rows: np.ndarray,
    pos: np.ndarray,
    items: np.ndarray,
    n_baskets: np.ndarray,
    n_items: int,
    r: int | None,
) -> sp.csr_matrix:
    """Recency-aware user-wise popularity ``(n_rows, n_items)``: ``pi_u(i) = |{b in last
    min(r, n_u) baskets of u : i in b}| / min(r, n_u)`` (``r=None``: over all ``n_u``)."""
    n = n_baskets[rows]
    if r is None:
        keep = np.ones(len(rows), dtype=bool)
        denom = n.astype(np.float64)
    else:
        keep = pos >= n - r
        denom = np.minimum(n, r).astype(np.float64)
    return user_item_matrix(rows[keep], items[keep], 1.0 / denom[keep], (len(n_baskets), n_items))


class UPCF(ArrayModel):
    """``score(i) = pi_u(i) + sum_v w_uv**q pi_v(i)`` over the training users ``v`` (the
    query user's own term has ``w_uu = 1``); items without evidence follow in the G-TopFreq
    order (an empty history: the G-TopFreq ranking)."""

    state_fields = ("items_", "popularity_", "levels_")
    config: UPCFConfig

    def __init__(self, config: UPCFConfig, n_items: int) -> None:
        super().__init__(config, n_items)
        self.items_: sp.csr_matrix | None = None
        self.popularity_: sp.csr_matrix | None = None
        self.levels_: np.ndarray | None = None

    def fit(self, data: SequenceData) -> UPCF:
        rows, pos, items, n_b = train_flat(data)
        shape = (len(n_b), self.n_items)
        self.items_ = binary(user_item_matrix(rows, items, None, shape))  # (U, N) X
        self.popularity_ = user_popularity(rows, pos, items, n_b, self.n_items, self.config.r)
        self.levels_ = global_levels(basket_counts(data))
        return self

    def evidence(self, batch: QueryBatch) -> sp.csr_matrix:
        """(B, N) ``pi_u + sum_v w_uv**q pi_v``, the UP-CF scores before ties and fallback.

        Computed in row chunks whose dense ``(rows, n_training_users)`` and ``(rows, N)``
        blocks hold at most 2**22 entries each."""
        require_fitted(self, "items_")
        assert self.items_ is not None and self.popularity_ is not None
        c = self.config
        rows, pos, items, n_b = query_flat(batch)
        shape = (len(batch), self.n_items)
        own = user_popularity(rows, pos, items, n_b, self.n_items, c.r)  # (B, N) pi_u
        q_items = binary(user_item_matrix(rows, items, None, shape))  # (B, N)
        size_u = np.diff(q_items.indptr).astype(np.float64)  # (B,) |I_u|
        size_v = np.diff(self.items_.indptr).astype(np.float64)  # (U,) |I_v|
        norm_v = np.power(np.maximum(size_v, 1.0), 1.0 - c.alpha)  # (U,)
        pop_t = self.popularity_.T.tocsr()  # (N, U)
        parts = []
        for sl in row_chunks(len(batch), max(len(size_v), self.n_items)):
            overlap = (q_items[sl] @ self.items_.T).toarray()  # (b, U) |I_u & I_v|
            shared = overlap > 0
            norm_u = np.power(np.maximum(size_u[sl], 1.0), c.alpha)[:, None]  # (b, 1)
            w = np.where(shared, overlap / (norm_u * norm_v), 0.0)  # (b, U) asymmetric cosine
            if c.k is not None:
                shared &= topk_dense(w, c.k)
            w = np.where(shared, np.power(w, c.q), 0.0)  # (b, U) w_uv ** q
            parts.append(sp.csr_matrix(own[sl].toarray() + np.asarray(pop_t @ w.T).T))
        return sp.vstack(parts, format="csr") if parts else sp.csr_matrix(shape)

    def score(self, batch: QueryBatch) -> Tensor:
        evidence = self.evidence(batch)
        assert self.levels_ is not None
        return assemble_scores(evidence, self.levels_, True)


SPEC = ModelSpec(
    name="upcf",
    config=UPCFConfig,
    task="next-basket",
    build=UPCF,
    planted_recall=(0.58, 0.8),
    summary="recency-aware user-wise popularity with user-based CF (UP-CF@r)",
)
