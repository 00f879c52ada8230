"""The contract of next-basket models (see :mod:`seqrec.testing`).

The planted task: :func:`~seqrec.data.synthetic.synthetic_baskets` (users with personal
staples bought again and again, the rest Zipf-popular), split leave-last-basket-out. A model
that learns it ranks the user's staples first; a popularity-only model cannot.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from seqrec.columns import BASKET_CONTEXT, Columns
from seqrec.data.query import Query, QueryBatch
from seqrec.data.synthetic import synthetic_baskets
from seqrec.evaluate import evaluate_baskets
from seqrec.exceptions import DataError, UnknownItemError
from seqrec.models import MODELS
from seqrec.recommender import Recommender, _to_sequences
from seqrec.split import leave_last_out

N_BASKET_ITEMS = 150


def planted_basket_task(seed: int = 4) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(train, test) of the planted basket task: 300 users over 150 items, leave the last
    basket out (``test`` carries the full histories with the last basket as target)."""
    df = synthetic_baskets(
        300,
        N_BASKET_ITEMS,
        mean_baskets=8.0,
        max_baskets=20,
        mean_size=6.0,
        n_staples=6.0,
        seed=seed,
    )
    s = leave_last_out(df, valid=False)
    return s.train, s.test


def _uses_context(rec: Recommender) -> bool:
    return bool(getattr(rec.model_, "context_names", ()))


def _user_queries(rec: Recommender, test: pl.DataFrame, n: int) -> list[Query]:
    """The history baskets (targets left out) of the first ``n`` users of ``test``."""
    hist = test.filter(~pl.col("is_target")) if "is_target" in test.columns else test
    g = (
        hist.group_by([Columns.session, Columns.basket], maintain_order=True)
        .agg(
            pl.col(Columns.item), *(pl.col(c).first() for c in BASKET_CONTEXT if c in hist.columns)
        )
        .group_by(Columns.session, maintain_order=True)
        .agg(pl.all())
        .head(n)
    )
    out = []
    for row in g.iter_rows(named=True):
        ctx = None
        if _uses_context(rec):
            ctx = np.column_stack([row[c] for c in rec.model_.context_names]).astype(np.float32)
        out.append(Query(baskets=row[Columns.item], context=ctx, query_id=row[Columns.session]))
    return out


def _empty_query(rec: Recommender) -> Query:
    ctx = np.zeros((0, len(rec.model_.context_names)), np.float32) if _uses_context(rec) else None
    return Query(baskets=[], context=ctx)


# ------------------------------------------------------------------ checks
def check_basket_learns_planted_task(case: Any) -> None:
    """recall@10 on held-out baskets inside the spec's ``planted_recall`` band."""
    r = case.rec.evaluate(case.test).metrics["recall@10"]
    lo, hi = MODELS[case.name].planted_recall
    assert lo <= r <= hi, f"{case.name}: recall@10 = {r:.3f} outside {lo}..{hi}"


def check_basket_batch_equals_single_query(case: Any) -> None:
    """Users with different numbers of baskets in one batch get what each gets alone."""
    queries = _user_queries(case.rec, case.test, 10)
    queries = [  # vary the history length: 1.. baskets
        Query(
            baskets=q.baskets[: 1 + i % len(q.baskets)],
            context=None if q.context is None else q.context[: 1 + i % len(q.baskets)],
        )
        for i, q in enumerate(queries)
    ]
    batch = case.rec.recommend_queries(queries, k=10)
    for q, r in zip(queries, batch, strict=True):
        one = case.rec.recommend_queries([q], k=10)[0]
        np.testing.assert_allclose(r.scores, one.scores, rtol=1e-5, atol=1e-5)
        assert set(r.items[r.scores > r.scores.min()]) == set(
            one.items[one.scores > one.scores.min()]
        )


