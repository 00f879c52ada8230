"""Next-basket metrics and evaluation against brute-force references on random sets."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import torch

from seqrec.columns import Columns
from seqrec.data.query import QueryBatch
from seqrec.data.sequences import SequenceData
from seqrec.evaluate import evaluate, evaluate_baskets
from seqrec.exceptions import ConfigError, DataError
from seqrec.metrics import BasketAccumulator, f1_micro_macro, parse_basket_metrics

N = 30


def _random_case(rng: np.random.Generator, B: int = 40):
    """Distinct scores (the ranked list is unique) with masked entries, targets, histories,
    dropped counts."""
    scores = torch.from_numpy(np.stack([rng.permutation(N) for _ in range(B)]).astype(np.float32))
    scores[:, 0] = float("-inf")
    scores[torch.from_numpy(rng.random((B, N)) < 0.2)] = float("-inf")  # masked
    target = torch.from_numpy(rng.random((B, N)) < 0.15)
    target[:, 0] = False
    history = torch.from_numpy(rng.random((B, N)) < 0.3)
    history[:, 0] = False
    dropped = torch.from_numpy(rng.integers(0, 2, B))
    pred = torch.from_numpy(rng.random((B, N)) < 0.2)
    pred[:, 0] = False
    return scores, target, history, dropped, pred


def _brute(scores, target, history, dropped, k):
    """Per-query metrics written the slow, obvious way (ranked list = topk order)."""
    out = {m: [] for m in ("recall", "precision", "ndcg", "phr")}
    rep, exp = [], []
    for b in range(scores.shape[0]):
        top = scores[b].topk(min(k, N)).indices.tolist()
        ranked = [i for i in top if math.isfinite(float(scores[b, i]))]  # masked left out
        T = set(torch.nonzero(target[b]).flatten().tolist())
        H = set(torch.nonzero(history[b]).flatten().tolist())
        d = int(dropped[b])
        size = len(T) + d
        hits = [i for i in ranked[:k] if i in T]
        out["recall"].append(len(hits) / size if size else 0.0)
        out["precision"].append(len(hits) / k)
        out["phr"].append(float(bool(hits)))
        dcg = sum(1 / math.log2(r + 2) for r, i in enumerate(ranked[:k]) if i in T)
        idcg = sum(1 / math.log2(r + 2) for r in range(min(k, size)))
        out["ndcg"].append(dcg / idcg if idcg else 0.0)
        R, E = T & H, T - H
        if R:
            rep.append(len([i for i in ranked[:k] if i in R]) / len(R))
        if len(E) + d:
            exp.append(len([i for i in ranked[:k] if i in E]) / (len(E) + d))
    res = {f"{m}@{k}": float(np.mean(v)) for m, v in out.items()}
    res[f"repeat_recall@{k}"] = float(np.mean(rep)) if rep else 0.0
    res[f"explore_recall@{k}"] = float(np.mean(exp)) if exp else 0.0
    return res


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_accumulator_matches_brute_force_over_chunks(seed):
    rng = np.random.default_rng(seed)
    scores, target, history, dropped, pred = _random_case(rng)
    acc = BasketAccumulator([5, 10, 40], N)
    for a in range(0, 40, 13):  # chunks of uneven size pool like one batch
        s = slice(a, a + 13)
        acc.add(scores[s], target[s], history[s], pred[s], dropped[s])
    names = [
        f"{m}@{k}"
        for k in (5, 10, 40)
        for m in ("recall", "precision", "ndcg", "phr", "repeat_recall", "explore_recall")
    ]
    got = acc.compute([*names, "f1_micro", "f1_macro"])
    for k in (5, 10, 40):  # k=40 > N: a list shorter than k, precision still divides by k
        ref = _brute(scores, target, history, dropped, k)
        for name, v in ref.items():
            assert got[name] == pytest.approx(v, abs=1e-6), name
    # F1 with no dropped items equals the independent full-matrix implementation
    acc0 = BasketAccumulator([10], N)
    acc0.add(scores, target, history, pred)
    micro, _ = f1_micro_macro(pred[:, 1:], target[:, 1:])
    _, macro_all = f1_micro_macro(pred[:, 1:], target[:, 1:], labels="all")
    _, macro_present = f1_micro_macro(pred[:, 1:], target[:, 1:], labels="present")
    assert acc0.compute(["f1_micro"])["f1_micro"] == pytest.approx(float(micro), abs=1e-6)
    assert acc0.compute(["f1_macro"])["f1_macro"] == pytest.approx(float(macro_all), abs=1e-6)
    occ = acc0.compute(["f1_macro"], macro_items="occurring")["f1_macro"]
    assert occ == pytest.approx(float(macro_present), abs=1e-6)
    # dropped target items are false negatives in micro F1
    tp = float((pred & target).sum())
    fp, fn = float((pred & ~target).sum()), float((~pred & target).sum()) + float(dropped.sum())
    assert got["f1_micro"] == pytest.approx(2 * tp / (2 * tp + fp + fn), abs=1e-6)


def test_p_at_20_differs_from_p_at_10_when_it_should():
    """The reference notebook reported P@20 == P@10 and R@20 == R@10 (a bug)."""
    scores = torch.arange(N, 0, -1, dtype=torch.float32).unsqueeze(0)  # item 1 best, ...
    scores[:, 0] = float("-inf")
    target = torch.zeros(1, N, dtype=torch.bool)
    target[0, [1, 2, 15]] = True  # two hits in the top 10, one more in 11..20
    acc = BasketAccumulator([10, 20], N)
    acc.add(scores, target, torch.zeros_like(target))
    m = acc.compute(["precision@10", "precision@20", "recall@10", "recall@20"])
    assert m["precision@10"] == pytest.approx(2 / 10) and m["precision@20"] == pytest.approx(3 / 20)
    assert m["recall@10"] == pytest.approx(2 / 3) and m["recall@20"] == pytest.approx(1.0)


def test_metric_names():
    assert parse_basket_metrics(["Recall@10", "f1_micro", "explore_recall@5"]) == [
        ("recall", 10),
        ("f1_micro", None),
        ("explore_recall", 5),
    ]
    for bad in ("mrr@10", "f1_micro@10", "recall", "f2"):
        with pytest.raises(ConfigError, match="next-basket metric"):
            parse_basket_metrics([bad])


# ----------------------------------------------------------------- evaluation end to end
class _Freq:
    """P-TopFreq without tie rules: the user's history counts (test scorer)."""

    def __init__(self, n_items: int, logits: bool = False) -> None:
        self.n_items = n_items
        self.scores_are_logits = logits

    def score(self, q: QueryBatch) -> torch.Tensor:
        rows, items = q.flat()
        c = torch.zeros(len(q), q.n_items)
        c.index_put_((rows, items), torch.ones(len(rows)), accumulate=True)
        return c * 2 - 3 if self.scores_are_logits else c + torch.arange(q.n_items) * 1e-3


