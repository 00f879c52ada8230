"""Batchers over :class:`~seqrec.data.SequenceData`.

* :func:`session_parallel_schedule` — GRU4Rec's session-parallel mini-batches, precomputed.
* :func:`padded_last` — the last ``L`` events of each sequence, left-padded (SASRec style).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from seqrec.data.sequences import SequenceData
from seqrec.exceptions import DataError


@dataclass(frozen=True)
class SessionParallelSchedule:
    """Every step of one epoch of session-parallel mini-batches, as flat arrays.

    ``B`` slots each hold one session. Step ``t`` feeds, for every active slot, one event of
    its session (``inputs``) and asks for the next one (``targets``). When a session has no
    next event left, its slot takes the next unassigned session (in ``order``) and that
    row's hidden state must be reset to zero (``reset``). When sessions run out, finished
    slots are dropped and the batch shrinks (no event is lost, none is padded).

    Rows of step ``t`` are ``step_offsets[t]:step_offsets[t+1]``. Row ``r`` of step ``t``
    continues row ``keep[t][r]`` of step ``t-1`` (``keep[t]`` is ``None`` when the batch
    did not shrink, i.e. row r continues row r).

    Attributes
    ----------
    inputs, targets : int64 (n_rows,)
        Item index fed / to predict.
    positions : int64 (n_rows,)
        Index into ``data.items`` of the target event (so callers can look up flags).
    reset : bool (n_rows,)
        The row starts a new session: its hidden state must be zero.
    step_offsets : int64 (n_steps + 1,)
    keep : list of int64 arrays or None, one per step
    """

    inputs: np.ndarray
    targets: np.ndarray
    positions: np.ndarray
    reset: np.ndarray
    step_offsets: np.ndarray
    keep: list[np.ndarray | None]
    batch_size: int

    @property
    def n_steps(self) -> int:
        return len(self.step_offsets) - 1

    @property
    def n_events(self) -> int:
        return len(self.inputs)


LAST_BATCH = ("shrink", "stop")
"""What the session-parallel batcher does when sessions run out (see
:func:`session_parallel_schedule`)."""


def session_parallel_schedule(
    data: SequenceData,
    batch_size: int,
    *,
    order: np.ndarray | None = None,
    last_batch: str = "shrink",
) -> SessionParallelSchedule:
    """Precompute GRU4Rec's session-parallel mini-batches for one pass over ``data``.

    The loop runs once per *group of simultaneous session ends* (as in the official
    implementation) and is vectorised over the slots; the steps between two session
    ends are emitted as one 2-D block, so the cost is far below one Python step per event.

    Parameters
    ----------
    data
        Sessions; those shorter than 2 events are skipped (they have no next item).
    batch_size
        Number of slots ``B``.
    order
        Order in which sessions enter the slots (default: the stored order, which
        :meth:`SequenceData.from_frame` makes the order of session start times).
    last_batch
        When a session ends and no session is left to take its slot: ``"shrink"``
        (default, the official implementation) drops the slot and goes on with a smaller
        batch until every session has ended, so every event is used; ``"stop"`` ends the
        pass there, as the reference Keras notebook's loader does (a stateful Keras GRU
        needs a full batch): the events the other slots' sessions have left are not used.
        Padding the finished slots to keep the batch full (with rows that carry no loss)
        computes what ``"shrink"`` computes.
    """
    if batch_size < 1:
        raise DataError(f"batch_size must be >= 1, got {batch_size}")
    if last_batch not in LAST_BATCH:
        raise DataError(f"last_batch must be one of {LAST_BATCH}, got {last_batch!r}")
    lengths = data.lengths
    if order is None:
        order = np.arange(len(data))
    order = np.asarray(order, dtype=np.int64)
    order = order[lengths[order] >= 2]
    if len(order) == 0:
        raise DataError("no session has 2 or more events: nothing to predict")
    starts_all = data.offsets[:-1]
    ends_all = data.offsets[1:]
    n_slots = min(batch_size, len(order))
    nxt = n_slots  # next session (position in order) to hand out
    cur = order[:n_slots].copy()
    start = starts_all[cur].copy()  # position of the next input event of each slot
    end = ends_all[cur].copy()
    fresh = np.ones(n_slots, dtype=bool)

    in_blocks: list[np.ndarray] = []
    reset_blocks: list[np.ndarray] = []
    keeps: list[np.ndarray | None] = []
    step_sizes: list[np.ndarray] = []
    items = data.items.astype(np.int64)
    pending_keep: np.ndarray | None = None
    while True:
        remaining = end - start - 1  # steps left for each slot
        m = int(remaining.min())
        # block of m steps: rows (m, n) -> input positions start + i
        block = start[None, :] + np.arange(m)[:, None]
        in_blocks.append(block.ravel())
        rs = np.zeros((m, len(start)), dtype=bool)
        rs[0] = fresh
        reset_blocks.append(rs.ravel())
        step_sizes.append(np.full(m, len(start), dtype=np.int64))
        keeps.append(pending_keep)
        keeps.extend([None] * (m - 1))
        pending_keep = None
        start = start + m
        finished = (end - start) <= 1
        n_fin = int(finished.sum())
        n_new = min(n_fin, len(order) - nxt)
        if last_batch == "stop" and n_new < n_fin:
            break  # a slot cannot be refilled: the pass ends (the Keras loader)
        fresh = np.zeros(len(start), dtype=bool)
        if n_new:
            fin_idx = np.flatnonzero(finished)[:n_new]  # lowest slots get new sessions first
            new_sessions = order[nxt : nxt + n_new]
            nxt += n_new
            start[fin_idx] = starts_all[new_sessions]
            end[fin_idx] = ends_all[new_sessions]
            fresh[fin_idx] = True
            finished[fin_idx] = False
        if finished.any():
            alive = np.flatnonzero(~finished)
            if len(alive) == 0:
                break
            pending_keep = alive
            start, end, fresh = start[alive], end[alive], fresh[alive]
    inputs_pos = np.concatenate(in_blocks)
    sizes = np.concatenate(step_sizes)
    step_offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=step_offsets[1:])
    return SessionParallelSchedule(
        inputs=items[inputs_pos],
        targets=items[inputs_pos + 1],
        positions=inputs_pos + 1,
        reset=np.concatenate(reset_blocks),
        step_offsets=step_offsets,
        keep=keeps,
        batch_size=batch_size,
    )


class TorchSessionSchedule:
    """A :class:`SessionParallelSchedule` moved to a torch device once, for the step loops of
    training and evaluation (which otherwise would convert per step)."""

    def __init__(self, s: SessionParallelSchedule, device: torch.device | str) -> None:
        self.inputs_np, self.targets_np = s.inputs, s.targets
        self.inputs = torch.from_numpy(s.inputs).to(device)
        self.targets = torch.from_numpy(s.targets).to(device)
        self.reset = torch.from_numpy(s.reset).to(device).unsqueeze(1)  # (rows, 1)
        self.offsets: list[int] = s.step_offsets.tolist()
        step_reset = np.add.reduceat(s.reset.astype(np.int64), s.step_offsets[:-1]) > 0
        self.any_reset: list[bool] = step_reset.tolist()
        self.keep = [None if k is None else torch.from_numpy(k).to(device) for k in s.keep]
        self.positions = s.positions
        self.n_steps = s.n_steps
        self.n_events = s.n_events

    @property
    def n_slots(self) -> int:
        """Rows of the first step: the slots actually used (fewer sessions than batch_size)."""
        return self.offsets[1] - self.offsets[0]

    def carry(self, t: int, state: list[torch.Tensor]) -> list[torch.Tensor]:
        """Per-slot state (rows = slots) carried into step ``t``: rows of finished slots
        dropped when the batch shrinks, rows of slots that start a new session zeroed."""
        keep = self.keep[t]
        if keep is not None:
            state = [s.index_select(0, keep) for s in state]
        if self.any_reset[t]:
            r = self.reset[self.offsets[t] : self.offsets[t + 1]]
            state = [s.masked_fill(r, 0) for s in state]
        return state


def padded_last(data: SequenceData, max_len: int, *, pad: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The last ``max_len`` items of every sequence, left-padded with ``pad``.

    Returns
    -------
    items : int64 (n_sequences, max_len)
        Row ``i`` ends with the last item of sequence ``i``.
    lengths : int64 (n_sequences,)
        Number of real (non-pad) items per row, ``min(len, max_len)``.
    """
    if max_len < 1:
        raise DataError(f"max_len must be >= 1, got {max_len}")
    lengths = np.minimum(data.lengths, max_len)
    n = len(data)
    out = np.full((n, max_len), pad, dtype=np.int64)
    row = np.repeat(np.arange(n), lengths)
    # position within the row: right-aligned
    ends = data.offsets[1:]
    first = ends - lengths
    within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    src = np.repeat(first, lengths) + within
    col = max_len - np.repeat(lengths, lengths) + within
    out[row, col] = data.items[src]
    return out, lengths.astype(np.int64)


