import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqrec.data import SequenceData
from seqrec.data.batching import padded_last, session_parallel_schedule
from seqrec.exceptions import DataError


def replay(sched, n_slots):
    """Follow the schedule's slot bookkeeping; return, per row, the session-local event id."""
    rows = []
    slot_ids = list(range(n_slots))
    for t in range(sched.n_steps):
        a, b = sched.step_offsets[t], sched.step_offsets[t + 1]
        if sched.keep[t] is not None:
            slot_ids = [slot_ids[k] for k in sched.keep[t]]
        assert len(slot_ids) == b - a
        rows.extend(zip(slot_ids, range(a, b), strict=True))
    return rows


@given(st.lists(st.integers(1, 9), min_size=1, max_size=40), st.integers(1, 8))
@settings(max_examples=150, deadline=None)
def test_every_event_exactly_once_and_resets_at_boundaries(lengths, batch_size):
    if max(lengths) < 2:
        return
    off = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    items = np.arange(1, off[-1] + 1, dtype=np.int32)  # unique item per event: traceable
    sd = SequenceData(items=items, offsets=off, n_items=int(off[-1]) + 1)
    s = session_parallel_schedule(sd, batch_size)
    # every (event -> next event) pair of every session appears exactly once
    expected = sorted(int(p) for i, n in enumerate(lengths) for p in range(off[i] + 1, off[i] + n))
    assert sorted(s.positions.tolist()) == expected
    assert np.array_equal(s.targets, items[s.positions])
    assert np.array_equal(s.inputs, items[s.positions - 1])
    # a row resets exactly when its input is the first event of a session
    starts = set(off[:-1].tolist())
    assert np.array_equal(s.reset, np.isin(s.positions - 1, list(starts)))
    # following a slot (with keep compaction) gives consecutive events of one session
    last = {}
    for slot, row in replay(s, min(batch_size, sum(n >= 2 for n in lengths))):
        if not s.reset[row]:
            assert last[slot] == s.positions[row] - 1
        last[slot] = s.positions[row]
    # the batch never exceeds batch_size and only shrinks at the end
    sizes = np.diff(s.step_offsets)
    assert sizes.max() <= batch_size


def test_schedule_order_and_errors():
    sd = SequenceData.from_lists([[1, 2, 3], [4, 5], [6, 7, 8, 9], [1], [2, 3, 4]], n_items=10)
    s = session_parallel_schedule(sd, 2)
    assert s.inputs.tolist() == [1, 4, 2, 6, 2, 7, 3, 8]
    assert s.reset.tolist() == [True, True, False, True, True, False, False, False]
    with pytest.raises(DataError, match="2 or more"):
        session_parallel_schedule(SequenceData.from_lists([[1], [2]]), 4)
    with pytest.raises(DataError):
        session_parallel_schedule(sd, 0)


def test_stop_ends_the_pass_when_a_slot_cannot_be_refilled():
    # the reference Keras notebook's loader: once a finished session's slot has no session
    # left to take it, the pass ends and the other slot's remaining events are not used
    sd = SequenceData.from_lists([[1, 2, 3], [4, 5], [6, 7, 8, 9]], n_items=10)
    shrink = session_parallel_schedule(sd, 2)
    stop = session_parallel_schedule(sd, 2, last_batch="stop")
    assert shrink.inputs.tolist() == [1, 4, 2, 6, 7, 8]
    assert stop.inputs.tolist() == [1, 4, 2, 6]
    assert stop.targets.tolist() == [2, 5, 3, 7]
    with pytest.raises(DataError, match="last_batch"):
        session_parallel_schedule(sd, 2, last_batch="pad")


@given(st.lists(st.integers(1, 9), min_size=1, max_size=40), st.integers(1, 8))
@settings(max_examples=100, deadline=None)
def test_stop_is_a_prefix_of_shrink_at_full_width(lengths, batch_size):
    if max(lengths) < 2:
        return
    sd = SequenceData.from_lists([list(range(1, n + 1)) for n in lengths], n_items=10)
    shrink = session_parallel_schedule(sd, batch_size)
    stop = session_parallel_schedule(sd, batch_size, last_batch="stop")
    n = stop.n_events
    assert 0 < n <= shrink.n_events
    assert np.array_equal(stop.positions, shrink.positions[:n])
    assert np.array_equal(stop.reset, shrink.reset[:n])
    # the batch never shrinks: every step is as wide as the first
    assert len(set(np.diff(stop.step_offsets).tolist())) == 1
    assert all(k is None for k in stop.keep)


def test_padded_last_right_aligns_and_truncates():
    sd = SequenceData.from_lists([[1, 2, 3, 4], [5], []], n_items=6)
    items, lengths = padded_last(sd, 3)
    assert items.tolist() == [[2, 3, 4], [0, 0, 5], [0, 0, 0]]
    assert lengths.tolist() == [3, 1, 0]