def check_basket_evaluation_equals_brute_force(case: Any) -> None:
    """Batched evaluation (basket prefixes as views) = scoring each user alone."""
    data, _ = _to_sequences(case.test, case.rec.vocab_)
    data = data.select(np.arange(20))
    model = case.rec.model_
    metrics = ["recall@10", "ndcg@10", "precision@5"]
    rep = evaluate_baskets(model, data, metrics=metrics, batch_size=6)
    per: dict[str, list[float]] = {m: [] for m in metrics}
    for t in data.target_baskets():
        one = data.select(np.array([int(np.searchsorted(data.sequence_baskets(), t, "right") - 1)]))
        r = evaluate_baskets(model, one, metrics=metrics)
        for m in metrics:
            per[m].append(r.metrics[m])
    for m in metrics:
        assert abs(rep.metrics[m] - float(np.mean(per[m]))) < 1e-6, m
    # the prefix view equals a batch built from lists
    q = QueryBatch.basket_prefixes(data, data.target_baskets()[:3])
    lists = []
    bo, sb = data.basket_offsets, data.sequence_baskets()
    for t in data.target_baskets()[:3]:
        u = int(np.searchsorted(sb, t, "right") - 1)
        lists.append([data.items[bo[b] : bo[b + 1]] for b in range(sb[u], t)])
    ctx = None
    if data.basket_context is not None:
        ctx = [
            data.basket_context[sb[int(np.searchsorted(sb, t, "right") - 1)] : t]
            for t in data.target_baskets()[:3]
        ]
    q2 = QueryBatch.from_baskets(lists, data.n_items, context=ctx)
    with torch.no_grad():
        torch.testing.assert_close(model.score(q), model.score(q2))


def check_basket_save_load_identical(case: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        case.rec.save(Path(tmp) / "m")
        rec2 = Recommender.load(Path(tmp) / "m")
        qs = _user_queries(case.rec, case.test, 5)
        a = case.rec.recommend_queries(qs, k=20)
        b = rec2.recommend_queries(qs, k=20)
        for x, y in zip(a, b, strict=True):
            assert list(x.items) == list(y.items), f"{case.name}: changed after save/load"
            np.testing.assert_allclose(x.scores, y.scores, rtol=1e-6)
        assert rec2.config == case.rec.config


def check_basket_unknown_and_empty_input(case: Any) -> None:
    rec = case.rec
    empty = rec.recommend_queries([_empty_query(rec)], k=5)[0]
    assert len(empty.items) == 5 and empty.empty_history and np.isfinite(empty.scores).all()
    q = _user_queries(rec, case.test, 1)[0]
    unknown = Query(
        baskets=[[*q.baskets[0], -12345]], context=None if q.context is None else q.context[:1]
    )
    known = Query(baskets=[q.baskets[0]], context=unknown.context)
    a, b = rec.recommend_queries([unknown, known], k=5)
    assert list(a.items) == list(b.items) and not a.empty_history
    try:
        rec.recommend_queries([unknown], k=5, unknown="error")
    except UnknownItemError as e:
        assert "-12345" in str(e)
    else:  # pragma: no cover
        raise AssertionError("unknown='error' did not raise UnknownItemError")
    try:
        rec.recommend_queries([Query(items=q.baskets[0])], k=5)
    except DataError as e:
        assert "baskets" in str(e)
    else:  # pragma: no cover
        raise AssertionError("a flat item list given to a next-basket model was accepted")


def check_basket_exclusions_and_candidates(case: Any) -> None:
    rec = case.rec
    q = _user_queries(rec, case.test, 1)[0]
    seen = {i for b in q.baskets for i in b}
    out = rec.recommend_queries([q], k=N_BASKET_ITEMS, exclude_seen=True)[0]
    assert not set(out.items) & seen
    cand = case.train[Columns.item].unique().sort().to_list()[:7]
    r = rec.recommend_queries(
        [Query(baskets=q.baskets, context=q.context, exclude=cand[:3], candidates=cand)], k=20
    )[0]
    assert set(r.items) == set(cand[3:])


def check_basket_scores_shape_and_finite(case: Any) -> None:
    rec = case.rec
    batch = rec.query_batch([*_user_queries(rec, case.test, 6), _empty_query(rec)])
    assert batch.is_baskets
    with torch.no_grad():
        s1 = rec.model_.score(batch)
        s2 = rec.model_.score(batch)
    assert tuple(s1.shape) == (7, rec.vocab_.n_items)
    assert torch.isfinite(s1[:, 1:]).all()
    assert torch.equal(s1, s2), "scoring twice gave different scores"


def basket_contract_checks() -> list[Callable[[Any], None]]:
    return [
        check_basket_learns_planted_task,
        check_basket_batch_equals_single_query,
        check_basket_evaluation_equals_brute_force,
        check_basket_save_load_identical,
        check_basket_unknown_and_empty_input,
        check_basket_exclusions_and_candidates,
        check_basket_scores_shape_and_finite,
    ]