def sliding_windows(data: SequenceData, size: int) -> SequenceData:
    """Every sequence cut into windows of at most ``size`` items that overlap by one item,
    from the end: ``[n - size, n)``, ``[n - 2 size + 1, n - size + 1)``, ... so that every
    event but the first of its sequence is the target of exactly one window position.

    Sequences with fewer than 2 items give no window. Vectorised (no loop over sequences).
    """
    if size < 2:
        raise DataError(f"window size must be >= 2, got {size}")
    n = data.lengths
    step = size - 1
    m = np.where(n >= 2, (n - 1 + step - 1) // step, 0)  # windows per sequence
    seq = np.repeat(np.arange(len(n)), m)
    j = np.arange(int(m.sum())) - np.repeat(np.cumsum(m) - m, m)
    end = data.offsets[seq] + n[seq] - j * step  # absolute, exclusive
    start = np.maximum(data.offsets[seq], end - size)
    win_len = end - start
    offsets = np.zeros(len(win_len) + 1, dtype=np.int64)
    np.cumsum(win_len, out=offsets[1:])
    pos = np.repeat(start, win_len) + (
        np.arange(int(offsets[-1])) - np.repeat(offsets[:-1], win_len)
    )
    return SequenceData(items=data.items[pos], offsets=offsets, n_items=data.n_items)
