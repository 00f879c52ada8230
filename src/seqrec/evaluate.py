"""Next-item evaluation: full ranking by default, an explicit protocol in every report.

Every event flagged as a target (``SequenceData.target_mask``) becomes a prefix query (the
events of its sequence before it, built vectorised as views, :class:`QueryBatch`); the
model scores it through its ``score`` (any model), or — where the model has one — through
its replay fast path (every sequence replayed once, session-parallel, as recurrent models'
reference evaluations do; a test asserts both give identical ranks). The target's rank is
computed in one batched comparison (:func:`seqrec.metrics.target_ranks`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
import polars as pl
import torch
from torch import Tensor
from tqdm.auto import tqdm

from seqrec.data.query import QueryBatch
from seqrec.data.sequences import SequenceData
from seqrec.exceptions import ConfigError, DataError
from seqrec.metrics import (
    BasketAccumulator,
    RankAccumulator,
    multi_hot,
    parse_basket_metrics,
    parse_metrics,
    sampled_target_ranks,
    target_ranks,
)
from seqrec.models.base import SupportsReplay, model_device

Ties = Literal["conservative", "optimistic", "average"]

QUERY_KEYS: dict[str, tuple[str, str]] = {
    "next-item": ("sequence", "position"),
    "next-basket": ("sequence", "basket"),
}
"""The key columns of :attr:`EvalReport.queries` per task: ``sequence`` is the index of the
session (user) in the evaluated data (sequences ordered by their first event, as
:meth:`SequenceData.from_frame` builds them), ``position`` the index of the target event in
it, ``basket`` the index of the target basket among the user's baskets (after items unknown
to the model are dropped). Targets that could not be ranked at all (unknown items, counted as
misses) get ``sequence = -1`` and ``position`` / ``basket`` ``0, 1, ...``: every model
misses them alike."""


def _query_frame(
    keys: tuple[str, str], seq: np.ndarray, pos: np.ndarray, n_missing: int, values: dict
) -> pl.DataFrame:
    """The per-query frame: the two key columns (int32, ``-1`` rows for ``n_missing``
    unrankable targets appended) and the float32 values (already including those rows)."""
    seq = np.concatenate([seq, np.full(n_missing, -1)]).astype(np.int32)
    pos = np.concatenate([pos, np.arange(n_missing)]).astype(np.int32)
    cols = {keys[0]: seq, keys[1]: pos}
    cols.update({k: np.asarray(v, dtype=np.float32) for k, v in values.items()})
    return pl.DataFrame(cols)


def _within(offsets: np.ndarray, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(segment, index within it)`` of flat indices into a ragged array."""
    seg = np.searchsorted(offsets, flat, side="right") - 1
    return seg, flat - offsets[seg]


@dataclass
class EvalReport:
    """Metrics with the protocol that produced them."""

    metrics: dict[str, float]
    protocol: dict[str, Any]
    n_queries: int
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)
    queries: pl.DataFrame | None = field(default=None, repr=False, compare=False)
    """With ``per_query=True``: one row per query, keyed so that two evaluations of the same
    data align whatever order they scored it in (:data:`QUERY_KEYS`), with the per-query
    value of each metric (float32; next item: also ``rank``). Not part of :meth:`to_dict`."""

    @property
    def queries_per_second(self) -> float:
        return self.n_queries / self.seconds if self.seconds > 0 else math.nan

    def to_dict(self) -> dict[str, Any]:
        d = asdict(replace(self, queries=None))
        del d["queries"]
        d["queries_per_second"] = self.queries_per_second
        return d

    def table(self) -> str:
        """A readable two-column table of the metrics."""
        w = max((len(k) for k in self.metrics), default=6)
        lines = [f"{'metric':<{w}}  value", f"{'-' * w}  ------"]
        lines += [f"{k:<{w}}  {v:.4f}" for k, v in self.metrics.items()]
        lines.append(
            f"({self.n_queries} queries, {self.protocol['candidates']} ranking, ties={self.protocol['ties']})"
        )
        return "\n".join(lines)


