"""Tests of the synthetic session generator and its known answer."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from seqrec.columns import Columns
from seqrec.data.synthetic import (
    ITEM_ID_OFFSET,
    synthetic_optimal_recall,
    synthetic_sessions,
    synthetic_successors,
)
from seqrec.exceptions import ConfigError
from seqrec.metrics import recall_at_k, target_ranks


def transitions(df: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(current, next) external item ids of consecutive events within a session."""
    session = df.get_column(Columns.session).to_numpy()
    items = df.get_column(Columns.item).to_numpy()
    same = session[1:] == session[:-1]
    return items[:-1][same], items[1:][same]


def test_deterministic_for_a_seed():
    a = synthetic_sessions(300, 40, seed=5)
    b = synthetic_sessions(300, 40, seed=5)
    assert a.equals(b)
    assert np.array_equal(synthetic_successors(40, seed=5), synthetic_successors(40, seed=5))


def test_different_seeds_differ():
    a = synthetic_sessions(300, 40, seed=1)
    b = synthetic_sessions(300, 40, seed=2)
    assert not a.equals(b)
    assert not np.array_equal(synthetic_successors(40, seed=1), synthetic_successors(40, seed=2))
    assert synthetic_sessions(20, 10, seed=None).height >= 40  # fresh entropy works too


def test_columns_dtypes_and_ids():
    df = synthetic_sessions(500, 30, seed=0)
    assert df.schema == pl.Schema(
        {Columns.session: pl.Int64, Columns.item: pl.Int64, Columns.time: pl.Float64}
    )
    items = df.get_column(Columns.item)
    assert items.min() >= ITEM_ID_OFFSET and items.max() < ITEM_ID_OFFSET + 30
    assert items.n_unique() == 30
    assert df.get_column(Columns.session).unique().sort().to_list() == list(range(500))


def test_lengths_and_timestamps():
    df = synthetic_sessions(2000, 50, mean_length=6.0, seed=3, start_time=1.7e9, span_days=60.0)
    lengths = df.group_by(Columns.session).len().get_column("len")
    assert lengths.min() >= 2
    assert lengths.mean() == pytest.approx(6.0, rel=0.05)
    # sorted by session, strictly increasing time within a session
    session = df.get_column(Columns.session).to_numpy()
    time = df.get_column(Columns.time).to_numpy()
    assert np.all(np.diff(session) >= 0)
    same = session[1:] == session[:-1]
    assert np.all(np.diff(time)[same] > 0)
    # sessions are numbered in start order and spread over about 60 days
    starts = df.group_by(Columns.session).agg(pl.col(Columns.time).min()).sort(Columns.session)
    assert np.all(np.diff(starts.get_column(Columns.time).to_numpy()) >= 0)
    span_days = (time.max() - time.min()) / 86400
    assert 55 < span_days < 61
    assert time.min() >= 1.7e9


def test_fixed_length_two():
    df = synthetic_sessions(100, 10, mean_length=2.0, seed=0)
    assert df.group_by(Columns.session).len().get_column("len").to_list() == [2] * 100


def test_successors_form_a_single_cycle():
    n = 37
    succ = synthetic_successors(n, seed=4) - ITEM_ID_OFFSET
    seen, item = set(), 0
    for _ in range(n):  # walk the cycle once: every item exactly once
        seen.add(item)
        item = int(succ[item])
    assert item == 0 and len(seen) == n


@pytest.mark.parametrize(("n_items", "p_follow"), [(200, 0.9), (20, 0.5), (50, 0.0), (30, 1.0)])
def test_follow_rate(n_items, p_follow):
    df = synthetic_sessions(2000, n_items, p_follow=p_follow, seed=11)
    succ = synthetic_successors(n_items, seed=11)
    cur, nxt = transitions(df)
    rate = np.mean(nxt == succ[cur - ITEM_ID_OFFSET])
    # a uniform draw may also land on the successor
    expected = p_follow + (1 - p_follow) / n_items
    sd = np.sqrt(expected * (1 - expected) / len(cur))
    assert abs(rate - expected) <= 4 * sd + 1e-12


def test_non_follow_draws_are_uniform():
    n = 10
    df = synthetic_sessions(3000, n, p_follow=0.0, seed=2)
    counts = np.bincount(df.get_column(Columns.item).to_numpy() - ITEM_ID_OFFSET, minlength=n)
    expected = df.height / n
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    assert chi2 < 30  # 9 degrees of freedom: p < 0.001


@pytest.mark.parametrize(
    ("n_items", "p_follow", "k"), [(50, 0.6, 5), (200, 0.9, 20), (40, 0.3, 10)]
)
def test_oracle_recall_matches_monte_carlo(n_items, p_follow, k):
    seed = 21
    df = synthetic_sessions(2000, n_items, p_follow=p_follow, seed=seed)
    succ = synthetic_successors(n_items, seed=seed) - ITEM_ID_OFFSET
    cur, nxt = transitions(df)
    cur, nxt = cur - ITEM_ID_OFFSET, nxt - ITEM_ID_OFFSET
    # the oracle scores succ[current] highest, then any fixed k-1 other items (low ids first)
    scores = -torch.arange(n_items, dtype=torch.float32).expand(len(cur), n_items).clone()
    scores[torch.arange(len(cur)), torch.from_numpy(succ[cur])] = 1.0
    ranks = target_ranks(scores, torch.from_numpy(nxt))
    empirical = recall_at_k(ranks, k).double().mean().item()
    expected = synthetic_optimal_recall(n_items, p_follow, k)
    assert expected == pytest.approx(p_follow + (1 - p_follow) * k / n_items)
    sd = np.sqrt(expected * (1 - expected) / len(cur))
    assert abs(empirical - expected) <= 4 * sd


def test_optimal_recall_edges():
    assert synthetic_optimal_recall(10, 0.5, 10) == 1.0
    assert synthetic_optimal_recall(10, 0.5, 50) == 1.0
    assert synthetic_optimal_recall(100, 1.0, 1) == 1.0
    assert synthetic_optimal_recall(100, 0.0, 5) == pytest.approx(0.05)


def test_empty():
    df = synthetic_sessions(0, 10)
    assert df.height == 0 and df.columns == [Columns.session, Columns.item, Columns.time]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_items": 1},
        {"n_sessions": -1},
        {"mean_length": 1.5},
        {"p_follow": 1.2},
        {"p_follow": -0.1},
        {"span_days": 0.0},
    ],
)
def test_bad_arguments(kwargs):
    with pytest.raises(ConfigError):
        synthetic_sessions(**kwargs)


def test_bad_oracle_arguments():
    with pytest.raises(ConfigError):
        synthetic_optimal_recall(10, 0.5, 0)
    with pytest.raises(ConfigError):
        synthetic_optimal_recall(10, 1.5, 5)
