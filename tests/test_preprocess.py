"""Preprocessing steps, the fixed-point cleaning and describe()."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqrec.columns import Columns
from seqrec.exceptions import ConfigError, DataError, SchemaError
from seqrec.preprocess import (
    STEPS,
    DropConsecutiveRepeats,
    KeepItems,
    MinItemSupport,
    MinRating,
    MinSessionLength,
    Preprocessor,
    Sessionize,
    build_steps,
    clean,
    describe,
)

S, IT, T = Columns.session, Columns.item, Columns.time


def frame(rows: list[tuple[object, object, float]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={S: pl.Int64, IT: pl.String, T: pl.Float64}, orient="row")


# Hand-computed example where one round is not enough (support 2, length 2):
#   s1: a b c | s2: a b | s3: c d | s4: d
#   round 1: drop s4 (length 1) -> d has support 1 -> drop d -> s3 = [c]
#   round 2: drop s3 (length 1) -> c has support 1 -> drop c -> s1 = [a b], s2 = [a b]
#   round 3: nothing changes.
TWO_ROUNDS = frame(
    [
        (1, "a", 0.0),
        (1, "b", 1.0),
        (1, "c", 2.0),
        (2, "a", 0.0),
        (2, "b", 1.0),
        (3, "c", 0.0),
        (3, "d", 1.0),
        (4, "d", 0.0),
    ]
)


def test_clean_needs_a_second_round() -> None:
    steps = [MinSessionLength(2), MinItemSupport(2)]
    one_pass = Preprocessor(steps)(TWO_ROUNDS)
    assert one_pass.height == 6  # s1 a b c, s2 a b, s3 c: not yet a fixed point
    out = clean(TWO_ROUNDS, min_session_length=2, min_item_support=2)
    assert out.rows() == [(1, "a", 0.0), (1, "b", 1.0), (2, "a", 0.0), (2, "b", 1.0)]
    # a fixed point: cleaning again changes nothing
    assert clean(out, min_session_length=2, min_item_support=2).equals(out)


def test_preprocessor_history() -> None:
    pre = Preprocessor([MinSessionLength(2), MinItemSupport(2)], until_stable=True)
    pre(TWO_ROUNDS)
    assert pre.history_ == [
        {"round": 0, "events": 8, "sessions": 4, "items": 4},
        {"round": 1, "events": 6, "sessions": 3, "items": 3},
        {"round": 2, "events": 4, "sessions": 2, "items": 2},
        {"round": 3, "events": 4, "sessions": 2, "items": 2},
    ]
    assert pre.converged_
    once = Preprocessor([MinSessionLength(2), MinItemSupport(2)])
    once(TWO_ROUNDS)
    assert [h["round"] for h in once.history_] == [0, 1]


def test_max_rounds_stops() -> None:
    pre = Preprocessor([MinSessionLength(2), MinItemSupport(2)], until_stable=True, max_rounds=1)
    assert pre(TWO_ROUNDS).height == 6
    assert not pre.converged_


def test_clean_everything_removed() -> None:
    with pytest.raises(DataError, match="removed every event.*lower"):
        clean(TWO_ROUNDS, min_item_support=100)


events = st.lists(
    st.tuples(st.integers(0, 6), st.integers(0, 5).map(str), st.integers(0, 9).map(float)),
    min_size=0,
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(events, st.integers(1, 3), st.integers(1, 3))
def test_fixed_point_is_order_independent(rows: list, min_len: int, min_sup: int) -> None:
    df = frame(rows)
    a = Preprocessor([MinSessionLength(min_len), MinItemSupport(min_sup)], until_stable=True)(df)
    b = Preprocessor([MinItemSupport(min_sup), MinSessionLength(min_len)], until_stable=True)(df)
    assert a.equals(b)  # the largest sub-log meeting both conditions, rows in input order
    if a.height:
        assert a.group_by(S).len()["len"].min() >= min_len
        assert a.group_by(IT).len()["len"].min() >= min_sup


# ------------------------------------------------------------------------------ steps
def test_steps_keep_row_order_and_filter() -> None:
    df = frame([(2, "x", 5.0), (1, "y", 1.0), (2, "y", 0.0)])
    assert MinSessionLength(2)(df).rows() == [(2, "x", 5.0), (2, "y", 0.0)]
    assert MinItemSupport(2)(df)[IT].to_list() == ["y", "y"]
    assert KeepItems(["x"])(df).height == 1
    assert KeepItems(pl.Series(["x", "y"]))(df).height == 3


def test_min_rating() -> None:
    df = pl.DataFrame(
        {S: [1, 1, 1], IT: [1, 2, 3], T: [0.0, 1, 2], Columns.rating: [3.0, 4.0, 5.0]}
    )
    assert MinRating(4)(df)[IT].to_list() == [2, 3]
    with pytest.raises(SchemaError, match="rating"):
        MinRating(4)(df.drop(Columns.rating))


def test_drop_consecutive_repeats_in_time_order() -> None:
    # rows out of time order; session 1 in time order: a a b a (t=0,1,2,3) -> a b a
    df = frame([(1, "b", 2.0), (1, "a", 1.0), (1, "a", 0.0), (2, "a", 0.0), (1, "a", 3.0)])
    out = DropConsecutiveRepeats()(df)
    assert out.rows() == [(1, "b", 2.0), (1, "a", 0.0), (2, "a", 0.0), (1, "a", 3.0)]


def test_sessionize() -> None:
    df = pl.DataFrame(
        {
            Columns.user: ["u", "u", "u", "v", "v", "u"],
            IT: [1, 2, 3, 1, 2, 4],
            T: [0.0, 100.0, 5000.0, 0.0, 1.0, 5100.0],
        }
    )
    out = Sessionize(1800)(df)
    assert out.columns == [S, Columns.user, IT, T]
    assert out[S].to_list() == [0, 0, 1, 2, 2, 1]  # u: {0,100}, {5000,5100}; v: {0,1}
    with pytest.raises(SchemaError, match="user_id"):
        Sessionize(1800)(df.drop(Columns.user))


def test_step_config_validation_and_round_trip() -> None:
    assert MinSessionLength(3) == MinSessionLength(n=3)
    with pytest.raises(ConfigError, match="greater than or equal"):
        MinSessionLength(0)
    with pytest.raises(ConfigError, match="unknown key .typo."):
        MinItemSupport(n=5, typo=1)
    with pytest.raises(ConfigError, match="positional"):
        MinRating(1, 2)
    with pytest.raises(ValueError, match="frozen"):
        MinSessionLength(2).n = 3  # type: ignore[misc]
    steps = [MinSessionLength(2), Sessionize(gap_seconds=60), KeepItems(np.array([1, 2]))]
    specs = json.loads(json.dumps([s.to_dict() for s in steps]))
    assert build_steps(specs) == steps
    with pytest.raises(ConfigError, match="unknown preprocessing step"):
        build_steps([{"step": "nope"}])
    assert set(STEPS) >= {"min_session_length", "min_item_support", "sessionize"}


def test_keep_items_type_mismatch() -> None:
    df = pl.DataFrame({S: [1], IT: [1], T: [0.0]})
    with pytest.raises(SchemaError, match="same type"):
        KeepItems(["1"])(df)


# --------------------------------------------------------------------------- describe
def test_describe_small() -> None:
    d = describe(TWO_ROUNDS)
    assert d["events"] == 8 and d["sessions"] == 4 and d["items"] == 4
    assert d["session_length"] == {"min": 1, "median": 2, "mean": 2, "max": 3}
    assert d["item_support"] == {"min": 2, "median": 2, "mean": 2, "max": 2}
    assert d["time_range"] == {"first": "1970-01-01", "last": "1970-01-01"}
    assert "users" not in d and "rating_distribution" not in d


def test_describe_ml100k(ml100k: pl.DataFrame) -> None:
    d = describe(ml100k)
    json.dumps(d)
    assert (d["events"], d["sessions"], d["items"], d["users"]) == (100_000, 943, 1682, 943)
    assert d["time_range"] == {"first": "1997-09-20", "last": "1998-04-22"}
    assert d["session_length"]["min"] == 20
    assert sum(d["rating_distribution"].values()) == 100_000
    assert set(d["rating_distribution"]) == {"1", "2", "3", "4", "5"}


def test_clean_ml100k(ml100k: pl.DataFrame) -> None:
    out = clean(ml100k)
    assert 0 < out.height < ml100k.height
    assert out.group_by(IT).len()["len"].min() >= 5
    assert out.group_by(S).len()["len"].min() >= 2
