"""Splits: hand-computed cases, hypothesis properties (partition, no leakage), real data."""

from __future__ import annotations

import json
from collections import defaultdict

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqrec.columns import Columns
from seqrec.exceptions import ConfigError, DataError, SchemaError
from seqrec.preprocess import clean
from seqrec.split import (
    IS_TARGET,
    Split,
    leave_last_out,
    presplit,
    split_by_ratio,
    split_by_time,
)

S, IT, T = Columns.session, Columns.item, Columns.time
DAY = 86_400.0
EID = "eid"  # an extra column identifying each input event; splitters carry it through


def frame(rows: list[tuple[int, int, float]]) -> pl.DataFrame:
    df = pl.DataFrame(rows, schema={S: pl.Int64, IT: pl.Int64, T: pl.Float64}, orient="row")
    return df.with_row_index(EID).with_columns(pl.col(EID).cast(pl.Int64))


def stable_order(df: pl.DataFrame) -> dict[int, list[int]]:
    """Session -> its event ids in time order, ties by input order (computed in Python)."""
    out: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for eid, s, t in df.select(EID, S, T).iter_rows():
        out[s].append((t, eid))
    return {s: [e for _, e in sorted(v)] for s, v in out.items()}


def eids(df: pl.DataFrame | None, targets_only: bool = False) -> list[int]:
    if df is None:
        return []
    if targets_only:
        df = df.filter(pl.col(IS_TARGET))
    return df[EID].to_list()


# ------------------------------------------------------------------------ hand-computed
def test_leave_last_out_hand() -> None:
    # session 1 has a tie at t=2: input order decides (eid 2 before eid 3)
    df = frame([(1, 10, 0.0), (1, 11, 1.0), (1, 12, 2.0), (1, 13, 2.0), (2, 10, 0.0), (2, 11, 1.0)])
    s = leave_last_out(df, n=1, valid=True)
    assert eids(s.train) == [0, 1, 4, 5]  # session 2 (length 2 < 3) stays in train
    assert eids(s.valid) == [0, 1, 2] and eids(s.valid, True) == [2]
    assert eids(s.test) == [0, 1, 2, 3] and eids(s.test, True) == [3]
    assert s.protocol["sessions_too_short"] == 1
    assert IS_TARGET not in s.train.columns
    s2 = leave_last_out(df, n=2, valid=False)
    assert s2.valid is None
    assert eids(s2.train) == [0, 1, 4, 5] and eids(s2.test, True) == [2, 3]


def test_split_by_ratio_hand() -> None:
    rows = [(1, i, float(i)) for i in range(10)] + [(2, 0, 0.0), (2, 1, 1.0)]
    s = split_by_ratio(frame(rows), test_ratio=0.2, valid_ratio=0.1)
    assert eids(s.test, True) == [8, 9]
    assert eids(s.valid, True) == [7]
    assert eids(s.train) == [0, 1, 2, 3, 4, 5, 6, 10, 11]  # session 2 too short for 1 + 1 + 1
    assert s.protocol["sessions_too_short"] == 1


def test_split_by_time_hand() -> None:
    rows = [
        (1, 1, 0 * DAY), (1, 2, 1 * DAY),  # train: ends day 1
        (2, 1, 2 * DAY), (2, 2, 3.5 * DAY),  # valid: ends in (3, 4]
        (3, 2, 3.0 * DAY), (3, 1, 4.5 * DAY), (3, 9, 4.6 * DAY),  # test; item 9 unknown
        (4, 9, 4.8 * DAY), (4, 1, 5 * DAY),  # test; only 1 known event left -> dropped
    ]  # fmt: skip
    s = split_by_time(frame(rows), test_days=1, valid_days=1)
    assert eids(s.train) == [0, 1]
    assert eids(s.valid) == [2, 3] and eids(s.valid, True) == [3]
    assert eids(s.test) == [4, 5] and eids(s.test, True) == [5]
    drop = s.protocol["dropped"]["test"]
    assert drop["unknown_item_events"] == 2 and drop["sessions_with_unknown_items"] == 2
    assert drop["events_dropped"] == 3 and drop["sessions_dropped"] == 1
    assert s.protocol["test_cutoff"] == 4 * DAY and s.protocol["valid_cutoff"] == 3 * DAY
    # without the item filter and valid part, test keeps every event of its sessions
    s2 = split_by_time(frame(rows), test_days=1, train_items_only=False)
    assert s2.valid is None and eids(s2.test) == [4, 5, 6, 7, 8]
    # by event: session 3's early event falls in train
    s3 = split_by_time(frame(rows), test_days=1, by="event", train_items_only=False)
    assert 4 in eids(s3.train)