def iter_scores(
    model: Any,
    data: SequenceData,
    *,
    batch_size: int = 512,
    exclude_seen: bool = False,
    replay: bool | None = None,
) -> Iterator[tuple[Tensor, Tensor, Tensor | None]]:
    """Yield ``(scores (b, N), targets (b,), mask (b, N) | None)`` for the target events of
    ``data`` (flagged by ``data.target_mask()``).

    The prefix queries of the targets are built vectorised (:meth:`QueryBatch.prefixes`)
    and scored through the model's ``score``; a model with a replay fast path
    (:class:`~seqrec.models.base.SupportsReplay`) is replayed instead, unless
    ``replay=False``. The mask holds the padding column and, with ``exclude_seen``, the
    items seen earlier in the sequence.
    """
    for scores, targets, mask, _ in _iter_scored(
        model, data, batch_size=batch_size, exclude_seen=exclude_seen, replay=replay
    ):
        yield scores, targets, mask


def _iter_scored(
    model: Any,
    data: SequenceData,
    *,
    batch_size: int,
    exclude_seen: bool,
    replay: bool | None,
) -> Iterator[tuple[Tensor, Tensor, Tensor | None, Tensor]]:
    """:func:`iter_scores` with a fourth element: the flat positions (into ``data.items``)
    of the batch's targets, in the order the model scored them."""
    device = model_device(model)
    flags = data.target_mask()
    if not flags.any():
        return
    items = torch.from_numpy(data.items.astype(np.int64)).to(device)  # shared by all batches

    def prefixes(pos: np.ndarray) -> QueryBatch:
        return QueryBatch.prefixes(data, pos, device=device, exclude_seen=exclude_seen, items=items)

    use_replay = isinstance(model, SupportsReplay) if replay is None else replay
    chunks: Iterator[tuple[Tensor, Tensor, QueryBatch | None]]
    if use_replay:  # the prefix queries are only needed for exclude_seen's mask
        chunks = ((s, p, None) for s, p in model.replay(data, batch_size=batch_size))
    else:
        positions = np.flatnonzero(flags)

        def scored() -> Iterator[tuple[Tensor, Tensor, QueryBatch | None]]:
            for a in range(0, len(positions), batch_size):
                pos = positions[a : a + batch_size]
                q = prefixes(pos)
                yield model.score(q).to(device), torch.from_numpy(pos).to(device), q

        chunks = scored()
    with torch.no_grad():
        for scores, pos, q in chunks:
            if exclude_seen:
                if q is None:
                    q = prefixes(pos.cpu().numpy())
                mask = q.exclusion_mask(scores.shape[1])
            else:
                scores = scores.clone()
                scores[:, 0] = float("-inf")
                mask = None
            yield scores, items[pos], mask, pos


