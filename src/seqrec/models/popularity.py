"""Popularity baselines: ``pop`` (training counts), ``spop`` (counts in the session, then
popularity) and ``recent-pop`` (counts in the last days of the training data).

Definitions, sources and the tie / empty-history policy: ``docs/models/baselines.md``."""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import ConfigDict, Field
from torch import Tensor

from seqrec._config import ConfigModel
from seqrec.data.query import QueryBatch
from seqrec.data.sequences import SequenceData
from seqrec.exceptions import DataError
from seqrec.models._scoring import (
    assemble_scores,
    history_window,
    popularity_levels,
    query_matrix,
    require_fitted,
)
from seqrec.models.base import ArrayModel, ModelSpec


class PopularityConfig(ConfigModel):
    """Most-popular items, the same list for every session (ties: lower index first)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: Literal["pop"] = "pop"


class Popularity(ArrayModel):
    """Scores = log(1 + training count) of each item; padding gets -inf."""

    state_fields = ("scores_",)

    def __init__(self, config: PopularityConfig, n_items: int) -> None:
        super().__init__(config, n_items)
        self.scores_ = np.zeros(n_items, dtype=np.float32)

    def fit(self, data: SequenceData) -> Popularity:
        s = np.log1p(data.item_counts().astype(np.float64)).astype(np.float32)
        s[0] = -np.inf
        self.scores_ = s
        return self

    def score(self, batch: QueryBatch) -> Tensor:
        s = torch.from_numpy(self.scores_).to(batch.device)
        return s.unsqueeze(0).expand(len(batch), -1).clone()  # (B, N)


SPEC = ModelSpec(
    name="pop",
    config=PopularityConfig,
    task="next-item",
    build=Popularity,
    planted_recall=(0.1, 0.35),
    summary="most popular training items, the same list for every query",
)


# ---------------------------------------------------------------------------- S-POP
class SessionPopularityConfig(ConfigModel):
    """S-POP: the items of the current session by how often they occur in it, then the rest by
    training popularity (GRU4Rec's ``baselines.SessionPop``, Ludewig & Jannach 2018)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: Literal["spop"] = "spop"
    tie_break_popularity: bool = True
    """Order session items with equal counts by training popularity (as the official
    ``supp_si + supp_i / (1 + supp_i)``). Off: they stay tied."""


class SessionPopularity(ArrayModel):
    """``score(i) = count of i in the query's history``; items not in it get the popularity
    fallback below (an empty history gets exactly the ``pop`` ranking)."""

    state_fields = ("pop_level_",)

    def __init__(self, config: SessionPopularityConfig, n_items: int) -> None:
        super().__init__(config, n_items)
        self.pop_level_: np.ndarray | None = None

    def fit(self, data: SequenceData) -> SessionPopularity:
        self.pop_level_ = popularity_levels(data.item_counts())
        return self

    def score(self, batch: QueryBatch) -> Tensor:
        require_fitted(self, "pop_level_")
        rows, items, _, _ = history_window(batch)
        counts = query_matrix(rows, items, None, (len(batch), self.n_items))  # (B, N)
        return assemble_scores(counts, self.pop_level_, self.config.tie_break_popularity)


# ------------------------------------------------------------------------ recent pop
class RecentPopularityConfig(ConfigModel):
    """Popularity over the last ``days`` days of the training data (session-rec's ``RPop``).

    The window is ``[t_max - days * 86400, t_max]`` with ``t_max`` the last training
    timestamp (no calendar-day rounding, unlike session-rec). Needs timestamps."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: Literal["recent-pop"] = "recent-pop"
    days: float = Field(1.0, gt=0)
    """Window length in days (session-rec's ``num_days`` default, 1)."""
    tie_break_popularity: bool = True
    """Order items with equal window counts by all-time training popularity."""


class RecentPopularity(ArrayModel):
    """``score(i) = events of i in the window``; items not seen in the window follow below,
    ordered by all-time popularity. The same list for every query."""

    state_fields = ("recent_counts_", "pop_level_")

    def __init__(self, config: RecentPopularityConfig, n_items: int) -> None:
        super().__init__(config, n_items)
        self.recent_counts_: np.ndarray | None = None
        self.pop_level_: np.ndarray | None = None

    def fit(self, data: SequenceData) -> RecentPopularity:
        if data.timestamps is None:
            raise DataError(
                "recent-pop needs event timestamps; the training data has none (give the "
                "frame a time column, or use the 'pop' model)"
            )
        counts = data.item_counts()
        recent = np.zeros(self.n_items, dtype=np.int64)
        if data.n_events:
            t0 = float(data.timestamps.max()) - self.config.days * 86400.0
            inside = data.timestamps >= t0
            recent = np.bincount(data.items[inside], minlength=self.n_items).astype(np.int64)
        self.recent_counts_ = recent
        self.pop_level_ = popularity_levels(counts)
        return self

    def score(self, batch: QueryBatch) -> Tensor:
        require_fitted(self, "recent_counts_")
        one = sp.csr_matrix(self.recent_counts_.astype(np.float64)[None, :])  # (1, N)
        s = assemble_scores(one, self.pop_level_, self.config.tie_break_popularity)
        return s.expand(len(batch), -1).clone()  # (B, N)


SPOP_SPEC = ModelSpec(
    name="spop",
    config=SessionPopularityConfig,
    task="next-item",
    build=SessionPopularity,
    planted_recall=(0.1, 0.35),
    summary="items of the session by their count in it, then popular items",
)

RECENT_POP_SPEC = ModelSpec(
    name="recent-pop",
    config=RecentPopularityConfig,
    task="next-item",
    build=RecentPopularity,
    planted_recall=(0.1, 0.35),
    summary="most popular items of the last days of the training data",
)
