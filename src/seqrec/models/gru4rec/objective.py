"""GRU4Rec's objective: its config (loss, negatives, logQ) and the fast loop's merged
sampled columns (each touched item scored once, duplicates folded into a log-weight)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import ConfigDict, Field

from seqrec._config import ConfigModel


class ObjectiveConfig(ConfigModel):
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
        How many negative ids are drawn in bulk ahead of time [sample_cache_max_size], in
        the autograd loop; the fast loop draws the negatives of each run of ~1,000 steps
        together with their merged columns.
    last_batch
        When sessions run out in training (see
        :func:`~seqrec.data.batching.session_parallel_schedule`): ``"shrink"`` (the
        official code) trains on with a smaller batch until every session has ended;
        ``"stop"`` ends the epoch as soon as a finished session's slot cannot be refilled,
        as the reference Keras notebook's loader does (the other sessions' remaining events
        are not trained on). The notebook's "padding" variant pads those last batches to
        full width so that every event is trained on: its loss and gradients are those of
        ``"shrink"`` (padded rows carry no loss; the loss is divided by the configured
        batch size either way). Evaluation always scores every event.
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
    last_batch: Literal["shrink", "stop"] = "shrink"


@dataclass(frozen=True)
class MergedColumns:
    """The output columns of GRU4Rec's sampled softmax for a run of steps, duplicates merged.

    Step ``t`` scores the items ``item[offsets[t]:offsets[t+1]]`` (each once) instead of the
    official ``[targets..., samples...]`` columns, which repeat items. A column that stood for
    an item ``k`` times with logQ corrections ``q_1..q_k`` becomes one column with the
    additive weight ``log(sum_j exp(-q_j))``: the softmax denominators, the loss and the
    gradient of every item score are exactly the official ones, with about a third fewer
    columns on real data and no duplicate rows to sum before the row-sparse update.

    Attributes
    ----------
    item : (n_cols,) item index of each merged column, steps concatenated.
    offsets : (n_steps + 1,) columns of each step.
    log_weight : (n_cols,) float32; ``-inf`` for items that are only inputs.
    target_col, input_col : (n_rows,) column of each row's target / input within its step
        (``input_col`` only when inputs were merged in, i.e. a shared input embedding).
    n_scored : (n_steps,) the first ``n_scored[t]`` columns of step ``t`` are outputs (targets
        or samples); the rest are items that are only inputs.
    loss_shift : float
        Sum over rows of ``log_weight[target] + q_target``: the official loss of the run is
        ``-sum(log_softmax(scores + log_weight)[row, target_col]) + loss_shift``.
    """

    item: np.ndarray
    offsets: np.ndarray
    log_weight: np.ndarray
    target_col: np.ndarray
    input_col: np.ndarray | None
    n_scored: np.ndarray
    loss_shift: float


def union_per_step(
    n_items: int,
    n_steps: int,
    block: np.ndarray | None,
    groups: list[tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray], np.ndarray]:
    """The distinct items of each step: row ``t`` of ``block``, then the items of each group
    (``(step, ids)`` pairs) at step ``t`` not seen before, in that order.

    Parameters
    ----------
    block : (n_steps, S) items drawn for each step (e.g. shared negative samples), or None.
    groups : loose entries, e.g. the targets and then the inputs of each step's rows.

    Returns
    -------
    item : (n,) distinct items, step by step: the step's block items (ascending), then the new
        items of each group in turn.
    offsets : (n_steps + 1,) entries of each step in ``item``.
    block_count : (n,) how often each entry occurs in its step's block row.
    positions : per group, (m,) position of each entry within its step.
    part_sizes : (n_steps, 1 + len(groups)) new entries per step from the block and each group.
    """
    steps = np.arange(n_steps, dtype=np.int64)
    # per part: distinct items (grouped by step), their sorted keys step * n_items + item for
    # lookups, and how many each step adds
    if block is not None and block.shape[1] > 0:
        srt = np.sort(block, axis=1)
        new = np.empty(srt.shape, dtype=bool)
        new[:, 0] = True
        np.not_equal(srt[:, 1:], srt[:, :-1], out=new[:, 1:])
        first = np.flatnonzero(new)  # runs of equal items never cross rows
        items = [srt.ravel()[first].astype(np.int64)]
        block_count = np.diff(first, append=srt.size)
        sizes = [np.count_nonzero(new, axis=1)]
    else:
        items = [np.empty(0, dtype=np.int64)]
        block_count = np.empty(0, dtype=np.int64)
        sizes = [np.zeros(n_steps, dtype=np.int64)]
    keys = [np.repeat(steps * n_items, sizes[0]) + items[0]]
    found_in: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # per group
    for step, ids in groups:
        step = step.astype(np.int64)
        loose = step * n_items + ids
        part = np.full(len(loose), -1, dtype=np.int64)
        where = np.zeros(len(loose), dtype=np.int64)
        for j, pk in enumerate(keys):
            todo = np.flatnonzero(part < 0)
            at = np.searchsorted(pk, loose[todo])
            ok = at < len(pk)
            ok[ok] = pk[at[ok]] == loose[todo[ok]]
            part[todo[ok]], where[todo[ok]] = j, at[ok]
        fresh = part < 0
        new_keys, inv = np.unique(loose[fresh], return_inverse=True)
        part[fresh], where[fresh] = len(keys), inv.ravel()
        keys.append(new_keys)
        items.append(new_keys % n_items)
        sizes.append(np.bincount(new_keys // n_items, minlength=n_steps))
        found_in.append((step, part, where))
    part_sizes = np.stack(sizes, 1)
    offsets = np.zeros(n_steps + 1, dtype=np.int64)
    np.cumsum(part_sizes.sum(1), out=offsets[1:])
    # entries of part j of step t start after the step's earlier parts
    starts = offsets[:-1, None] + np.cumsum(part_sizes, 1) - part_sizes  # (n_steps, n_parts)
    item = np.empty(offsets[-1], dtype=np.int64)
    part_pos = []
    for j, it in enumerate(items):
        shift = starts[:, j] - (np.cumsum(sizes[j]) - sizes[j])  # item index -> position
        pos = np.repeat(shift, sizes[j]) + np.arange(len(it))
        item[pos] = it
        part_pos.append(pos)
    counts = np.zeros(offsets[-1], dtype=np.int64)
    counts[part_pos[0]] = block_count
    positions = []
    for step, part, where in found_in:
        pos = np.empty(len(part), dtype=np.int64)
        for j in range(len(keys)):
            sel = part == j
            pos[sel] = part_pos[j][where[sel]]
        positions.append(pos - offsets[step])
    return item, offsets, counts, positions, part_sizes


def merge_sampled_columns(
    targets: np.ndarray,
    row_offsets: np.ndarray,
    samples: np.ndarray | None,
    log_count: np.ndarray,
    *,
    alpha: float,
    logq: float,
    inputs: np.ndarray | None = None,
) -> MergedColumns:
    """Merge the sampled-softmax columns of a run of steps (see :class:`MergedColumns`).

    Parameters
    ----------
    targets : (n_rows,) target item of each row; ``row_offsets`` (n_steps + 1,) rows per step.
    samples : (n_steps, n_sample) extra negatives of each step, or None.
    log_count : (n_items,) log item counts; corrections are ``logq * log_count`` for in-batch
        targets and ``logq * alpha * log_count`` for extra samples, as the official code.
    inputs : (n_rows,) input items, merged in with weight 0 when they are looked up in the
        output table (shared embedding), so each touched row appears once.
    """
    n_steps = len(row_offsets) - 1
    sizes = np.diff(row_offsets)
    step = np.repeat(np.arange(n_steps), sizes)
    groups = [(step, targets)] + ([(step, inputs)] if inputs is not None else [])
    item, offsets, block_count, pos, part_sizes = union_per_step(
        len(log_count), n_steps, samples, groups
    )
    target_col = pos[0]
    target_at = offsets[step] + target_col
    # log weight of a column: log(k) - logq * alpha * log_count for k samples of the item;
    # columns that are also targets get the exact log of their summed weights
    log_weight = np.full(len(item), -np.inf, dtype=np.float32)
    sampled = block_count > 0
    log_weight[sampled] = np.log(block_count[sampled]) - (logq * alpha) * log_count[item[sampled]]
    lc = log_count[targets]
    hit = np.unique(target_at)
    weight = np.bincount(target_at, weights=np.exp(-logq * lc), minlength=len(item))[hit]
    weight += block_count[hit] * np.exp(-logq * alpha * log_count[item[hit]])
    log_weight[hit] = np.log(weight)
    shift = float(np.sum(log_weight[target_at], dtype=np.float64) + logq * np.sum(lc))
    return MergedColumns(
        item=item,
        offsets=offsets,
        log_weight=log_weight,
        target_col=target_col,
        input_col=pos[1] if inputs is not None else None,
        n_scored=part_sizes[:, :2].sum(1),
        loss_shift=shift,
    )