def evaluate(
    model: Any,
    data: SequenceData,
    *,
    metrics: Sequence[str] | None = None,
    ties: Ties = "conservative",
    exclude_seen: bool = False,
    candidates: Literal["full"] | int = "full",
    batch_size: int = 512,
    seed: int | None = 0,
    split: str | None = None,
    progress: bool = False,
    n_unknown_dropped: int | None = None,
    unknown_targets: Literal["miss", "drop"] | None = None,
    n_unknown_targets: int = 0,
    replay: bool | None = None,
    basket_options: dict[str, Any] | None = None,
    per_query: bool = False,
) -> EvalReport:
    """Evaluate a fitted next-item model (any :class:`~seqrec.models.base.Scorer`) on the
    target events of ``data``.

    Parameters
    ----------
    metrics
        E.g. ``("recall@20", "mrr@20", "ndcg@10")``.
    ties
        How a target tied with other items is ranked; ``"conservative"`` (default) puts it
        below every tied item, so a constant model scores 0 instead of a perfect score.
    exclude_seen
        Mask items seen earlier in the session (off by default: repeats are valid targets).
    candidates
        ``"full"`` ranks every item (default). An ``int`` ranks the target among that many
        negatives drawn uniformly at random per query: a *sampled* metric, flagged as such in
        ``protocol`` — not comparable with full ranking.
    unknown_targets, n_unknown_targets
        Targets that could not be ranked (items unknown to the model; the caller counts them):
        ``"miss"`` adds them as misses, ``"drop"`` leaves them out; both are recorded.
    replay
        Use the model's replay fast path (default: when it has one); ``False`` scores the
        prefix queries through ``score`` (same ranks, tested).
    per_query
        Also return every query's rank and metric values (``report.queries``, keyed by
        :data:`QUERY_KEYS`), e.g. for a paired significance test between two models.

    Basket data (``data.is_baskets``) is evaluated by :func:`evaluate_baskets` (its options
    through ``basket_options``).
    """
    if data.is_baskets:
        if candidates != "full":
            raise ConfigError(
                "sampled candidates are not offered for next-basket evaluation; use "
                "restrict=N (top-N candidates by frequency, flagged in the protocol)"
            )
        return evaluate_baskets(
            model,
            data,
            metrics=metrics,
            exclude_seen=exclude_seen,
            batch_size=batch_size,
            split=split,
            progress=progress,
            n_unknown_dropped=n_unknown_dropped,
            n_unknown_targets=n_unknown_targets,
            per_query=per_query,
            **(basket_options or {}),
        )
    metrics = ("recall@20", "mrr@20", "ndcg@20") if metrics is None else metrics
    parse_metrics(metrics)
    if not (candidates == "full" or (isinstance(candidates, int) and candidates > 0)):
        raise ConfigError(f"candidates must be 'full' or a positive int, got {candidates!r}")
    if len(data) == 0:
        raise DataError(
            "evaluation data has no sessions; check the split and the vocabulary filter"
        )
    acc = RankAccumulator()
    gen = torch.Generator().manual_seed(seed if seed is not None else 0)
    t0 = time.perf_counter()
    n_targets = int(data.target_mask().sum())
    bar = tqdm(total=n_targets, desc="evaluate", unit="q", disable=not progress, leave=False)
    scored_at: list[Tensor] = []  # flat positions of the queries, in scoring order
    for scores, targets, mask, pos in _iter_scored(
        model, data, batch_size=batch_size, exclude_seen=exclude_seen, replay=replay
    ):
        if per_query:
            scored_at.append(pos)
        if candidates == "full":
            ranks = target_ranks(scores, targets, ties=ties, mask=mask)
        else:
            cand = torch.randint(1, scores.shape[1], (len(targets), candidates), generator=gen).to(
                scores.device
            )
            ranks = sampled_target_ranks(scores, targets, cand, ties=ties)
        acc.add(ranks)
        bar.update(len(targets))
    bar.close()
    if unknown_targets == "miss" and n_unknown_targets:
        acc.add(torch.full((n_unknown_targets,), float("inf")))
    result = acc.compute(metrics)
    queries = None
    if per_query:
        flat = torch.cat(scored_at).cpu().numpy() if scored_at else np.zeros(0, np.int64)
        seq, within = _within(data.offsets, flat)
        n_missing = acc.n - len(flat)  # the unknown targets counted as misses
        queries = _query_frame(
            QUERY_KEYS["next-item"], seq, within, n_missing, acc.per_query(metrics)
        )
    dt = time.perf_counter() - t0
    protocol: dict[str, Any] = {
        "task": "next-item",
        "split": split,
        "candidates": "full" if candidates == "full" else f"sampled-{candidates}-uniform",
        "sampled": candidates != "full",
        "ties": ties,
        "exclude_seen": exclude_seen,
        "padding_masked": True,
        "targets": "is_target flags"
        if data.is_target is not None
        else "every event after the first",
        "n_items_ranked": int(data.n_items - 1),
        "metrics": list(metrics),
    }
    if n_unknown_dropped is not None:
        protocol["unknown_events_dropped"] = n_unknown_dropped
    if unknown_targets is not None:
        protocol["unknown_targets"] = unknown_targets
        protocol["n_unknown_targets"] = n_unknown_targets
    return EvalReport(
        metrics=result, protocol=protocol, n_queries=acc.n, seconds=dt, queries=queries
    )