def test_split_by_time_at_cutoff() -> None:
    # t_max = 4 days; test_cut = 3 days, valid_cut = 2 days; eids 1 and 3 lie exactly on them
    rows = [(1, 1, 0.0), (1, 2, 2 * DAY), (2, 1, 2.5 * DAY), (2, 2, 3 * DAY), (3, 1, 4 * DAY)]
    earlier = split_by_time(frame(rows), test_days=1, valid_days=1, by="event",
                            train_items_only=False, min_session_length_eval=1)  # fmt: skip
    assert (eids(earlier.train), eids(earlier.valid), eids(earlier.test)) == ([0, 1], [2, 3], [4])
    later = split_by_time(frame(rows), test_days=1, valid_days=1, by="event", at_cutoff="later",
                          train_items_only=False, min_session_length_eval=1)  # fmt: skip
    assert (eids(later.train), eids(later.valid), eids(later.test)) == ([0], [1, 2], [3, 4])
    assert later.protocol["at_cutoff"] == "later" and earlier.protocol["at_cutoff"] == "earlier"
    # by session end: session 1 ends exactly on valid_cut, session 2 on test_cut
    rows.append((0, 1, 0.5 * DAY))
    s = split_by_time(frame(rows), test_days=1, valid_days=1, at_cutoff="later",
                      train_items_only=False, min_session_length_eval=1)  # fmt: skip
    assert (eids(s.train), eids(s.valid), eids(s.test)) == ([5], [0, 1], [2, 3, 4])
    s = split_by_time(frame(rows), test_days=1, valid_days=1,
                      train_items_only=False, min_session_length_eval=1)  # fmt: skip
    assert (eids(s.train), eids(s.valid), eids(s.test)) == ([5, 0, 1], [2, 3], [4])
    with pytest.raises(ConfigError, match="at_cutoff"):
        split_by_time(frame(rows), test_days=1, at_cutoff="inside")  # type: ignore[arg-type]


def test_summary_and_protocol_json() -> None:
    rows = [(s, i, float(s * 10 + i)) for s in range(4) for i in range(4)]
    s = leave_last_out(frame(rows))
    summary = s.summary()
    assert summary["part"].to_list() == ["train", "valid", "test"]
    assert summary.filter(pl.col("part") == "test")["targets"].item() == 4
    json.dumps(s.protocol)
    assert isinstance(s, Split)


def test_presplit_hand() -> None:
    df = frame([(1, 1, 0.0), (1, 2, 1.0), (2, 1, 2.0), (2, 2, 3.0), (3, 5, 3.0), (3, 1, 4.0)])
    df = df.with_columns(split=pl.Series(["train", "train", "test", "test", "test", "test"]))
    s = presplit(df)
    assert "split" not in s.test.columns
    assert eids(s.test) == [2, 3] and eids(s.test, True) == [3]
    assert s.protocol["dropped"]["test"]["unknown_item_events"] == 1
    with pytest.raises(SchemaError, match="expected only"):
        presplit(df.with_columns(split=pl.lit("other")))
    with pytest.raises(SchemaError, match="column="):
        presplit(df, column="part")


def test_errors() -> None:
    df = frame([(1, 1, 0.0), (1, 2, 1.0)])
    with pytest.raises(ConfigError):
        split_by_time(df, test_days=0)
    with pytest.raises(ConfigError):
        leave_last_out(df, n=0)
    with pytest.raises(ConfigError):
        split_by_ratio(df, test_ratio=0.6, valid_ratio=0.5)
    with pytest.raises(DataError, match="train part would be empty"):
        split_by_time(df, test_days=10)
    with pytest.raises(DataError, match="long enough"):
        leave_last_out(df, n=1, valid=True)
    with pytest.raises(SchemaError, match="timestamp"):
        leave_last_out(df.drop(T))


# ------------------------------------------------------------------------- properties
event_rows = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 6), st.integers(0, 12).map(float)),
    min_size=1,
    max_size=40,
)


