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
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from seqrec.data.query import QueryBatch
from seqrec.data.sequences import SequenceData
from seqrec.exceptions import ConfigError, DataError
from seqrec.metrics import RankAccumulator, parse_metrics, sampled_target_ranks, target_ranks
from seqrec.models.base import SupportsReplay, model_device

Ties = Literal["conservative", "optimistic", "average"]


@dataclass
class EvalReport:
    """Metrics with the protocol that produced them."""

    metrics: dict[str, float]
    protocol: dict[str, Any]
    n_queries: int
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def queries_per_second(self) -> float:
        return self.n_queries / self.seconds if self.seconds > 0 else math.nan

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
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
            yield scores, items[pos], mask


def evaluate(
    model: Any,
    data: SequenceData,
    *,
    metrics: Sequence[str] = ("recall@20", "mrr@20", "ndcg@20"),
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
    """
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
    for scores, targets, mask in iter_scores(
        model, data, batch_size=batch_size, exclude_seen=exclude_seen, replay=replay
    ):
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
    return EvalReport(metrics=result, protocol=protocol, n_queries=acc.n, seconds=dt)


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
