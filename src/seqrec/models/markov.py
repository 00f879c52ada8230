"""Transition baselines scored from the query's last item: ``markov`` (first-order Markov
chain) and ``sr`` (sequential rules, Ludewig & Jannach 2018).

Both learn a sparse item x item matrix ``M`` from the training sequences and score a query
with the row of its most recent item: ``score(j) = M[last, j]``; items without a rule (and
every item for an empty history or an unseen last item) get the popularity fallback below.
Definitions, sources and deviations: ``docs/models/baselines.md``.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import scipy.sparse as sp
from pydantic import ConfigDict, Field
from torch import Tensor

from seqrec._config import ConfigModel
from seqrec.data.query import QueryBatch
from seqrec.data.sequences import SequenceData
from seqrec.models._scoring import (
    assemble_scores,
    last_items,
    popularity_levels,
    require_fitted,
    topk_per_row,
)
from seqrec.models.base import ArrayModel, ModelSpec

Weighting = Literal["div", "linear", "same", "quadratic", "log"]


def gap_weight(weighting: Weighting, gap: int) -> float:
    """Weight of a rule ``a -> b`` whose ``b`` comes ``gap`` positions after ``a``
    (session-rec's ``SequentialRules`` weighting functions; ``linear`` clipped at 0)."""
    if weighting == "div":
        return 1.0 / gap
    if weighting == "linear":
        return max(0.0, (10 - gap) / 10)
    if weighting == "same":
        return 1.0
    if weighting == "quadratic":
        return 1.0 / (gap * gap)
    return float(1.0 / np.log10(gap + 1.7))  # "log"


def _integer_scale(weighting: Weighting, steps: int) -> int | None:
    """A scale ``c`` making ``c * gap_weight(g)`` an integer for every ``g <= steps`` (None for
    ``log``, or when ``c`` is too large for exact float64 sums). Rule weights are summed as
    integers and divided by ``c`` once, so equal rule weights are exactly equal whatever the
    summation order (ties, pruning and the tie-break are then exact)."""
    if weighting == "same":
        return 1
    if weighting == "linear":
        return 10
    if weighting == "log":
        return None
    c = math.lcm(*range(1, steps + 1))
    if weighting == "quadratic":
        c = c * c
    return c if c <= 2**30 else None


def rule_matrix(data: SequenceData, steps: int, weighting: Weighting = "same") -> sp.csr_matrix:
    """``M[a, b] = sum over pairs (a at t, b at t + g), 1 <= g <= steps, same sequence, of
    weight(g)``, as float64 CSR ``(n_items, n_items)``. One vectorised pass per gap ``g``
    (a loop over at most ``steps`` offsets, never over sequences)."""
    n = data.n_items
    items = data.items.astype(np.int64)
    seq = np.repeat(np.arange(len(data), dtype=np.int64), data.lengths)
    scale = _integer_scale(weighting, steps)
    src, dst, w = [], [], []
    for g in range(1, steps + 1):
        if g >= len(items):
            break
        same = seq[:-g] == seq[g:]
        weight = gap_weight(weighting, g)
        if weight <= 0 or not same.any():
            continue
        if scale is not None:
            weight = float(round(weight * scale))  # an exact integer
        src.append(items[:-g][same])
        dst.append(items[g:][same])
        w.append(np.full(int(same.sum()), weight))
    if not src:
        return sp.csr_matrix((n, n), dtype=np.float64)
    m = sp.csr_matrix((np.concatenate(w), (np.concatenate(src), np.concatenate(dst))), shape=(n, n))
    m.sum_duplicates()
    if scale is not None and scale != 1:
        m.data = m.data / scale
    return m


# ---------------------------------------------------------------------------- Markov
class MarkovConfig(ConfigModel):
    """First-order Markov chain: ``score(j) = #(last -> j)`` transitions in training."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: Literal["markov"] = "markov"
    normalize: bool = False
    """Score with ``P(j | last) = #(last -> j) / #(last -> *)`` instead of raw counts (the
    ranking of a query is the same; the score values are probabilities)."""
    pruning: int = Field(0, ge=0)
    """Keep only the ``pruning`` most frequent successors of each item (0: keep all;
    session-rec's ``MarkovModel`` uses 20)."""
    tie_break_popularity: bool = True
    """Order successors with equal scores by training popularity."""


class Markov(ArrayModel):
    """Transition counts (or probabilities) from the query's last item."""

    state_fields = ("transitions_", "pop_level_")

    def __init__(self, config: MarkovConfig, n_items: int) -> None:
        super().__init__(config, n_items)
        self.transitions_: sp.csr_matrix | None = None
        self.pop_level_: np.ndarray | None = None

    def fit(self, data: SequenceData) -> Markov:
        counts = rule_matrix(data, steps=1)  # (N, N) consecutive pairs
        out_degree = np.asarray(counts.sum(axis=1)).ravel()
        m = topk_per_row(counts, self.config.pruning)
        if self.config.normalize:
            rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
            m.data = m.data / out_degree[rows]
        self.transitions_ = m
        self.pop_level_ = popularity_levels(data.item_counts())
        return self

    def score(self, batch: QueryBatch) -> Tensor:
        require_fitted(self, "transitions_")
        evidence = self.transitions_[last_items(batch)]  # (B, N); row 0 (empty) has no rules
        return assemble_scores(evidence, self.pop_level_, self.config.tie_break_popularity)


# ------------------------------------------------------------------ sequential rules
class SequentialRulesConfig(ConfigModel):
    """Sequential rules (Ludewig & Jannach 2018; session-rec ``SequentialRules``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: Literal["sr"] = "sr"
    steps: int = Field(10, ge=1)
    """A rule ``a -> b`` is counted when ``b`` follows ``a`` at most ``steps`` positions later
    in a training session (session-rec default 10)."""
    weighting: Weighting = "div"
    """Weight of a rule occurrence at gap ``g``: ``div`` ``1/g`` (session-rec default),
    ``linear`` ``max(0, 1 - 0.1 g)``, ``same`` 1, ``quadratic`` ``1/g^2``, ``log``
    ``1/log10(g + 1.7)``."""
    pruning: int = Field(20, ge=0)
    """Keep the ``pruning`` strongest rules per item (session-rec default 20; 0: all)."""
    tie_break_popularity: bool = True
    """Order items with equal rule weights by training popularity."""


class SequentialRules(ArrayModel):
    """``score(j) = sum of the weights of the rules last -> j``."""

    state_fields = ("rules_", "pop_level_")

    def __init__(self, config: SequentialRulesConfig, n_items: int) -> None:
        super().__init__(config, n_items)
        self.rules_: sp.csr_matrix | None = None
        self.pop_level_: np.ndarray | None = None

    def fit(self, data: SequenceData) -> SequentialRules:
        rules = rule_matrix(data, self.config.steps, self.config.weighting)
        self.rules_ = topk_per_row(rules, self.config.pruning)
        self.pop_level_ = popularity_levels(data.item_counts())
        return self

    def score(self, batch: QueryBatch) -> Tensor:
        require_fitted(self, "rules_")
        evidence = self.rules_[last_items(batch)]  # (B, N)
        return assemble_scores(evidence, self.pop_level_, self.config.tie_break_popularity)


MARKOV_SPEC = ModelSpec(
    name="markov",
    config=MarkovConfig,
    task="next-item",
    build=Markov,
    planted_recall=(0.85, 1.0),
    summary="first-order Markov chain: successors of the last item by transition count",
)

SR_SPEC = ModelSpec(
    name="sr",
    config=SequentialRulesConfig,
    task="next-item",
    build=SequentialRules,
    planted_recall=(0.85, 1.0),
    summary="sequential rules: items that follow the last item within a few steps, 1/gap weighted",
)