def check_holdout(
    df: pl.DataFrame, s: Split, n_test: dict[int, int], n_valid: dict[int, int]
) -> None:
    """Shared checks for leave_last_out / split_by_ratio; n_*: held-out counts per session."""
    order = stable_order(df)
    # partition: train + valid targets + test targets = every event exactly once
    covered = eids(s.train) + eids(s.valid, True) + eids(s.test, True)
    assert sorted(covered) == sorted(df[EID].to_list())
    held = {k for k, v in n_test.items() if v > 0}
    for sess, seq in order.items():
        nt, nv = n_test.get(sess, 0), n_valid.get(sess, 0)
        test_rows = s.test.filter(pl.col(S) == sess)
        if sess not in held:
            assert test_rows.height == 0
            assert sorted(eids(s.train.filter(pl.col(S) == sess))) == sorted(seq)
            continue
        assert eids(test_rows) == seq  # the full session, in stable time order
        assert eids(test_rows, True) == seq[len(seq) - nt :]
        assert eids(s.train.filter(pl.col(S) == sess)) == seq[: len(seq) - nt - nv]
        if s.valid is not None:
            valid_rows = s.valid.filter(pl.col(S) == sess)
            assert eids(valid_rows) == seq[: len(seq) - nt]
            assert eids(valid_rows, True) == seq[len(seq) - nt - nv : len(seq) - nt]
        # no leakage: no test target earlier than a train event of the same session
        train_t = s.train.filter(pl.col(S) == sess)[T]
        target_t = test_rows.filter(pl.col(IS_TARGET))[T]
        assert target_t.min() >= train_t.max()


@settings(max_examples=80, deadline=None)
@given(event_rows, st.integers(1, 3), st.booleans())
def test_leave_last_out_properties(rows: list, n: int, valid: bool) -> None:
    df = frame(rows)
    need = n * (2 if valid else 1) + 1
    lengths = dict(df.group_by(S).len().iter_rows())
    try:
        s = leave_last_out(df, n=n, valid=valid)
    except DataError:
        assert max(lengths.values()) < need
        return
    n_test = {k: n if v >= need else 0 for k, v in lengths.items()}
    n_valid = {k: n if (v >= need and valid) else 0 for k, v in lengths.items()}
    check_holdout(df, s, n_test, n_valid)
    assert (s.valid is None) == (not valid)
    # exactly n targets per eligible session
    per = s.test.filter(pl.col(IS_TARGET)).group_by(S).len()["len"]
    assert per.to_list() == [n] * per.len()
    assert s.protocol["sessions_too_short"] == sum(v < need for v in lengths.values())


@settings(max_examples=80, deadline=None)
@given(event_rows, st.sampled_from([0.1, 0.2, 0.25, 0.5]), st.sampled_from([0.0, 0.1, 0.3]))
def test_split_by_ratio_properties(rows: list, test_ratio: float, valid_ratio: float) -> None:
    df = frame(rows)
    lengths = dict(df.group_by(S).len().iter_rows())

    def share(length: int, r: float) -> int:
        return max(1, int(length * r + 1e-9)) if r > 0 else 0

    n_test, n_valid = {}, {}
    for k, length in lengths.items():
        nt, nv = share(length, test_ratio), share(length, valid_ratio)
        ok = length - nt - nv >= 1
        n_test[k], n_valid[k] = (nt, nv) if ok else (0, 0)
    try:
        s = split_by_ratio(df, test_ratio=test_ratio, valid_ratio=valid_ratio)
    except DataError:
        assert not any(n_test.values())
        return
    check_holdout(df, s, n_test, n_valid)


times = st.integers(0, 10 * 24).map(lambda h: h * 3600.0)  # hours over 10 days, ties likely
time_rows = st.lists(
    st.tuples(st.integers(0, 8), st.integers(0, 5), times), min_size=1, max_size=50
)


@settings(max_examples=80, deadline=None)
@given(time_rows, st.sampled_from([0.5, 1.0, 2.0]), st.sampled_from([0.0, 1.0, 3.0]))
def test_split_by_time_session_end_properties(
    rows: list, test_days: float, valid_days: float
) -> None:
    df = frame(rows)
    try:
        s = split_by_time(
            df, test_days=test_days, valid_days=valid_days, train_items_only=False,
            min_session_length_eval=1,
        )  # fmt: skip
    except DataError:
        return
    test_cut = s.protocol["test_cutoff"]
    valid_cut = test_cut - valid_days * DAY
    ends = dict(df.group_by(S).agg(pl.col(T).max()).iter_rows())
    # nothing filtered: the parts partition the events, sessions stay whole
    assert sorted(eids(s.train) + eids(s.valid) + eids(s.test)) == sorted(df[EID].to_list())
    assert all(ends[x] <= valid_cut for x in s.train[S].unique())
    if s.valid is not None:
        assert all(valid_cut < ends[x] <= test_cut for x in s.valid[S].unique())
    assert all(ends[x] > test_cut for x in s.test[S].unique())
    # is_target: every event but the first of each session
    firsts = s.test.group_by(S, maintain_order=True).agg(pl.col(IS_TARGET).first())
    assert not firsts[IS_TARGET].any()
    assert s.test[IS_TARGET].sum() == s.test.height - s.test[S].n_unique()