def _users(rng, n_users=25, n_items=N):
    return [
        [
            list(rng.choice(np.arange(1, n_items), rng.integers(1, 6), replace=False))
            for _ in range(rng.integers(2, 7))
        ]
        for _ in range(n_users)
    ]


def test_evaluate_baskets_equals_brute_force_per_user():
    rng = np.random.default_rng(5)
    users = _users(rng)
    data = SequenceData.from_baskets(users, N)
    model = _Freq(N)
    rep = evaluate(model, data, metrics=["recall@5", "ndcg@5", "precision@5", "phr@5"])
    assert rep.protocol["task"] == "next-basket"
    # brute force: each basket after the first, predicted from all baskets before it
    vals = {"recall@5": [], "ndcg@5": [], "precision@5": [], "phr@5": []}
    for u in users:
        for t in range(1, len(u)):
            q = QueryBatch.from_baskets([u[:t]], N)
            s = model.score(q)
            s[:, 0] = float("-inf")
            T = torch.zeros(1, N, dtype=torch.bool)
            T[0, u[t]] = True
            H = torch.zeros_like(T)
            H[0, [i for b in u[:t] for i in b]] = True
            ref = _brute(s, T, H, torch.zeros(1), 5)
            for name in vals:
                vals[name].append(ref[name])
    assert rep.n_queries == sum(len(u) - 1 for u in users)
    for name, v in vals.items():
        assert rep.metrics[name] == pytest.approx(float(np.mean(v)), abs=1e-6), name


