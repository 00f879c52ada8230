"""Ranking and set metrics, vectorised over the batch and usable on any torch device.

Next-item evaluation works in two steps, as in GRU4Rec's ``batch_eval``:

1. :func:`target_ranks` (full ranking) or :func:`sampled_target_ranks` (sampled negatives)
   turn a ``(B, N)`` score matrix and the ``(B,)`` targets into one 1-based rank per query,
   with a single batched comparison and an explicit tie policy.
2. :func:`recall_at_k`, :func:`hit_rate_at_k`, :func:`mrr_at_k` and :func:`ndcg_at_k` map
   ranks to per-query values; :class:`RankAccumulator` collects ranks over many batches
   without synchronising the device and averages them at the end.

Tie policies (``ties=``)
------------------------
``"conservative"`` (default)
    rank = number of items whose score is ``>=`` the target's (the target counts itself), so
    the target ranks below every item it ties with. A model that gives every item the same
    score gets the worst possible rank instead of a perfect one.
``"optimistic"``
    rank = 1 + number of items whose score is ``>`` the target's.
``"average"``
    the mean of the two (GRU4Rec's ``"median"`` mode); ranks may then be fractional.

NaN scores are treated as ``-inf``: they never beat a finite target score and tie with a
``-inf`` (or NaN) target. Masked columns are left out of the comparison altogether.

Set metrics for next-basket prediction (:func:`basket_precision_recall_at_k`,
:func:`f1_micro_macro`) are in the same module.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Literal, get_args

import numpy as np
import torch
from torch import Tensor

from seqrec.exceptions import ConfigError

Ties = Literal["conservative", "optimistic", "average"]
"""Tie policy of :func:`target_ranks` and :func:`sampled_target_ranks`."""

TIES: tuple[str, ...] = get_args(Ties)

RANK_DTYPE = torch.float32
"""Ranks are float32: exact for integers below 2**24 and halves below 2**23."""


# ---------------------------------------------------------------------------- helpers
def _check_ties(ties: str) -> None:
    if ties not in TIES:
        raise ConfigError(f"unknown tie policy {ties!r}; use one of {list(TIES)}")


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"cutoff k must be a positive integer, got {k!r}")


def _nan_to_neg_inf(x: Tensor) -> Tensor:
    if not bool(torch.isnan(x).any()):  # one cheap pass; copy only when needed
        return x
    return torch.nan_to_num(x, nan=float("-inf"), posinf=float("inf"), neginf=float("-inf"))


def _acc_dtype(device: torch.device) -> torch.dtype:
    """float64 for exact-enough reductions, except where the backend lacks it (MPS)."""
    return torch.float32 if device.type == "mps" else torch.float64


def _combine(n_greater: Tensor, n_equal: Tensor, ties: str) -> Tensor:
    """1-based rank from counts of strictly better and tied competitors (target excluded)."""
    better = n_greater.to(RANK_DTYPE)
    if ties == "optimistic":
        return better + 1.0
    if ties == "conservative":
        return better + n_equal.to(RANK_DTYPE) + 1.0
    return better + 0.5 * n_equal.to(RANK_DTYPE) + 1.0


def _as_float_ranks(ranks: Tensor) -> Tensor:
    if ranks.ndim != 1:
        raise ValueError(f"ranks must be 1-D (n_queries,), got shape {tuple(ranks.shape)}")
    return ranks if ranks.is_floating_point() else ranks.to(RANK_DTYPE)


# ---------------------------------------------------------------------------- ranks
def target_ranks(
    scores: Tensor,
    targets: Tensor,
    *,
    ties: Ties = "conservative",
    mask: Tensor | None = None,
) -> Tensor:
    """1-based rank of each target among all columns of ``scores`` (full ranking).

    One batched comparison on the device of ``scores``; no Python loop over queries.

    Parameters
    ----------
    scores
        ``(B, N)`` scores, higher is better. NaN is treated as ``-inf``.
    targets
        ``(B,)`` integer column of the target of each row.
    ties
        ``"conservative"`` (rank = #columns scoring ``>=`` the target, the target included),
        ``"optimistic"`` (1 + #columns scoring ``>``) or ``"average"`` (their mean).
    mask
        Optional ``(B, N)`` bool, ``True`` for columns to exclude (padding column 0, items
        already seen in the session, ...). Excluded columns never compete with the target,
        whatever their score; the target's own column is never excluded, even if masked.

    Returns
    -------
    Tensor
        ``(B,)`` float32 ranks in ``[1, N]`` (fractional only with ``ties="average"``).

    Raises
    ------
    ConfigError
        Unknown ``ties``.
    ValueError
        Shapes do not fit together.

    Examples
    --------
    >>> scores = torch.tensor([[0.0, 0.9, 0.5, 0.5], [0.0, 0.1, 0.2, 0.3]])
    >>> target_ranks(scores, torch.tensor([2, 3]))
    tensor([3., 1.])
    >>> target_ranks(scores, torch.tensor([2, 3]), ties="optimistic")
    tensor([2., 1.])
    >>> mask = torch.tensor([[False, True, False, False], [False] * 4])
    >>> target_ranks(scores, torch.tensor([2, 3]), mask=mask)
    tensor([2., 1.])
    """
    _check_ties(ties)
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-D (B, N), got shape {tuple(scores.shape)}")
    if targets.ndim != 1 or targets.shape[0] != scores.shape[0]:
        raise ValueError(
            f"targets must be 1-D with one entry per row of scores ({scores.shape[0]}), "
            f"got shape {tuple(targets.shape)}"
        )
    if mask is not None and mask.shape != scores.shape:
        raise ValueError(
            f"mask must have the shape of scores {tuple(scores.shape)}, got {tuple(mask.shape)}"
        )
    scores = _nan_to_neg_inf(scores)
    idx = targets.to(device=scores.device, dtype=torch.long).unsqueeze(1)  # (B, 1)
    target_score = scores.gather(1, idx)  # (B, 1)
    # the target's own column never counts: it is never > itself, and it is always == itself
    # (also at -inf, NaN having been replaced), so without a mask subtracting 1 removes it
    if mask is None:
        if ties == "conservative":  # one pass: #(>=) counts the target itself once
            return (scores >= target_score).sum(1).to(RANK_DTYPE)
        n_greater = (scores > target_score).sum(1)  # (B,)
        if ties == "optimistic":
            return _combine(n_greater, n_greater, ties)
        n_equal = (scores == target_score).sum(1) - 1  # (B,)
        return _combine(n_greater, n_equal, ties)
    compete = ~mask.to(device=scores.device, dtype=torch.bool)
    compete = compete.scatter(1, idx, False)  # (B, N) the target's column is never masked
    n_greater = ((scores > target_score) & compete).sum(1)  # (B,)
    if ties == "optimistic":
        return _combine(n_greater, n_greater, ties)
    n_equal = ((scores == target_score) & compete).sum(1)  # (B,)
    return _combine(n_greater, n_equal, ties)


def sampled_target_ranks(
    scores: Tensor,
    targets: Tensor,
    candidates: Tensor,
    *,
    ties: Ties = "conservative",
) -> Tensor:
    """1-based rank of each target among itself and ``C`` sampled candidate columns.

    Sampled-negative evaluation (as in the SASRec/BERT4Rec papers) overestimates accuracy
    compared with full ranking; use it only when asked and record it in the protocol.

    Parameters
    ----------
    scores
        ``(B, N)`` scores, higher is better. NaN is treated as ``-inf``.
    targets
        ``(B,)`` integer target column of each row.
    candidates
        ``(B, C)`` integer columns of the negatives of each row. An entry equal to the
        row's target is ignored (a negative sampler may draw the target); repeated
        entries count once per occurrence.
    ties
        Tie policy, as in :func:`target_ranks`.

    Returns
    -------
    Tensor
        ``(B,)`` float32 ranks in ``[1, C + 1]``.

    Examples
    --------
    >>> scores = torch.tensor([[0.0, 0.9, 0.5, 0.5, 0.8]])
    >>> sampled_target_ranks(scores, torch.tensor([2]), torch.tensor([[3, 4]]))
    tensor([3.])
    >>> sampled_target_ranks(scores, torch.tensor([2]), torch.tensor([[3, 2]]), ties="average")
    tensor([1.5000])
    """
    _check_ties(ties)
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-D (B, N), got shape {tuple(scores.shape)}")
    if targets.ndim != 1 or targets.shape[0] != scores.shape[0]:
        raise ValueError(
            f"targets must be 1-D with one entry per row of scores ({scores.shape[0]}), "
            f"got shape {tuple(targets.shape)}"
        )
    if candidates.ndim != 2 or candidates.shape[0] != scores.shape[0]:
        raise ValueError(
            f"candidates must be 2-D (B, C) with B = {scores.shape[0]}, "
            f"got shape {tuple(candidates.shape)}"
        )
    scores = _nan_to_neg_inf(scores)
    idx = targets.to(device=scores.device, dtype=torch.long).unsqueeze(1)  # (B, 1)
    cand = candidates.to(device=scores.device, dtype=torch.long)  # (B, C)
    target_score = scores.gather(1, idx)  # (B, 1)
    cand_score = scores.gather(1, cand)  # (B, C)
    compete = cand != idx  # (B, C)
    n_greater = ((cand_score > target_score) & compete).sum(1)
    n_equal = ((cand_score == target_score) & compete).sum(1)
    return _combine(n_greater, n_equal, ties)


# ---------------------------------------------------------------------------- per-query metrics
def recall_at_k(ranks: Tensor, k: int) -> Tensor:
    """Per-query Recall@k for one target per query: 1 if ``rank <= k`` else 0.

    Parameters
    ----------
    ranks
        ``(B,)`` 1-based ranks (may be fractional, from ``ties="average"``).
    k
        Cutoff, a positive integer.

    Returns
    -------
    Tensor
        ``(B,)`` float values; average (or weight) them yourself.

    Examples
    --------
    >>> recall_at_k(torch.tensor([1.0, 3.0, 20.5]), 20)
    tensor([1., 1., 0.])
    """
    _check_k(k)
    ranks = _as_float_ranks(ranks)
    return (ranks <= k).to(ranks.dtype)


def hit_rate_at_k(ranks: Tensor, k: int) -> Tensor:
    """Per-query HitRate@k; equal to :func:`recall_at_k` when each query has one target.

    Examples
    --------
    >>> hit_rate_at_k(torch.tensor([1.0, 3.0, 21.0]), 20)
    tensor([1., 1., 0.])
    """
    return recall_at_k(ranks, k)


def mrr_at_k(ranks: Tensor, k: int) -> Tensor:
    """Per-query reciprocal rank cut at ``k``: ``1 / rank`` if ``rank <= k`` else 0.

    Examples
    --------
    >>> mrr_at_k(torch.tensor([1.0, 4.0, 30.0]), 20)
    tensor([1.0000, 0.2500, 0.0000])
    """
    _check_k(k)
    ranks = _as_float_ranks(ranks)
    return torch.where(ranks <= k, 1.0 / ranks, torch.zeros_like(ranks))


def ndcg_at_k(ranks: Tensor, k: int) -> Tensor:
    """Per-query NDCG@k for one relevant item: ``1 / log2(rank + 1)`` if ``rank <= k`` else 0.

    With a single relevant item the ideal DCG is 1, so no normalisation is needed.

    Examples
    --------
    >>> ndcg_at_k(torch.tensor([1.0, 3.0, 11.0]), 10)
    tensor([1.0000, 0.5000, 0.0000])
    """
    _check_k(k)
    ranks = _as_float_ranks(ranks)
    return torch.where(ranks <= k, 1.0 / torch.log2(ranks + 1.0), torch.zeros_like(ranks))


RANK_METRICS = {
    "recall": recall_at_k,
    "hit": hit_rate_at_k,
    "mrr": mrr_at_k,
    "ndcg": ndcg_at_k,
}
"""Registry of rank metrics by name, as used in ``"name@k"`` strings."""

_METRIC_RE = re.compile(r"^\s*([a-z_]+)\s*(?:@\s*(\d+))?\s*$")


def parse_metrics(names: Iterable[str], ks: Iterable[int] | None = None) -> list[tuple[str, int]]:
    """Validate metric names and return ``(name, k)`` pairs, in order, without duplicates.

    Parameters
    ----------
    names
        Strings ``"name@k"`` (``"recall@20"``, ``"mrr@20"``, ``"ndcg@10"``, ``"hit@10"``;
        case-insensitive) or bare names (``"recall"``), which are combined with every
        cutoff in ``ks``.
    ks
        Cutoffs for bare names. Ignored by names that carry their own ``@k``.

    Raises
    ------
    ConfigError
        Unknown metric, malformed string, bare name without ``ks``, or ``k < 1``.

    Examples
    --------
    >>> parse_metrics(["recall@20", "MRR@20"])
    [('recall', 20), ('mrr', 20)]
    >>> parse_metrics(["ndcg"], ks=[10, 20])
    [('ndcg', 10), ('ndcg', 20)]
    """
    if isinstance(names, str):
        names = [names]
    ks_list = None if ks is None else [ks] if isinstance(ks, int) else list(ks)
    for k in ks_list or ():
        _check_k(k)
    valid = ", ".join(f"{n}@K" for n in RANK_METRICS)
    out: list[tuple[str, int]] = []
    for raw in names:
        match = _METRIC_RE.match(str(raw).lower())
        if match is None or match.group(1) not in RANK_METRICS:
            raise ConfigError(f"unknown metric {raw!r}; valid metrics are {valid} (K >= 1)")
        name, k_str = match.group(1), match.group(2)
        if k_str is not None:
            cutoffs = [int(k_str)]
        elif ks_list:
            cutoffs = ks_list
        else:
            raise ConfigError(f"metric {raw!r} has no cutoff; write it as {raw}@K or pass ks")
        for k in cutoffs:
            _check_k(k)
            if (name, k) not in out:
                out.append((name, k))
    return out


class RankAccumulator:
    """Collects target ranks over many batches and averages metrics at the end.

    ``add`` only stores the (detached) rank tensor on its device, so evaluation loops do
    not synchronise with the GPU per batch; ``compute`` concatenates once and moves all
    metric values to the host in one transfer.

    Examples
    --------
    >>> acc = RankAccumulator()
    >>> acc.add(torch.tensor([1.0, 2.0]))
    >>> acc.add(torch.tensor([30.0]))
    >>> acc.n
    3
    >>> acc.compute(["recall@20", "mrr@20"])
    {'recall@20': 0.6666666666666666, 'mrr@20': 0.5}
    """

    def __init__(self) -> None:
        self._chunks: list[Tensor] = []
        self._n = 0

    @property
    def n(self) -> int:
        """Number of ranks (queries) added so far."""
        return self._n

    def add(self, ranks: Tensor) -> None:
        """Add a ``(B,)`` batch of 1-based ranks (from :func:`target_ranks`)."""
        ranks = _as_float_ranks(ranks.detach())
        self._chunks.append(ranks)
        self._n += int(ranks.shape[0])

    def ranks(self) -> Tensor:
        """All ranks added so far, concatenated, ``(n,)`` (on the device they came from)."""
        if not self._chunks:
            return torch.empty(0, dtype=RANK_DTYPE)
        if len(self._chunks) > 1:
            self._chunks = [torch.cat(self._chunks)]
        return self._chunks[0]

    def reset(self) -> None:
        """Forget every rank added so far."""
        self._chunks = []
        self._n = 0

    def compute(
        self,
        metrics: Sequence[str] = ("recall@20", "mrr@20", "ndcg@20"),
        ks: Iterable[int] | None = None,
    ) -> dict[str, float]:
        """Mean of each metric over all queries added, keyed ``"name@k"``.

        Parameters
        ----------
        metrics
            Metric strings, see :func:`parse_metrics`.
        ks
            Cutoffs for bare metric names.

        Returns
        -------
        dict
            ``{"recall@20": ..., "mrr@20": ...}``; values are NaN when nothing was added.
        """
        parsed = parse_metrics(metrics, ks)
        if self._n == 0:
            return {f"{name}@{k}": float("nan") for name, k in parsed}
        ranks = self.ranks()
        dtype = _acc_dtype(ranks.device)
        values = torch.stack(
            [RANK_METRICS[name](ranks, k).to(dtype).mean() for name, k in parsed]
        ).tolist()  # one device -> host transfer
        return {f"{name}@{k}": v for (name, k), v in zip(parsed, values, strict=True)}

    def per_query(
        self, metrics: Sequence[str] = ("recall@20", "mrr@20", "ndcg@20")
    ) -> dict[str, np.ndarray]:
        """The value of each metric for every query added (in the order added), as float32
        arrays keyed ``"name@k"``, plus ``"rank"`` (the 1-based ranks; ``inf`` for a target
        that could not be ranked). Their means are :meth:`compute`'s values."""
        parsed = parse_metrics(metrics)
        ranks = self.ranks()
        out = {"rank": ranks.to(torch.float32).cpu().numpy()}
        for name, k in parsed:
            out[f"{name}@{k}"] = RANK_METRICS[name](ranks, k).to(torch.float32).cpu().numpy()
        return out

    def __repr__(self) -> str:
        return f"RankAccumulator(n={self._n})"


# ---------------------------------------------------------------------------- set metrics
def basket_precision_recall_at_k(
    scores: Tensor,
    target_multi_hot: Tensor,
    k: int,
    *,
    mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Per-query Precision@k and Recall@k of the top-``k`` scored items against a basket.

    Parameters
    ----------
    scores
        ``(B, N)`` scores, higher is better. NaN is treated as ``-inf``.
    target_multi_hot
        ``(B, N)`` bool, ``True`` for the items of the next basket (a repeated item counts
        once).
    k
        Cutoff. Precision divides by ``k`` even if fewer than ``k`` columns exist.
    mask
        Optional ``(B, N)`` bool of columns that may not be recommended (e.g. padding).
        Masked target items still count in the recall denominator.

    Returns
    -------
    (precision, recall)
        Two ``(B,)`` float tensors. Recall is 0 for rows with an empty target (the
        ``zero_division=0`` convention); drop such rows first if they should not count.
        Ties at the k-th place are broken by ``torch.topk`` (arbitrarily).

    Examples
    --------
    >>> scores = torch.tensor([[0.9, 0.8, 0.1, 0.0], [0.1, 0.2, 0.3, 0.4]])
    >>> target = torch.tensor([[True, False, True, False], [False] * 4])
    >>> basket_precision_recall_at_k(scores, target, 2)
    (tensor([0.5000, 0.0000]), tensor([0.5000, 0.0000]))
    """
    _check_k(k)
    if scores.ndim != 2 or target_multi_hot.shape != scores.shape:
        raise ValueError(
            f"scores and target_multi_hot must both be (B, N); got {tuple(scores.shape)} "
            f"and {tuple(target_multi_hot.shape)}"
        )
    scores = _nan_to_neg_inf(scores)
    target = target_multi_hot.to(device=scores.device, dtype=torch.bool)
    if mask is not None:
        if mask.shape != scores.shape:
            raise ValueError(f"mask must be {tuple(scores.shape)}, got {tuple(mask.shape)}")
        mask = mask.to(device=scores.device, dtype=torch.bool)
        scores = scores.masked_fill(mask, float("-inf"))
    dtype = scores.dtype if scores.dtype in (torch.float32, torch.float64) else torch.float32
    top = scores.topk(min(k, scores.shape[1]), dim=1).indices  # (B, k)
    hits = target.gather(1, top)  # (B, k)
    if mask is not None:  # masked columns reach the top-k only when too few others remain
        hits = hits & ~mask.gather(1, top)
    n_hits = hits.sum(1).to(dtype)  # (B,)
    n_target = target.sum(1).to(dtype)  # (B,)
    precision = n_hits / k
    recall = torch.where(n_target > 0, n_hits / n_target.clamp_min(1), torch.zeros_like(n_hits))
    return precision, recall


def f1_micro_macro(
    pred: Tensor,
    target: Tensor,
    *,
    labels: Literal["present", "all"] = "present",
) -> tuple[Tensor, Tensor]:
    """Micro and macro F1 of multi-label predictions (e.g. a predicted next basket).

    Micro F1 pools true/false positives and negatives over all cells: ``2TP / (2TP + FP + FN)``.
    Macro F1 is the unweighted mean of the per-item F1.

    Parameters
    ----------
    pred, target
        ``(B, N)`` bool multi-hot matrices (rows = queries, columns = items).
    labels
        Which items macro F1 averages over. ``"present"`` (default): items that occur in
        ``target`` or ``pred`` of at least one row, so columns that no row mentions (padding,
        unused vocabulary) do not dilute the average; this equals scikit-learn's
        ``f1_score(target, pred, average="macro", labels=<those columns>, zero_division=0)``
        and ``f1_score(..., average="macro", zero_division=np.nan)``. ``"all"``: every
        column, absent ones counting 0, which equals scikit-learn's default on indicator
        matrices, ``f1_score(target, pred, average="macro", zero_division=0)``.

    Returns
    -------
    (micro, macro)
        Two 0-dim float tensors on the input device (0.0 when nothing is predicted or true).

    Examples
    --------
    >>> pred = torch.tensor([[True, True, False], [False, True, False]])
    >>> target = torch.tensor([[True, False, False], [False, True, False]])
    >>> micro, macro = f1_micro_macro(pred, target)
    >>> round(micro.item(), 4), round(macro.item(), 4)
    (0.8, 0.8333)
    """
    if labels not in ("present", "all"):
        raise ConfigError(f"labels must be 'present' or 'all', got {labels!r}")
    if pred.ndim != 2 or pred.shape != target.shape:
        raise ValueError(
            f"pred and target must both be (B, N); got {tuple(pred.shape)} and "
            f"{tuple(target.shape)}"
        )
    pred = pred.to(torch.bool)
    target = target.to(device=pred.device, dtype=torch.bool)
    dtype = _acc_dtype(pred.device)
    tp = (pred & target).sum(0).to(dtype)  # (N,)
    fp = (pred & ~target).sum(0).to(dtype)  # (N,)
    fn = (~pred & target).sum(0).to(dtype)  # (N,)
    denom = 2 * tp + fp + fn  # (N,) zero exactly for items absent from pred and target
    micro_denom = denom.sum()
    micro = torch.where(micro_denom > 0, 2 * tp.sum() / micro_denom.clamp_min(1), 0.0)
    per_item = torch.where(denom > 0, 2 * tp / denom.clamp_min(1), torch.zeros_like(denom))
    if labels == "all":
        n_labels = torch.tensor(float(per_item.shape[0]), dtype=dtype, device=pred.device)
    else:
        n_labels = (denom > 0).sum().to(dtype)
    macro = torch.where(n_labels > 0, per_item.sum() / n_labels.clamp_min(1), 0.0)
    return micro.to(torch.float32), macro.to(torch.float32)


# ------------------------------------------------------------------ next-basket metrics
BASKET_RANK_METRICS: tuple[str, ...] = (
    "recall",
    "precision",
    "ndcg",
    "phr",
    "repeat_recall",
    "explore_recall",
)
"""Per-user top-k metrics of next-basket evaluation (``"name@k"``)."""

BASKET_SET_METRICS: tuple[str, ...] = ("f1_micro", "f1_macro")
"""Set metrics of the predicted basket (no cutoff)."""


_BASKET_METRIC_RE = re.compile(r"^\s*([a-z_0-9]+?)\s*(?:@\s*(\d+))?\s*$")


def parse_basket_metrics(names: Iterable[str]) -> list[tuple[str, int | None]]:
    """Validate next-basket metric names: ``"recall@10"``, ``"precision@20"``, ``"ndcg@10"``,
    ``"phr@10"``, ``"repeat_recall@10"``, ``"explore_recall@10"``, ``"f1_micro"``,
    ``"f1_macro"``. Returns ``(name, k)`` pairs (``k`` None for the set metrics).

    >>> parse_basket_metrics(["Recall@10", "f1_micro"])
    [('recall', 10), ('f1_micro', None)]
    """
    if isinstance(names, str):
        names = [names]
    valid = ", ".join([*(f"{n}@K" for n in BASKET_RANK_METRICS), *BASKET_SET_METRICS])
    out: list[tuple[str, int | None]] = []
    for raw in names:
        match = _BASKET_METRIC_RE.match(str(raw).lower())
        name = match.group(1) if match else None
        k = int(match.group(2)) if match and match.group(2) else None
        ok = (name in BASKET_RANK_METRICS and k is not None) or (
            name in BASKET_SET_METRICS and k is None
        )
        if not ok:
            raise ConfigError(f"unknown next-basket metric {raw!r}; valid metrics are {valid}")
        if k is not None:
            _check_k(k)
        if (name, k) not in out:
            out.append((name, k))  # type: ignore[arg-type]
    return out


def multi_hot(rows: Tensor, items: Tensor, shape: tuple[int, int]) -> Tensor:
    """``(B, N)`` bool with ``True`` at ``(rows[j], items[j])``."""
    out = torch.zeros(shape, dtype=torch.bool, device=rows.device)
    out[rows, items] = True
    return out


class BasketAccumulator:
    r"""Collects next-basket metrics over batches of users (no dense users x items matrix
    is kept: per batch a ``(B, N)`` block, overall per-item counts for F1).

    For each query (a user's target basket ``T``; ``H`` the items of the history baskets;
    ``L`` the model's ranked list, masked items left out, so it may be shorter than ``k``):

    * ``recall@k = |L[:k] ∩ T| / |T|``, ``precision@k = |L[:k] ∩ T| / k`` (always ``k``),
      ``phr@k = [L[:k] ∩ T ≠ ∅]``, ``ndcg@k`` with binary gains ``1 / log2(r + 1)`` at rank
      ``r`` and the ideal DCG over ``min(k, |T|)`` positions; averaged over all queries.
    * ``repeat_recall@k`` over ``T ∩ H``, ``explore_recall@k`` over ``T \ H``, each averaged
      over the queries that have such items.
    * F1 of the predicted set ``P``: ``f1_micro = 2TP / (2TP + FP + FN)`` pooled over all
      (query, item) cells; ``f1_macro`` the mean per-item F1 over the item columns given by
      ``macro_items``: ``"catalogue"`` (every item of the vocabulary, items never predicted
      nor bought counting 0, as scikit-learn's default on an indicator matrix) or
      ``"occurring"`` (items predicted or bought at least once).

    ``n_dropped`` per query are target items the model cannot rank (unknown to its
    vocabulary): they count in ``|T|`` (and as explore items and false negatives) — misses.

    With ``per_query=True`` the per-query values are kept too (:meth:`per_query`).
    """

    def __init__(
        self,
        ks: Sequence[int],
        n_items: int,
        *,
        thresholds: Sequence[float] | None = None,
        device: torch.device | str = "cpu",
        per_query: bool = False,
    ) -> None:
        self.ks = sorted(set(int(k) for k in ks)) or [10]
        self.n_items = n_items
        self.device = torch.device(device)
        dt = _acc_dtype(self.device)
        self._sums: dict[str, Tensor] = {}
        self._counts = {"repeat": 0, "explore": 0}
        self._n = 0
        self._dt = dt
        n_sets = 1 + (len(thresholds) if thresholds else 0)
        self.thresholds = list(thresholds or [])
        self._tp = torch.zeros(n_sets, n_items, dtype=dt, device=self.device)
        self._fp = torch.zeros_like(self._tp)
        self._fn = torch.zeros_like(self._tp)
        self._fn_dropped = torch.zeros(n_sets, dtype=dt, device=self.device)
        self._pred_size = torch.zeros(n_sets, dtype=dt, device=self.device)
        self._rows: dict[str, list[Tensor]] | None = {} if per_query else None

    @property
    def n(self) -> int:
        return self._n

    def _add(self, name: str, v: Tensor, defined: Tensor | None = None) -> None:
        v = v.to(self._dt)
        self._sums[name] = self._sums.get(name, 0) + v.sum()  # type: ignore[operator]
        if self._rows is not None:  # NaN where the metric is not defined for the query
            row = v.float() if defined is None else torch.where(defined, v.float(), math.nan)
            self._rows.setdefault(name, []).append(row)

    def add(
        self,
        scores: Tensor,
        target: Tensor,
        history: Tensor,
        pred: Tensor | Sequence[Tensor] | None = None,
        n_dropped: Tensor | None = None,
    ) -> None:
        """One batch: ``scores (B, N)`` with masked entries ``-inf``; ``target``, ``history``
        ``(B, N)`` bool; ``pred`` the predicted set ``(B, N)`` bool, or one per threshold
        (first the set reported as F1, then one per ``thresholds`` entry); ``n_dropped (B,)``."""
        B = scores.shape[0]
        if B == 0:
            return
        dt = self._dt
        scores = _nan_to_neg_inf(scores)
        dropped = (
            torch.zeros(B, dtype=dt, device=scores.device)
            if n_dropped is None
            else n_dropped.to(device=scores.device, dtype=dt)
        )
        kmax = min(self.ks[-1], scores.shape[1])
        top = scores.topk(kmax, dim=1)
        valid = torch.isfinite(top.values)  # (B, kmax)
        hit = target.gather(1, top.indices) & valid
        # sparse views of the targets: reductions over (B, N) blocks are the slow part
        t_rows, t_items = target.nonzero(as_tuple=True)
        t_rep = history[t_rows, t_items]
        rep_hit = hit & history.gather(1, top.indices)
        n_t = torch.bincount(t_rows, minlength=B).to(dt) + dropped
        n_rep = torch.bincount(t_rows[t_rep], minlength=B).to(dt)
        n_exp = n_t - n_rep
        kk = self.ks[-1]
        disc = 1.0 / torch.log2(torch.arange(2, kk + 2, device=scores.device, dtype=dt))
        cum_hit = hit.to(dt).cumsum(1)
        cum_rep = rep_hit.to(dt).cumsum(1)
        cum_dcg = (hit.to(dt) * disc[:kmax]).cumsum(1)
        cum_disc = disc.cumsum(0)  # ideal DCG of 1..kk relevant items
        has_rep, has_exp = n_rep > 0, n_exp > 0
        for k in self.ks:
            j = min(k, kmax) - 1
            h = cum_hit[:, j]
            r = cum_rep[:, j]
            self._add(f"recall@{k}", torch.where(n_t > 0, h / n_t.clamp_min(1), 0.0))
            self._add(f"precision@{k}", h / k)
            self._add(f"phr@{k}", (h > 0).to(dt))
            idcg = cum_disc[(n_t.clamp(max=k).long() - 1).clamp(min=0)]
            self._add(f"ndcg@{k}", torch.where(n_t > 0, cum_dcg[:, j] / idcg, 0.0))
            self._add(
                f"repeat_recall@{k}", torch.where(has_rep, r / n_rep.clamp_min(1), 0.0), has_rep
            )
            self._add(
                f"explore_recall@{k}",
                torch.where(has_exp, (h - r) / n_exp.clamp_min(1), 0.0),
                has_exp,
            )
        self._counts["repeat"] += int(has_rep.sum())
        self._counts["explore"] += int(has_exp.sum())
        self._n += B
        if pred is not None:
            preds = [pred] if isinstance(pred, Tensor) else list(pred)
            n = self.n_items
            t_count = torch.bincount(t_items, minlength=n).to(dt)
            for i, p in enumerate(preds):
                p_rows, p_items = p.nonzero(as_tuple=True)
                is_tp = target[p_rows, p_items]
                tp = torch.bincount(p_items[is_tp], minlength=n).to(dt)
                self._tp[i] += tp
                self._fp[i] += torch.bincount(p_items[~is_tp], minlength=n).to(dt)
                self._fn[i] += t_count - tp
                self._fn_dropped[i] += dropped.sum()
                self._pred_size[i] += float(len(p_items))
                if i == 0 and self._rows is not None:  # per query: F1 of the predicted set
                    tp_q = torch.bincount(p_rows[is_tp], minlength=B).to(dt)
                    denom = torch.bincount(p_rows, minlength=B).to(dt) + n_t
                    f1 = torch.where(denom > 0, 2 * tp_q / denom.clamp_min(1), 0.0)
                    self._rows.setdefault("f1_user", []).append(f1.float())

    def _f1(self, i: int, macro_items: str) -> tuple[float, float]:
        tp, fp, fn = self._tp[i], self._fp[i], self._fn[i]
        denom = 2 * tp + fp + fn
        micro_d = denom.sum() + self._fn_dropped[i]
        micro = float(2 * tp.sum() / micro_d) if float(micro_d) > 0 else 0.0
        per_item = torch.where(denom > 0, 2 * tp / denom.clamp_min(1), 0.0)[1:]  # no padding
        n_cols = per_item.numel() if macro_items == "catalogue" else int((denom[1:] > 0).sum())
        macro = float(per_item.sum() / n_cols) if n_cols else 0.0
        return micro, macro

    def compute(
        self, metrics: Sequence[str], *, macro_items: str = "catalogue"
    ) -> dict[str, float]:
        """The mean of every metric named in ``metrics`` (see :func:`parse_basket_metrics`)."""
        out: dict[str, float] = {}
        micro, macro = self._f1(0, macro_items)
        for name, k in parse_basket_metrics(metrics):
            if name == "f1_micro":
                out[name] = micro
            elif name == "f1_macro":
                out[name] = macro
            else:
                key = f"{name}@{k}"
                if key not in self._sums:
                    raise ConfigError(f"{key}: cutoff {k} was not accumulated (ks={self.ks})")
                denom = {
                    "repeat_recall": self._counts["repeat"],
                    "explore_recall": self._counts["explore"],
                }.get(name, self._n)
                out[key] = float(self._sums[key]) / denom if denom else 0.0
        return out

    def f1_by_threshold(self, macro_items: str = "catalogue") -> list[dict[str, float]]:
        """F1 micro/macro and mean predicted-set size for each of ``thresholds``."""
        rows = []
        for i, t in enumerate(self.thresholds, start=1):
            micro, macro = self._f1(i, macro_items)
            size = float(self._pred_size[i]) / self._n if self._n else 0.0
            rows.append({"threshold": t, "f1_micro": micro, "f1_macro": macro, "set_size": size})
        return rows

    def per_query(self, metrics: Sequence[str]) -> dict[str, np.ndarray]:
        """Per-query float32 values (in the order added) of the metrics of ``metrics`` that
        have one: ``recall/precision/ndcg/phr@k`` (their means are :meth:`compute`'s values),
        ``repeat_recall@k``/``explore_recall@k`` (NaN for queries without such items: their
        NaN-mean is the metric), and ``f1_user``, the F1 of each query's predicted set
        (``2|P ∩ T| / (|P| + |T|)``; its mean is the example-based F1, not ``f1_micro`` /
        ``f1_macro``, which pool over queries or items). Needs ``per_query=True``."""
        if self._rows is None:
            raise ConfigError("per-query values need BasketAccumulator(..., per_query=True)")
        out: dict[str, np.ndarray] = {}
        for name, k in parse_basket_metrics(metrics):
            key = name if k is None else f"{name}@{k}"
            if key in self._rows:
                out[key] = torch.cat(self._rows[key]).cpu().numpy()
        if "f1_user" in self._rows:
            out["f1_user"] = torch.cat(self._rows["f1_user"]).cpu().numpy()
        return out

    @property
    def counts(self) -> dict[str, int]:
        """Queries with repeat / explore target items (the repeat/explore denominators)."""
        return dict(self._counts)

    def mean_set_size(self) -> float:
        return float(self._pred_size[0]) / self._n if self._n else 0.0


__all__ = [
    "BASKET_RANK_METRICS",
    "BASKET_SET_METRICS",
    "BasketAccumulator",
    "RANK_METRICS",
    "RankAccumulator",
    "Ties",
    "basket_precision_recall_at_k",
    "f1_micro_macro",
    "hit_rate_at_k",
    "mrr_at_k",
    "multi_hot",
    "parse_basket_metrics",
    "ndcg_at_k",
    "parse_metrics",
    "recall_at_k",
    "sampled_target_ranks",
    "target_ranks",
]
