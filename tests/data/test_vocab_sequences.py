import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqrec.data import SequenceData, Vocabulary, ragged_take
from seqrec.exceptions import DataError, SchemaError, UnknownItemError


def test_vocab_orders_by_frequency_and_roundtrips():
    v = Vocabulary.fit([7, 3, 3, 9, 9, 9])
    assert v.ids.tolist() == [9, 3, 7]
    assert v.encode([3, 9, 7]).tolist() == [2, 1, 3]
    assert v.decode(np.array([1, 2, 3])).tolist() == [9, 3, 7]
    assert Vocabulary.from_json(v.to_json()) == v
    assert v.n_items == 4 and 9 in v and 5 not in v


def test_vocab_unknown_policies():
    v = Vocabulary.fit(["a", "b"])
    assert v.encode(["b", "zz", "a"], unknown="drop").tolist() == [2, 1]
    assert v.encode(["zz"], unknown="mask").tolist() == [0]
    with pytest.raises(UnknownItemError, match="not in the vocabulary"):
        v.encode(["a", "zz"], unknown="error")
    with pytest.raises(DataError):
        v.decode(np.array([0]))  # padding never decodes


def test_vocab_min_count_and_unique():
    assert len(Vocabulary.fit([1, 1, 2], min_count=2)) == 1
    with pytest.raises(DataError, match="unique"):
        Vocabulary([1, 1])


def test_from_frame_sorts_by_time_orders_sessions_and_drops_unknown():
    df = pl.DataFrame(
        {
            "session_id": [1, 1, 2, 2, 2, 3],
            "item_id": [5, 6, 5, 7, 99, 5],
            "timestamp": [11.0, 10.0, 3.0, 4.0, 5.0, 1.0],
        }
    )
    v = Vocabulary([5, 6, 7])
    sd = SequenceData.from_frame(df, v)
    # sessions by start time: 3 (t=1), 2 (t=3), 1 (t=10); item 99 dropped
    assert sd.session_ids.tolist() == [3, 2, 1]
    assert [sd[i].tolist() for i in range(3)] == [[1], [1, 3], [2, 1]]
    assert sd.offsets.tolist() == [0, 1, 3, 5]
    assert np.all(np.diff(sd.timestamps[1:3]) >= 0)
    with pytest.raises(UnknownItemError):
        SequenceData.from_frame(df, v, unknown="error")
    with pytest.raises(SchemaError):
        SequenceData.from_frame(df.drop("item_id"), v)


def test_stable_order_for_equal_timestamps():
    df = pl.DataFrame({"session_id": [1, 1, 1], "item_id": [3, 1, 2], "timestamp": [5.0, 5.0, 5.0]})
    sd = SequenceData.from_frame(df, Vocabulary([1, 2, 3]))
    assert sd.items.tolist() == [3, 1, 2]


def test_target_mask_default_and_explicit():
    sd = SequenceData.from_lists([[1, 2, 3], [4], [5, 6]], n_items=7)
    assert sd.target_mask().tolist() == [False, True, True, False, False, True]


@given(
    st.lists(st.lists(st.integers(1, 9), min_size=0, max_size=6), min_size=1, max_size=12),
    st.data(),
)
@settings(max_examples=60, deadline=None)
def test_ragged_take_matches_python(seqs, data):
    sd = SequenceData.from_lists(seqs, n_items=10)
    idx = data.draw(st.lists(st.integers(0, len(seqs) - 1), max_size=15))
    sub = sd.select(np.array(idx, dtype=np.int64))
    assert [sub[i].tolist() for i in range(len(sub))] == [seqs[i] for i in idx]
    pos, off = ragged_take(sd.offsets, np.array(idx, dtype=np.int64))
    assert off[-1] == len(pos)