def test_set_rules_thresholds_restrict_and_errors():
    rng = np.random.default_rng(6)
    data = SequenceData.from_baskets(_users(rng), N)
    base = evaluate_baskets(_Freq(N), data, metrics=["f1_micro", "recall@10"])
    assert "mean history basket size" in base.protocol["set_rule"]
    top3 = evaluate_baskets(_Freq(N), data, metrics=["f1_micro"], set_size=3)
    assert top3.protocol["set_rule"] == "top-3" and top3.protocol["mean_predicted_set_size"] == 3
    lg = evaluate_baskets(
        _Freq(N, logits=True), data, metrics=["f1_micro"], threshold=0.4, thresholds=[0.3, 0.9]
    )
    assert lg.protocol["set_rule"] == "sigmoid(score) > 0.4"
    grid = lg.extra["f1_by_threshold"]
    assert [g["threshold"] for g in grid] == [0.3, 0.9]
    assert grid[1]["set_size"] < grid[0]["set_size"]  # a higher threshold predicts less
    r = evaluate_baskets(_Freq(N), data, metrics=["recall@10"], restrict=2)
    assert r.protocol["restricted"] and r.protocol["candidates"] == "restricted-top-2-frequency"
    assert r.metrics["recall@10"] <= base.metrics["recall@10"] + 1e-9
    for kw in (
        {"threshold": 1.0},
        {"threshold": 0.0},
        {"thresholds": [1.5]},
        {"set_size": 0},
        {"restrict": 0},
    ):
        with pytest.raises(ConfigError):
            evaluate_baskets(_Freq(N), data, **kw)
    with pytest.raises(ConfigError, match="sampled candidates"):
        evaluate(_Freq(N), data, candidates=100)
    with pytest.raises(DataError, match="no target basket"):
        evaluate_baskets(_Freq(N), SequenceData.from_baskets([[[1]]], N))


def test_sequence_data_from_frame_and_select_keep_baskets():
    from seqrec.data.vocab import Vocabulary

    df = pl.DataFrame(
        {
            Columns.session: [1, 1, 1, 1, 2, 2, 2, 1],
            Columns.basket: [10, 10, 11, 11, 20, 21, 21, 10],
            Columns.item: [5, 6, 5, 7, 6, 6, 8, 5],  # the last row repeats item 5 in basket 10
            Columns.time: [0.0, 0.0, 9.0, 9.0, 3.0, 4.0, 4.0, 0.0],
            Columns.order_dow: [1.0, 1.0, 2.0, 2.0, 3.0, 4.0, 4.0, 1.0],
        }
    )
    vocab = Vocabulary.fit(pl.Series([5, 6, 7]))  # item 8 unknown
    d = SequenceData.from_frame(df, vocab)
    assert d.is_baskets and d.n_baskets == 4 and d.context_names == (Columns.order_dow,)
    dec = [[list(vocab.decode(b)) for b in d.baskets_of(i)] for i in range(len(d))]
    assert dec == [[[5, 6], [5, 7]], [[6], [6]]]  # repeats merged, unknown 8 dropped
    assert d.basket_dropped.tolist() == [0, 0, 0, 1]
    assert d.basket_context[:, 0].tolist() == [1.0, 2.0, 3.0, 4.0]
    s = d.select(np.array([1, 1, 0]))
    assert s.n_baskets == 6 and s.basket_context[:, 0].tolist() == [3, 4, 3, 4, 1, 2]
    assert s.basket_dropped.tolist() == [0, 1, 0, 1, 0, 0]
    with pytest.raises(DataError, match="empty"):
        SequenceData.from_baskets([[[1], []]])


def test_basket_queries_views_and_padding():
    q = QueryBatch.from_baskets([[[1, 2], [3]], [[2], [2, 4, 4], [1]], []], 6)
    items, item_valid, basket_valid, ctx = q.baskets_last(2)
    assert items.tolist() == [[[1, 2], [3, 0]], [[2, 4], [1, 0]], [[0, 0], [0, 0]]]
    assert basket_valid.tolist() == [[True, True], [True, True], [False, False]]
    assert ctx is None and q.n_baskets.tolist() == [2, 3, 0]
    rows, pos, it = q.basket_flat()
    assert rows.tolist() == [0, 0, 0, 1, 1, 1, 1] and pos.tolist() == [0, 0, 1, 0, 1, 1, 2]
    assert it.tolist() == [1, 2, 3, 2, 2, 4, 1]
    assert q.select(slice(1, 3)).baskets_last(1)[0].tolist() == [[[1]], [[0]]]
    data = SequenceData.from_baskets(
        [[[1, 2], [3]], [[2], [2, 4], [1]]],
        6,
        context=np.arange(10).reshape(5, 2),
        context_names=("a", "b"),
    )
    p = QueryBatch.basket_prefixes(data, data.target_baskets())
    assert [h.tolist() for h in p.histories()] == [[1, 2], [2], [2, 2, 4]]
    assert p.baskets_last(2)[3][2].tolist() == [[4.0, 5.0], [6.0, 7.0]]
