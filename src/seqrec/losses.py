"""Losses and negative sampling for next-item training.

Scores are laid out as GRU4Rec does: a (n, M) matrix whose row ``i`` scores the ``M`` output
items ``[targets..., extra negatives...]``, so the target of row ``i`` is column ``i`` and
the other targets of the mini-batch act as negatives.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from seqrec.exceptions import DataError


class ObjectiveConfig(BaseModel):
    """Loss and negatives for next-item training (GRU4Rec's names in brackets).

    Parameters
    ----------
    loss
        ``"cross-entropy"`` (softmax over target + negatives) or ``"bpr-max"``.
    negatives
        ``"sampled"``: the other targets of the mini-batch plus ``n_sample`` extra items drawn
        proportional to popularity^``sample_alpha``; ``"full"``: score every item (full
        softmax, what the reference notebook does).
    n_sample
        Extra shared negatives per step [n_sample]. 0: mini-batch negatives only.
    sample_alpha
        Popularity exponent of the sampling distribution [sample_alpha]: 0 uniform, 1 popularity.
    logq
        Weight of the logQ correction of the sampled softmax [logq]; 0 disables it. Only used
        with cross-entropy and sampled negatives.
    bpreg
        Score regularisation of BPR-max [bpreg].
    elu_param
        ELU applied to scores before BPR-max [elu_param]; 0 disables it.
    sample_cache_size
        How many negative ids are drawn in bulk ahead of time [sample_cache_max_size].
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    loss: Literal["cross-entropy", "bpr-max"] = "cross-entropy"
    negatives: Literal["sampled", "full"] = "sampled"
    n_sample: int = Field(2048, ge=0)
    sample_alpha: float = Field(0.5, ge=0.0, le=1.0)
    logq: float = Field(0.0, ge=0.0)
    bpreg: float = Field(1.0, ge=0.0)
    elu_param: float = Field(0.5, ge=0.0)
    sample_cache_size: int = Field(10_000_000, ge=1)


class PopularitySampler:
    """Draws negative item indices proportional to ``count ** alpha``, in bulk.

    ``cache_size`` ids are drawn at once (one vectorised inverse-CDF search) and served
    ``n_sample`` at a time; padding (count 0) is never drawn.
    """

    def __init__(
        self,
        counts: np.ndarray,
        n_sample: int,
        alpha: float,
        *,
        cache_size: int = 10_000_000,
        generator: torch.Generator,
        device: torch.device | str = "cpu",
    ) -> None:
        counts = np.asarray(counts, dtype=np.float64)
        if n_sample < 1:
            raise ValueError("n_sample must be >= 1")
        if counts.sum() <= 0:
            raise DataError("cannot sample negatives: no item has a positive count")
        w = np.where(counts > 0, counts**alpha, 0.0)
        self.probs = w / w.sum()
        cdf = np.cumsum(self.probs)
        cdf[-1] = 1.0
        self._cdf = torch.tensor(cdf, dtype=torch.float64, device=device)
        self.n_sample = n_sample
        self.n_batches = max(1, cache_size // n_sample)
        self.generator = generator
        self.device = torch.device(device)
        self._pos = self.n_batches
        self._cache = torch.empty(0)

    def _refill(self) -> None:
        u = torch.rand(
            self.n_batches * self.n_sample,
            generator=self.generator,
            dtype=torch.float64,
            device="cpu",
        ).to(self.device)
        idx = torch.searchsorted(self._cdf, u, right=True)
        self._cache = idx.clamp_(max=len(self._cdf) - 1).view(self.n_batches, self.n_sample)
        self._pos = 0

    def sample(self) -> Tensor:
        """The next ``n_sample`` negative item indices, (n_sample,) int64."""
        if self._pos >= self.n_batches:
            self._refill()
        out = self._cache[self._pos]
        self._pos += 1
        return out


def logq_correction(log_q: Tensor, n_targets: int, alpha: float) -> Tensor:
    """log Q of the M output columns: in-batch targets are drawn by the data (q = popularity),
    extra negatives by the sampler (q = popularity^alpha), as the official code does.

    log_q : (M,) log of the raw item counts of the output columns (precomputed once per
    training run: this runs every step); returns (M,)
    """
    return torch.cat([log_q[:n_targets], alpha * log_q[n_targets:]])


def sampled_cross_entropy(scores: Tensor, *, reduction: Literal["sum", "mean"] = "sum") -> Tensor:
    """Softmax cross-entropy with row ``i``'s target in column ``i``. scores: (n, M)."""
    n = scores.shape[0]
    return F.cross_entropy(scores, torch.arange(n, device=scores.device), reduction=reduction)


def full_cross_entropy(
    scores: Tensor, targets: Tensor, *, reduction: Literal["sum", "mean"] = "sum"
) -> Tensor:
    """Softmax cross-entropy over all items. scores: (n, N) (padding already masked); targets: (n,)."""
    return F.cross_entropy(scores, targets, reduction=reduction)


def bpr_max(scores: Tensor, *, bpreg: float = 1.0, elu_param: float = 0.5) -> Tensor:
    """BPR-max loss (Hidasi & Karatzoglou 2018), summed over rows, target of row i in column i.

    ``-log sum_j s_j sigmoid(r_i - r_j) + bpreg * sum_j s_j r_j^2`` where ``s`` is the softmax
    over the negatives (target column excluded).
    """
    if elu_param > 0:
        scores = F.elu(scores, elu_param)
    n, m = scores.shape
    eye = torch.zeros(n, m, dtype=torch.bool, device=scores.device)
    eye[torch.arange(n), torch.arange(n)] = True
    neg_soft = torch.softmax(scores.masked_fill(eye, float("-inf")), dim=1)  # (n, M), 0 on target
    target = scores.diagonal().unsqueeze(1)  # (n, 1)
    ranking = torch.log((torch.sigmoid(target - scores) * neg_soft).sum(1) + 1e-24)
    reg = (scores * scores * neg_soft).sum(1)
    return (-ranking + bpreg * reg).sum()


def bpr(pos_scores: Tensor, neg_scores: Tensor) -> Tensor:
    """Plain BPR: mean of -log sigmoid(pos - neg). pos: (n,), neg: (n,) or (n, k)."""
    if neg_scores.dim() == 2:
        pos_scores = pos_scores.unsqueeze(1)
    return -F.logsigmoid(pos_scores - neg_scores).mean()
