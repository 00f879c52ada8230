"""Popularity baseline: ranks every item by its number of training events."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict
from torch import Tensor, nn


class PopularityConfig(BaseModel):
    """Most-popular items, the same list for every session (ties: lower index first)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: Literal["pop"] = "pop"


class Popularity(nn.Module):
    """Scores = log(1 + training count) of each item; padding gets -inf."""

    def __init__(self, config: PopularityConfig, n_items: int) -> None:
        super().__init__()
        self.config = config
        self.n_items = n_items
        self.register_buffer("scores", torch.zeros(n_items))

    def fit_counts(self, counts: np.ndarray) -> None:
        s = torch.log1p(torch.as_tensor(np.asarray(counts, dtype=np.float64), dtype=torch.float32))
        s[0] = float("-inf")
        self.scores.copy_(s)

    def encode(self, items: Tensor, lengths: Tensor) -> Tensor:
        return torch.zeros(items.shape[0], 1, device=items.device)  # (B, 1): no state

    def score(self, out: Tensor, items: Tensor | None = None) -> Tensor:
        s = self.scores if items is None else self.scores[items]
        return s.unsqueeze(0).expand(out.shape[0], -1)  # (B, N|M)

    def forward(self, items: Tensor, lengths: Tensor) -> Tensor:
        return self.score(self.encode(items, lengths))
