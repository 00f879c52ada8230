"""Frequency baselines for next-basket recommendation (Li et al., "A Next Basket
Recommendation Reality Check", TOIS 2023): ``g-topfreq`` (the most frequent items over all
training baskets), ``p-topfreq`` (the user's own most frequent items) and ``gp-topfreq``
(P-TopFreq, then G-TopFreq to fill the list).

Definitions, tie rules and sources: ``docs/models/basket_baselines.md``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import ConfigDict
from torch import Tensor

from seqrec._config import ConfigModel
from seqrec.data.query import QueryBatch
from seqrec.data.sequences import SequenceData
from seqrec.models._scoring import assemble_scores, require_fitted
from seqrec.models.base import ArrayModel, ModelSpec
from seqrec.models.basket._frequency import basket_counts, global_levels, query_flat


class _GlobalFrequency(ArrayModel):
    """Learns the training basket count of every item and the global order."""

    state_fields = ("counts_", "levels_")

    def __init__(self, config: ConfigModel, n_items: int) -> None:
        super().__init__(config, n_items)
        self.counts_: np.ndarray | None = None
        self.levels_: np.ndarray | None = None

    def fit(self, data: SequenceData) -> _GlobalFrequency:
        self.counts_ = basket_counts(data)
        self.levels_ = global_levels(self.counts_)
        return self

    def global_scores(self) -> Tensor:
        """(1, N) G-TopFreq scores: the item's training basket count (equal counts ordered
        by the lower index), items never bought ``level - 1`` in ``[-1, 0)``."""
        require_fitted(self, "counts_")
        assert self.counts_ is not None and self.levels_ is not None
        one = sp.csr_matrix(self.counts_.astype(np.float64)[None, :])  # (1, N)
        return assemble_scores(one, self.levels_, True)

    def personal_evidence(self, batch: QueryBatch) -> tuple[sp.csr_matrix, np.ndarray]:
        """P-TopFreq evidence ``(B, N)``: ``count + (last + 1) / (n_baskets + 1)`` for every
        item of the query's history, ``count`` the number of history baskets containing it,
        ``last`` the position (0 = oldest) of the most recent one; and ``n_baskets (B,)``."""
        rows, pos, items, n_b = query_flat(batch)
        b, n = len(batch), self.n_items
        if len(rows) == 0:
            return sp.csr_matrix((b, n), dtype=np.float64), n_b
        key = rows * n + items
        order = np.lexsort((pos, key))  # by (row, item), then basket position
        key_s = key[order]
        last_of_group = np.ones(len(key_s), dtype=bool)
        last_of_group[:-1] = key_s[1:] != key_s[:-1]
        ends = np.flatnonzero(last_of_group)  # the last (most recent) entry of each group
        starts = np.concatenate(([0], ends[:-1] + 1))
        count = (ends - starts + 1).astype(np.float64)
        g_rows, g_items = key_s[ends] // n, key_s[ends] % n
        last = pos[order][ends].astype(np.float64)
        value = count + (last + 1.0) / (n_b[g_rows] + 1.0)
        return sp.csr_matrix((value, (g_rows, g_items)), shape=(b, n)), n_b


# ------------------------------------------------------------------------- G-TopFreq
class GTopFreqConfig(ConfigModel):
    """G-TopFreq: the items in most training baskets, the same list for every user."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: Literal["g-topfreq"] = "g-topfreq"


class GTopFreq(_GlobalFrequency):
    """``score(i)`` = number of training baskets containing ``i`` (ties: lower index first)."""

    def score(self, batch: QueryBatch) -> Tensor:
        return self.global_scores().expand(len(batch), -1).clone()  # (B, N)


# ------------------------------------------------------------------------- P-TopFreq
class PTopFreqConfig(ConfigModel):
    """P-TopFreq: the user's own items by the number of their history baskets containing
    them; ties: the most recent purchase first, then the G-TopFreq order."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: Literal["p-topfreq"] = "p-topfreq"
    short_list: bool = False
    """True: rank only the user's history items (every other item ``-inf``, so a list can be
    shorter than ``k``: the Reality-Check P-TopFreq; such scores are not finite, which the
    contract suite's finiteness and candidate checks refuse). False (default): the other items
    follow below every history item in the *reverse* G-TopFreq order (least frequent first):
    finite and deterministic, but a fill that almost never hits, so the list behaves like the
    short one (unlike GP-TopFreq, whose fill is the most frequent items; the dense index order
    would not do, as the vocabulary is sorted by frequency)."""


class PTopFreq(_GlobalFrequency):
    """History items score ``count + (last + 1) / (n_baskets + 1)`` (> 1); the rest
    ``-(level + 1 / n_items)`` (in ``[-1, 0)``, least frequent first) or ``-inf``
    (``short_list``). An empty history gets the G-TopFreq scores."""

    config: PTopFreqConfig

    def score(self, batch: QueryBatch) -> Tensor:
        require_fitted(self, "levels_")
        assert self.levels_ is not None
        evidence, n_b = self.personal_evidence(batch)
        out = assemble_scores(evidence, self.levels_, True)  # (B, N)
        rest = out < 0  # no evidence: the fallback, in [-1, 0)
        if self.config.short_list:
            out[rest] = float("-inf")
        else:
            fill = torch.from_numpy(-(self.levels_ + 1.0 / self.n_items)).float()  # (N,)
            out = torch.where(rest, fill.unsqueeze(0), out)
        empty = torch.from_numpy(n_b == 0)
        if bool(empty.any()):
            out[empty] = self.global_scores()
        return out


# ------------------------------------------------------------------------ GP-TopFreq
class GPTopFreqConfig(ConfigModel):
    """GP-TopFreq: P-TopFreq, then the remaining items in the G-TopFreq order."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: Literal["gp-topfreq"] = "gp-topfreq"


class GPTopFreq(_GlobalFrequency):
    """History items as P-TopFreq (scores > 1), every other item ``level - 1`` in
    ``[-1, 0)`` by the G-TopFreq order. An empty history gets the G-TopFreq ranking."""

    def score(self, batch: QueryBatch) -> Tensor:
        require_fitted(self, "levels_")
        assert self.levels_ is not None
        evidence, _ = self.personal_evidence(batch)
        return assemble_scores(evidence, self.levels_, True)  # (B, N)


G_SPEC = ModelSpec(
    name="g-topfreq",
    config=GTopFreqConfig,
    task="next-basket",
    build=GTopFreq,
    planted_recall=(0.4, 0.62),
    summary="items in the most training baskets, the same list for every user",
)

P_SPEC = ModelSpec(
    name="p-topfreq",
    config=PTopFreqConfig,
    task="next-basket",
    build=PTopFreq,
    planted_recall=(0.58, 0.8),
    summary="the user's own most frequent items (ties: most recent purchase first)",
)

GP_SPEC = ModelSpec(
    name="gp-topfreq",
    config=GPTopFreqConfig,
    task="next-basket",
    build=GPTopFreq,
    planted_recall=(0.58, 0.8),
    summary="the user's own most frequent items, then the globally most frequent",
)