# ------------------------------------------------------------------------ next basket
DEFAULT_BASKET_METRICS: tuple[str, ...] = (
    "recall@10",
    "precision@10",
    "ndcg@10",
    "phr@10",
    "recall@20",
    "precision@20",
    "ndcg@20",
    "phr@20",
    "repeat_recall@10",
    "explore_recall@10",
    "f1_micro",
    "f1_macro",
)

#: Thresholds tried when the decision threshold is chosen on validation data.
THRESHOLD_GRID: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 20))


def _segment_rows(offsets: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat positions and row ids of the ragged segments ``idx`` of ``offsets``."""
    from seqrec.data.sequences import ragged_take

    pos, new_off = ragged_take(offsets, idx)
    rows = np.repeat(np.arange(len(idx)), np.diff(new_off))
    return pos, rows


def _frequency_candidates(q: QueryBatch, n: int, popularity: Tensor) -> Tensor:
    """(B, N) bool: each user's top-``n`` items by history frequency, then global popularity."""
    rows, items = q.flat()
    counts = torch.zeros(len(q), q.n_items, device=q.device)
    counts.index_put_((rows, items), torch.ones_like(rows, dtype=counts.dtype), accumulate=True)
    # history counts first; popularity (scaled into (0, 1)) breaks ties and fills the rest
    key = counts + popularity.to(q.device) / (popularity.max().clamp_min(1) + 1)
    key[:, 0] = -1.0
    top = key.topk(min(n, q.n_items - 1), dim=1).indices
    allowed = torch.zeros(len(q), q.n_items, dtype=torch.bool, device=q.device)
    allowed.scatter_(1, top, True)
    return allowed


def evaluate_baskets(
    model: Any,
    data: SequenceData,
    *,
    metrics: Sequence[str] | None = None,
    exclude_seen: bool = False,
    threshold: float = 0.5,
    thresholds: Sequence[float] | None = None,
    set_size: int | None = None,
    restrict: int | None = None,
    macro_items: Literal["catalogue", "occurring"] = "catalogue",
    batch_size: int = 512,
    split: str | None = None,
    progress: bool = False,
    n_unknown_dropped: int | None = None,
    n_unknown_targets: int = 0,
    per_query: bool = False,
) -> EvalReport:
    """Evaluate a fitted next-basket model on the target baskets of ``data``.

    Every basket flagged as a target (:meth:`SequenceData.target_baskets`) is predicted from
    the baskets of its user before it (a vectorised view, :meth:`QueryBatch.basket_prefixes`).
    Metrics (:class:`~seqrec.metrics.BasketAccumulator`): per user, averaged over users,
    ``recall/precision/ndcg/phr@k``, ``repeat_recall@k``/``explore_recall@k``; ``f1_micro`` /
    ``f1_macro`` of a predicted *set*.

    Parameters
    ----------
    exclude_seen
        Mask items of the user's earlier baskets (off by default: repeat purchases are the
        larger part of a next basket).
    threshold
        The predicted set of a model whose scores are logits (``model.scores_are_logits``)
        is ``{i : sigmoid(score_i) > threshold}``.
    thresholds
        Also compute F1 for each of these thresholds (``report.extra["f1_by_threshold"]``),
        to choose the threshold on validation data.
    set_size
        Predict the top-``set_size`` items as the set instead. For models whose scores are
        not probabilities (the baselines) the default set is the top ``m`` items, ``m`` the
        user's mean history basket size (rounded, at least 1).
    restrict
        Rank only each user's top-``restrict`` candidates by frequency (the user's history
        counts, then popularity in the history baskets of ``data``): a *restricted* metric,
        flagged in the protocol.
    macro_items
        The item columns ``f1_macro`` averages over: every vocabulary item (``"catalogue"``)
        or the items predicted or bought at least once (``"occurring"``).
    n_unknown_targets
        Target baskets whose every item was unknown to the model (dropped before this call):
        they count as users with all metrics 0.
    per_query
        Also return each query's (user's target basket's) metric values and the F1 of its
        predicted set (``report.queries``, keyed by :data:`QUERY_KEYS`;
        :meth:`~seqrec.metrics.BasketAccumulator.per_query`).
    """
    metrics = tuple(DEFAULT_BASKET_METRICS if metrics is None else metrics)
    parsed = parse_basket_metrics(metrics)
    if not 0.0 < float(threshold) < 1.0:
        raise ConfigError(f"threshold must be in (0, 1), got {threshold}")
    for t in thresholds or ():
        if not 0.0 < float(t) < 1.0:
            raise ConfigError(f"thresholds must be in (0, 1), got {t}")
    if set_size is not None and set_size < 1:
        raise ConfigError(f"set_size must be >= 1, got {set_size}")
    if restrict is not None and restrict < 1:
        raise ConfigError(f"restrict must be >= 1 candidates, got {restrict}")
    if not data.is_baskets:
        raise DataError("evaluate_baskets needs basket data (SequenceData with basket_offsets)")
    targets = data.target_baskets()
    if len(targets) == 0 and n_unknown_targets == 0:
        raise DataError(
            "no target basket to evaluate: every user needs at least one basket before the "
            "target; check the split"
        )
    device = model_device(model)
    logits = bool(getattr(model, "scores_are_logits", False))
    ks = [k for _, k in parsed if k is not None] or [10]
    acc = BasketAccumulator(
        ks, data.n_items, thresholds=thresholds, device=device, per_query=per_query
    )
    bo = data.basket_offsets
    assert bo is not None
    items = torch.from_numpy(data.items.astype(np.int64)).to(device)
    bo_t = torch.from_numpy(bo).to(device)
    ctx_t = (
        None if data.basket_context is None else torch.from_numpy(data.basket_context).to(device)
    )
    popularity = None
    if restrict is not None:  # popularity over history baskets only (never the targets)
        is_t = np.zeros(data.n_baskets, dtype=bool)
        is_t[targets] = True
        hist_items = data.items[~np.repeat(is_t, np.diff(bo))]
        popularity = torch.from_numpy(
            np.bincount(hist_items, minlength=data.n_items).astype(np.float32)
        )
    dropped_all = data.basket_dropped
    t0 = time.perf_counter()
    bar = tqdm(total=len(targets), desc="evaluate", unit="user", disable=not progress, leave=False)
    with torch.no_grad():
        for a in range(0, len(targets), batch_size):
            chunk = targets[a : a + batch_size]
            q = QueryBatch.basket_prefixes(
                data,
                chunk,
                device=device,
                exclude_seen=exclude_seen,
                items=items,
                basket_offsets=bo_t,
                basket_context=ctx_t,
            )
            scores = model.score(q).to(device).float().clone()
            masked = q.exclusion_mask(scores.shape[1])
            if popularity is not None:
                masked |= ~_frequency_candidates(q, restrict, popularity)  # type: ignore[arg-type]
            scores.masked_fill_(masked, float("-inf"))
            pos, rows = _segment_rows(bo, chunk)
            shape = (len(chunk), data.n_items)
            target = multi_hot(
                torch.from_numpy(rows).to(device), items[torch.from_numpy(pos).to(device)], shape
            )
            h_rows, h_items = q.flat()
            history = multi_hot(h_rows, h_items, shape)
            dropped = None if dropped_all is None else torch.from_numpy(dropped_all[chunk])
            if set_size is not None or not logits:
                if set_size is not None:
                    m = torch.full((len(chunk),), set_size, device=device)
                else:
                    nb = q.n_baskets.clamp_min(1)
                    m = torch.round(q.lengths.float() / nb).clamp_min(1).long()
                kk = int(min(int(m.max()), data.n_items - 1))
                top = scores.topk(kk, dim=1)
                take = (torch.arange(kk, device=device) < m.unsqueeze(1)) & torch.isfinite(
                    top.values
                )
                pred = torch.zeros(shape, dtype=torch.bool, device=device)
                pred.scatter_(1, top.indices, take)
                preds = [pred]
            else:
                preds = [scores > math.log(threshold / (1 - threshold))]
            for t in thresholds or ():
                preds.append(scores > math.log(t / (1 - t)))
            acc.add(scores, target, history, preds, dropped)
            bar.update(len(chunk))
    bar.close()
    if n_unknown_targets:  # users whose whole target basket is unknown: all misses
        z = torch.full((n_unknown_targets, data.n_items), float("-inf"), device=device)
        empty = torch.zeros(z.shape, dtype=torch.bool, device=device)
        acc.add(
            z, empty, empty, [empty] * (1 + len(thresholds or ())), torch.ones(n_unknown_targets)
        )
    result = acc.compute(metrics, macro_items=macro_items)
    queries = None
    if per_query:
        seq = np.searchsorted(data.offsets, bo[targets], side="right") - 1
        first_basket = np.searchsorted(bo, data.offsets[seq])
        queries = _query_frame(
            QUERY_KEYS["next-basket"],
            seq,
            targets - first_basket,
            n_unknown_targets,
            acc.per_query(metrics),
        )
    dt = time.perf_counter() - t0
    if set_size is not None:
        set_rule = f"top-{set_size}"
    elif logits:
        set_rule = f"sigmoid(score) > {threshold}"
    else:
        set_rule = "top-m, m = the user's mean history basket size (rounded, >= 1)"
    protocol: dict[str, Any] = {
        "task": "next-basket",
        "split": split,
        "candidates": "full" if restrict is None else f"restricted-top-{restrict}-frequency",
        "restricted": restrict is not None,
        "ties": "torch.topk order (arbitrary among equal scores)",
        "exclude_seen": exclude_seen,
        "padding_masked": True,
        "targets": "is_target baskets"
        if data.is_target is not None
        else "every basket after the first",
        "set_rule": set_rule,
        "f1_macro_items": macro_items,
        "precision_divides_by": "k (also when a model returns fewer items)",
        "repeat_explore": "repeat = target items in the user's history baskets; explore = the rest "
        "(incl. items unknown to the model); each averaged over users that have such items",
        "users_with_repeat_items": acc.counts["repeat"],
        "users_with_explore_items": acc.counts["explore"],
        "mean_predicted_set_size": round(acc.mean_set_size(), 3),
        "n_items_ranked": int(data.n_items - 1),
        "metrics": list(metrics),
        "n_unknown_targets": n_unknown_targets,
    }
    if n_unknown_dropped is not None:
        protocol["unknown_events_dropped"] = n_unknown_dropped
    extra: dict[str, Any] = {}
    if thresholds:
        extra["f1_by_threshold"] = acc.f1_by_threshold(macro_items)
    return EvalReport(
        metrics=result,
        protocol=protocol,
        n_queries=acc.n,
        seconds=dt,
        extra=extra,
        queries=queries,
    )


def brute_force_ranks(
    model: Any,
    data: SequenceData,
    *,
    ties: Ties = "conservative",
    exclude_seen: bool = False,
) -> np.ndarray:
    """Reference ranks computed one query at a time through ``score`` (for tests)."""
    flags = data.target_mask()
    out = []
    for s in range(len(data)):
        seq = data[s]
        for j in range(1, len(seq)):
            if not flags[data.offsets[s] + j]:
                continue
            q = QueryBatch.from_lists([seq[:j]], data.n_items, exclude_seen=exclude_seen)
            with torch.no_grad():
                sc = model.score(q).clone()
            mask = q.exclusion_mask(sc.shape[1])
            target = torch.tensor([int(seq[j])])
            out.append(float(target_ranks(sc, target, ties=ties, mask=mask)[0]))
    return np.asarray(out)
