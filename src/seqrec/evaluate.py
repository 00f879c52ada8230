"""Next-item evaluation: full ranking by default, an explicit protocol in every report.

Every test session is replayed event by event (session-parallel, as GRU4Rec evaluates);
at each event flagged as a target (``SequenceData.target_mask``) the model scores the
items given the events before it, and the target's rank is computed in one batched
comparison (:func:`seqrec.metrics.target_ranks`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from seqrec.data.batching import TorchSessionSchedule, session_parallel_schedule
from seqrec.data.sequences import SequenceData
from seqrec.exceptions import ConfigError, DataError
from seqrec.metrics import RankAccumulator, parse_metrics, sampled_target_ranks, target_ranks
from seqrec.models.gru4rec import GRU4Rec

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


def module_device(module: nn.Module) -> torch.device:
    """The device of a module's parameters, or of its buffers for parameter-free models."""
    for t in (*module.parameters(), *module.buffers()):
        return t.device
    return torch.device("cpu")


def iter_scores(
    module: nn.Module, data: SequenceData, *, batch_size: int = 512, exclude_seen: bool = False
) -> Iterator[tuple[Tensor, Tensor, Tensor | None]]:
    """Yield ``(scores (b, N), targets (b,), mask (b, N) | None)`` for the target events of ``data``.

    Sessions are replayed with session-parallel batches; the hidden state of a slot is reset
    when it takes a new session. The padding column 0 is always masked; with
    ``exclude_seen`` so are the items seen earlier in the session.
    """
    device = module_device(module)
    flags = torch.from_numpy(data.target_mask())
    if not bool(flags.any()):
        return
    sched = TorchSessionSchedule(session_parallel_schedule(data, batch_size), device)
    is_target = flags[torch.from_numpy(sched.positions)].to(device)
    stateful = isinstance(module, GRU4Rec)
    H = module.init_hidden(sched.n_slots, device) if stateful else []
    seen = (
        [torch.zeros(sched.n_slots, module.n_items, dtype=torch.bool, device=device)]
        if exclude_seen
        else []
    )
    with torch.no_grad():
        for t in range(sched.n_steps):
            a, b = sched.offsets[t], sched.offsets[t + 1]
            x = sched.inputs[a:b]
            state = sched.carry(t, [*H, *seen])
            H, seen = state[: len(H)], state[len(H) :]
            if stateful:
                out = module.step(module.input_table[x], H)
            else:
                out = torch.zeros(b - a, 1, device=device)
            if seen:
                seen[0][torch.arange(b - a, device=device), x] = True
            sel = is_target[a:b]
            if not bool(sel.any()):
                continue
            rows = sel.nonzero().squeeze(1)
            scores = module.score(out[rows])  # (b', N)
            mask = seen[0][rows] if seen else None
            if mask is None:
                scores = scores.clone()
                scores[:, 0] = float("-inf")
            else:
                mask = mask.clone()
                mask[:, 0] = True
            yield scores, sched.targets[a:b][rows], mask


def evaluate(
    module: nn.Module,
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
) -> EvalReport:
    """Evaluate a next-item module on the target events of ``data``.

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
        module, data, batch_size=batch_size, exclude_seen=exclude_seen
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
    module: nn.Module,
    data: SequenceData,
    *,
    ties: Ties = "conservative",
    exclude_seen: bool = False,
) -> np.ndarray:
    """Reference ranks computed one query at a time from the padded prefix (for tests)."""
    flags = data.target_mask()
    out = []
    for s in range(len(data)):
        seq = data[s]
        for j in range(1, len(seq)):
            if not flags[data.offsets[s] + j]:
                continue
            prefix = torch.as_tensor(seq[:j], dtype=torch.long).unsqueeze(0)
            with torch.no_grad():
                sc = module(prefix, torch.tensor([j])).clone()
            mask = torch.zeros_like(sc, dtype=torch.bool)
            mask[0, 0] = True
            if exclude_seen:
                mask[0, prefix[0]] = True
            target = torch.tensor([int(seq[j])])
            out.append(float(target_ranks(sc, target, ties=ties, mask=mask)[0]))
    return np.asarray(out)
