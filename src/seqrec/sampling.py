"""Negative samplers: popularity^alpha (GRU4Rec's), drawn in bulk with a guide table."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from seqrec.exceptions import DataError


class PopularitySampler:
    """Draws negative item indices proportional to ``count ** alpha``, in bulk.

    Draws are inverse-CDF lookups accelerated by a guide table (Chen & Asau, 1974): the unit
    interval is cut into ``4 * n_items`` buckets that each know the first item they can map
    to, so almost every draw is one table read and one comparison instead of a binary search.
    ``cache_size`` ids are drawn at once and served ``n_sample`` at a time by :meth:`sample`;
    padding (count 0) is never drawn.
    """

    def __init__(
        self,
        counts: np.ndarray,
        n_sample: int,
        alpha: float,
        *,
        cache_size: int = 10_000_000,
        rng: np.random.Generator,
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
        self._cdf = cdf
        n_buckets = 4 * len(cdf)
        edges = np.arange(n_buckets + 1) / n_buckets
        # the answer for u in bucket g is lo[g] if u < cdf[lo[g]], else lo[g] + 1, unless the
        # bucket holds more than one item boundary ("hard", then a binary search)
        self._lo = np.searchsorted(cdf, edges[:-1], side="right")
        self._threshold = cdf[self._lo]
        hi = np.searchsorted(cdf, edges[1:], side="right")
        self._hard = hi - self._lo > 1
        self._any_hard = bool(self._hard.any())
        self._n_buckets = n_buckets
        self.n_sample = n_sample
        self.n_batches = max(1, cache_size // n_sample)
        self.rng = rng
        self.device = torch.device(device)
        self._pos = self.n_batches
        self._cache = torch.empty(0)

    def draw(self, shape: int | tuple[int, ...]) -> np.ndarray:
        """``shape`` independent draws, int64."""
        u = self.rng.random(shape)
        g = (u * self._n_buckets).astype(np.intp)
        ids = self._lo.take(g)
        ids += self._threshold.take(g) <= u
        if self._any_hard:
            hard = self._hard.take(g)
            if hard.any():
                ids[hard] = np.searchsorted(self._cdf, u[hard], side="right")
        return ids

    def _refill(self) -> None:
        ids = self.draw((self.n_batches, self.n_sample))
        self._cache = torch.from_numpy(ids).to(self.device)
        self._pos = 0

    def sample(self) -> Tensor:
        """The next ``n_sample`` negative item indices, (n_sample,) int64."""
        if self._pos >= self.n_batches:
            self._refill()
        out = self._cache[self._pos]
        self._pos += 1
        return out

    def state_dict(self) -> dict[str, object]:
        """The bulk cache and its position (the RNG is the caller's): enough to continue
        the exact stream of draws after a checkpoint."""
        return {"cache": self._cache.cpu(), "pos": self._pos}

    def load_state_dict(self, state: dict[str, object]) -> None:
        self._cache = state["cache"].to(self.device)  # type: ignore[union-attr]
        self._pos = int(state["pos"])  # type: ignore[arg-type]
