"""The model contract suite (see :mod:`seqrec.testing`)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from seqrec.columns import Columns
from seqrec.data.query import Query
from seqrec.data.synthetic import synthetic_optimal_recall, synthetic_sessions
from seqrec.evaluate import brute_force_ranks, iter_scores
from seqrec.exceptions import UnknownItemError
from seqrec.metrics import target_ranks
from seqrec.models import MODELS
from seqrec.models.base import SupportsReplay
from seqrec.recommender import Recommender, _to_sequences
from seqrec.train import TrainConfig

N_ITEMS = 100
P_FOLLOW = 0.9


def planted_task(seed: int = 3) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(train, test) of the planted synthetic task: 1,500 sessions over 100 items, the last
    250 sessions (by id, i.e. start time) held out."""
    df = synthetic_sessions(n_sessions=1500, n_items=N_ITEMS, p_follow=P_FOLLOW, seed=seed)
    test_ids = df.get_column(Columns.session).unique().sort()[-250:].implode()
    return (
        df.filter(~pl.col(Columns.session).is_in(test_ids)),
        df.filter(pl.col(Columns.session).is_in(test_ids)),
    )


def fit_example(name: str, train: pl.DataFrame, *, seed: int = 0) -> Recommender:
    """A Recommender of model ``name`` with its spec's example config, fitted on ``train``."""
    spec = MODELS[name]
    ex = spec.example
    model = spec.config.model_validate({"name": name, **ex.get("model", {})})
    objective = None
    if spec.objective is not None:
        objective = spec.objective.model_validate(ex.get("objective", {}))
    train_cfg = TrainConfig.model_validate(
        {"progress": False, "device": "cpu", **ex.get("train", {})}
    )
    return Recommender(model, objective, train_cfg, seed=seed).fit(train)


@dataclass
class ContractCase:
    name: str
    rec: Recommender
    train: pl.DataFrame
    test: pl.DataFrame


def _sessions(df: pl.DataFrame, n: int) -> list[list[Any]]:
    g = df.group_by(Columns.session, maintain_order=True).agg(Columns.item)
    return [list(s) for s in g[Columns.item][:n].to_list()]


# ------------------------------------------------------------------ checks
def check_learns_planted_task(case: ContractCase) -> None:
    """recall@20 on held-out sessions inside the spec's band, never above the oracle."""
    r = case.rec.evaluate(case.test).metrics["recall@20"]
    lo, hi = MODELS[case.name].planted_recall
    assert lo <= r <= hi, f"{case.name}: recall@20 = {r:.3f} outside {lo}..{hi}"
    oracle = synthetic_optimal_recall(N_ITEMS, P_FOLLOW, 20)
    assert r <= oracle + 0.03, f"{case.name}: recall@20 = {r:.3f} beats the oracle {oracle:.3f}"


def check_batch_equals_single_query(case: ContractCase) -> None:
    """Queries of different lengths in one batch give what each gives alone."""
    sessions = _sessions(case.test, 12)
    sessions = [s[: 1 + i % len(s)] for i, s in enumerate(sessions)]
    batch = case.rec.recommend_many(sessions, k=10)
    for s, (ids, scores) in zip(sessions, batch, strict=True):
        one_ids, one_scores = case.rec.recommend_many([s], k=10)[0]
        np.testing.assert_allclose(scores, one_scores, rtol=1e-5, atol=1e-5)
        # equal ids, up to the order of items whose scores tie
        assert set(ids[scores > scores.min()]) == set(one_ids[one_scores > one_scores.min()])