@settings(max_examples=60, deadline=None)
@given(time_rows, st.sampled_from([0.5, 1.0, 2.0]), st.sampled_from([0.0, 1.0]))
def test_split_by_time_eval_filter_properties(
    rows: list, test_days: float, valid_days: float
) -> None:
    df = frame(rows)
    try:
        s = split_by_time(df, test_days=test_days, valid_days=valid_days)
    except DataError:
        return
    train_items = set(s.train[IT].to_list())
    for part in (s.valid, s.test):
        if part is None:
            continue
        assert set(part[IT].to_list()) <= train_items
        assert part.group_by(S).len()["len"].min() >= 2
    assert max(s.train[T]) <= s.protocol["test_cutoff"] - valid_days * DAY


@settings(max_examples=60, deadline=None)
@given(time_rows, st.sampled_from([0.5, 1.0, 2.0]), st.sampled_from([0.0, 1.0]))
def test_split_by_time_event_properties(rows: list, test_days: float, valid_days: float) -> None:
    df = frame(rows)
    try:
        s = split_by_time(
            df, test_days=test_days, valid_days=valid_days, by="event", train_items_only=False,
            min_session_length_eval=1,
        )  # fmt: skip
    except DataError:
        return
    test_cut = s.protocol["test_cutoff"]
    valid_cut = test_cut - valid_days * DAY
    assert sorted(eids(s.train) + eids(s.valid) + eids(s.test)) == sorted(df[EID].to_list())
    assert s.train[T].max() <= valid_cut
    if s.valid is not None:
        assert s.valid[T].min() > valid_cut and s.valid[T].max() <= test_cut
    assert s.test[T].min() > test_cut


# -------------------------------------------------------------------------- real data
def test_ml100k_clean_split_by_time(ml100k: pl.DataFrame) -> None:
    s = split_by_time(clean(ml100k), test_days=14, valid_days=14)
    assert s.valid is not None
    assert min(s.train.height, s.valid.height, s.test.height) > 0
    train_items = s.train[IT].unique().implode()
    assert s.valid[IT].is_in(train_items).all() and s.test[IT].is_in(train_items).all()
    assert s.train[T].max() <= s.protocol["valid_cutoff"]
    json.dumps(s.protocol)


def test_ml100k_notebook_split_counts(ml100k: pl.DataFrame) -> None:
    """The reference notebook's protocol, to the event: clean 2/5 to a fixed point, each event
    by its own time (train ``Time < t_max - 28 days``, valid the 14 days before the last 14,
    test the last 14), valid/test keep train items and sessions of >= 2 events."""
    s = split_by_time(
        clean(ml100k, min_session_length=2, min_item_support=5),
        test_days=14,
        valid_days=14,
        by="event",
        at_cutoff="later",
        train_items_only=True,
        min_item_support_eval=1,
        min_session_length_eval=2,
    )
    counts = {part: (c["events"], c["sessions"]) for part, c in s.protocol["counts"].items()}
    assert counts == {"train": (82_859, 784), "valid": (12_650, 184), "test": (3_683, 75)}
    assert s.protocol["counts"]["train"]["items"] == 1_342


def test_ml100k_leave_last_out(ml100k: pl.DataFrame) -> None:
    s = leave_last_out(ml100k, n=1, valid=True)
    assert s.test[IS_TARGET].sum() == 943
    assert s.valid is not None and s.valid[IS_TARGET].sum() == 943
    assert s.train.height == 100_000 - 2 * 943


def test_yoochoose_presplit(data_dir) -> None:  # type: ignore[no-untyped-def]
    from seqrec.datasets import load_dataset

    if not (data_dir / "yoochoose-100k").is_dir():
        pytest.skip("yoochoose-100k not found")
    s = presplit(load_dataset("yoochoose-100k", data_dir=data_dir))
    assert (s.train.height, s.test.height) == (70_278, 13_568)  # already clean: nothing dropped
    assert s.test[IS_TARGET].sum() == 13_568 - 3_416