def check_evaluation_paths_agree(case: ContractCase) -> None:
    """Batched prefix scoring = brute force one query at a time; replay (if any) = both."""
    data, _ = _to_sequences(case.test, case.rec.vocab_)
    data = data.select(np.arange(25))
    model = case.rec.model_
    for exclude_seen in (False, True):
        bf = brute_force_ranks(model, data, exclude_seen=exclude_seen)
        paths = [False, True] if isinstance(model, SupportsReplay) else [False]
        for replay in paths:
            got = [
                target_ranks(s, t, mask=m).cpu().numpy()
                for s, t, m in iter_scores(
                    model, data, batch_size=7, exclude_seen=exclude_seen, replay=replay
                )
            ]
            ranks = np.concatenate(got)
            assert len(ranks) == data.target_mask().sum()
            if replay:  # replay order differs: compare the multisets
                np.testing.assert_allclose(np.sort(ranks), np.sort(bf))
            else:  # prefix queries come in target order, as brute force
                np.testing.assert_allclose(ranks, bf)


def check_save_load_identical(case: ContractCase) -> None:
    """A saved and reloaded model recommends exactly the same."""
    with tempfile.TemporaryDirectory() as tmp:
        case.rec.save(Path(tmp) / "m")
        rec2 = Recommender.load(Path(tmp) / "m")
        for q in _sessions(case.test, 5):
            a, b = case.rec.recommend(q, k=20), rec2.recommend(q, k=20)
            assert a.equals(b), f"{case.name}: recommendations changed after save/load"
        assert rec2.config == case.rec.config


def check_unknown_and_empty_input(case: ContractCase) -> None:
    """Unknown items are dropped (or an error when asked); an empty history gets the
    empty-prefix answer, flagged."""
    rec = case.rec
    empty = rec.recommend_queries([Query(items=[])], k=5)[0]
    assert len(empty.items) == 5 and empty.empty_history
    assert np.isfinite(empty.scores).all()
    unk = rec.recommend_queries([Query(items=[-12345])], k=5)[0]
    assert unk.empty_history and list(unk.items) == list(empty.items)
    try:
        rec.recommend([-12345], k=5, unknown="error")
    except UnknownItemError as e:
        assert "-12345" in str(e)
    else:  # pragma: no cover - a contract violation
        raise AssertionError("unknown='error' did not raise UnknownItemError")
    known = rec.recommend_queries([Query(items=_sessions(case.test, 1)[0])], k=5)[0]
    assert not known.empty_history


def check_exclusions_and_candidates(case: ContractCase) -> None:
    """exclude_seen, per-query exclude and candidate sets are honoured."""
    rec = case.rec
    q = case.test[Columns.item][:4].to_list()
    out = rec.recommend(q, k=N_ITEMS, exclude_seen=True)[Columns.item].to_list()
    assert not set(out) & set(q)
    cand = case.train[Columns.item].unique().sort().to_list()[:7]
    got = rec.recommend(q, k=20, candidates=cand)[Columns.item].to_list()
    assert set(got) <= set(cand) and len(got) == 7
    r = rec.recommend_queries([Query(items=q, exclude=cand[:3], candidates=cand)], k=20)[0]
    assert set(r.items) == set(cand[3:])


def check_scores_shape_and_finite(case: ContractCase) -> None:
    """score(batch) is (B, n_items), finite for real items, does not change the model."""
    rec = case.rec
    batch = rec.query_batch([Query(items=s) for s in _sessions(case.test, 6)] + [Query()])
    with torch.no_grad():
        s1 = rec.model_.score(batch)
        s2 = rec.model_.score(batch)
    assert tuple(s1.shape) == (7, rec.vocab_.n_items)
    assert torch.isfinite(s1[:, 1:]).all()
    assert torch.equal(s1, s2), "scoring twice gave different scores"


def contract_checks(task: str = "next-item") -> list[Callable[[ContractCase], None]]:
    """Every check of the contract of ``task`` (``"next-item"`` or ``"next-basket"``), in a
    stable order."""
    if task == "next-basket":
        from seqrec.testing.basket_contract import basket_contract_checks

        return basket_contract_checks()
    return [
        check_learns_planted_task,
        check_batch_equals_single_query,
        check_evaluation_paths_agree,
        check_save_load_identical,
        check_unknown_and_empty_input,
        check_exclusions_and_candidates,
        check_scores_shape_and_finite,
    ]
