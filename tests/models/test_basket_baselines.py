"""The next-basket baselines on hand-made examples with hand-computed lists, TIFU-KNN and UP-CF
against slow per-user references, and a vectorisation guard."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from seqrec.data.query import QueryBatch
from seqrec.data.sequences import SequenceData
from seqrec.data.synthetic import synthetic_baskets
from seqrec.data.vocab import Vocabulary
from seqrec.models.basket.tifu_knn import TIFUKNN, TIFUKNNConfig, tifu_vectors
from seqrec.models.basket.topfreq import (
    GPTopFreq,
    GPTopFreqConfig,
    GTopFreq,
    GTopFreqConfig,
    PTopFreq,
    PTopFreqConfig,
)
from seqrec.models.basket.upcf import UPCF, UPCFConfig

# items 1..5 (0 = padding). Baskets containing each item: 1 -> 2, 2 -> 3, 3 -> 4, 4 -> 1, 5 -> 1
TRAIN = [
    [[1, 2], [2, 3], [2]],
    [[3, 4], [1, 3]],
    [[5], [3]],
]
N = 6
G_LIST = [3, 2, 1, 4, 5]  # by basket count, equal counts (4, 5) by the lower index


def ranked(scores: torch.Tensor) -> list[list[int]]:
    """Each row's items by decreasing score (finite, column 0 left out); scores must be
    strictly ordered so the list does not depend on a sort's tie order."""
    out = []
    for row in scores.numpy():
        idx = [i for i in np.argsort(-row, kind="stable") if i != 0 and np.isfinite(row[i])]
        vals = row[idx]
        assert (np.diff(vals) < 0).all(), f"tied scores in {vals}"
        out.append([int(i) for i in idx])
    return out


def fit(model_cls, config, users=TRAIN, n=N):
    return model_cls(config, n).fit(SequenceData.from_baskets(users, n))


def test_g_topfreq_hand_example():
    m = fit(GTopFreq, GTopFreqConfig())
    q = QueryBatch.from_baskets([[[4]], []], N)
    assert ranked(m.score(q)) == [G_LIST, G_LIST]
    assert torch.floor(m.score(q)[0, 3]) == 4.0  # the basket count (+ a tie-break < 0.5)


def test_p_and_gp_topfreq_hand_example():
    queries = [
        [[1, 2], [2, 3], [2]],  # 2 x3; 1 and 3 once: 3 bought more recently
        [[5, 1]],  # once each, same basket: the G-TopFreq order (1 before 5)
        [[4, 5]],  # same count, basket and basket count: the lower index
        [],  # empty history: G-TopFreq
    ]
    q = QueryBatch.from_baskets(queries, N)
    p = fit(PTopFreq, PTopFreqConfig()).score(q)
    assert ranked(p) == [
        [2, 3, 1, 5, 4],  # then the rest, least frequent first
        [1, 5, 4, 2, 3],
        [4, 5, 1, 2, 3],
        G_LIST,
    ]
    short = fit(PTopFreq, PTopFreqConfig(short_list=True)).score(q)
    assert ranked(short) == [[2, 3, 1], [1, 5], [4, 5], G_LIST]
    gp = fit(GPTopFreq, GPTopFreqConfig()).score(q)
    assert ranked(gp) == [[2, 3, 1, 4, 5], [1, 5, 3, 2, 4], [4, 5, 3, 2, 1], G_LIST]
    # the evidence of a history item: count + (last + 1) / (n_baskets + 1)
    ev, _ = fit(GPTopFreq, GPTopFreqConfig()).personal_evidence(q)
    np.testing.assert_allclose(ev.toarray()[0], [0, 1 + 1 / 4, 3 + 3 / 4, 1 + 2 / 4, 0, 0])


def test_flat_query_is_refused():
    from seqrec.exceptions import DataError

    m = fit(GPTopFreq, GPTopFreqConfig())
    with pytest.raises(DataError, match="baskets"):
        m.score(QueryBatch.from_lists([[1, 2]], N))


# ------------------------------------------------------------------------------ UP-CF
UPCF_TRAIN = [[[1, 2], [1]], [[2, 3, 4]]]  # A: I = {1, 2}; B: I = {2, 3, 4}


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("r", [None, 1])
@pytest.mark.parametrize("q", [1.0, 2.0])
def test_upcf_hand_example(alpha, r, q):
    m = fit(UPCF, UPCFConfig(alpha=alpha, r=r, q=q), UPCF_TRAIN)
    batch = QueryBatch.from_baskets([[[1], [1, 3]]], N)  # a new user, I_u = {1, 3}
    ev = m.evidence(batch).toarray()[0]
    # user-wise popularities (recency r): share of the last min(r, n) baskets containing i
    pi_a = {1: 1.0, 2: 0.5} if r is None else {1: 1.0}
    pi_b = {2: 1.0, 3: 1.0, 4: 1.0}
    pi_u = {1: 1.0, 3: 0.5} if r is None else {1: 1.0, 3: 1.0}
    w_a = 1 / (2**alpha * 2 ** (1 - alpha))  # |{1}| / (|I_u|^a |I_A|^(1-a))
    w_b = 1 / (2**alpha * 3 ** (1 - alpha))  # |{3}|
    want = np.zeros(N)
    for i in range(N):
        want[i] = pi_u.get(i, 0) + w_a**q * pi_a.get(i, 0) + w_b**q * pi_b.get(i, 0)
    np.testing.assert_allclose(ev, want, rtol=1e-12)
    # the ranked list: evidence, then the G-TopFreq order (item 5: never bought)
    order = [i for i in np.argsort(-want, kind="stable") if want[i] > 0]
    assert ranked(m.score(batch))[0][: len(order)] == order
    assert ranked(m.score(batch))[0][-1] == 5


def test_upcf_k_keeps_the_most_similar_users():
    m = fit(UPCF, UPCFConfig(alpha=0.5, r=None, q=1.0, k=1), UPCF_TRAIN)
    ev = m.evidence(QueryBatch.from_baskets([[[1], [1, 3]]], N)).toarray()[0]
    # w_A = 1/2 > w_B = 1/sqrt(6): only A is kept
    np.testing.assert_allclose(ev, [0, 1 + 0.5, 0.25, 0.5, 0, 0], rtol=1e-12)


@pytest.mark.parametrize("alpha,k", [(0.3, None), (1.0, 10)])  # alpha=1: exact ties for k
def test_upcf_matches_a_per_user_reference(alpha, k):
    df = synthetic_baskets(60, 40, mean_baskets=7.0, max_baskets=15, mean_size=4.0, seed=2)
    data = SequenceData.from_frame(df, Vocabulary.fit(df["item_id"]))
    cfg = UPCFConfig(alpha=alpha, r=3, q=2.0, k=k)
    m = UPCF(cfg, data.n_items).fit(data)
    users = [data.baskets_of(i) for i in range(len(data))]
    queries = [u[: max(1, len(u) - 2)] for u in users[:15]]
    ev = m.evidence(QueryBatch.from_baskets(queries, data.n_items)).toarray()

    def pi(baskets):
        v = np.zeros(data.n_items)
        recent = baskets[-cfg.r :]
        for b in recent:
            v[b] += 1.0 / len(recent)
        return v

    sets = [set(np.concatenate(u).tolist()) for u in users]
    for row, qb in enumerate(queries):
        iu = set(np.concatenate(qb).tolist())
        w = np.array(
            [len(iu & iv) / (len(iu) ** cfg.alpha * len(iv) ** (1 - cfg.alpha)) for iv in sets]
        )
        keep = [v for v in np.argsort(-w, kind="stable")[: cfg.k or len(w)] if w[v] > 0]
        want = pi(qb) + sum(w[v] ** cfg.q * pi(users[v]) for v in keep)
        np.testing.assert_allclose(ev[row], want, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------- TIFU-KNN
def reference_vector(baskets, n_items, c: TIFUKNNConfig):
    """The authors' ``temporal_decay_sum_history`` / ``group_history_list``, per user."""
    n, m = len(baskets), c.m
    if n == 0:
        return np.zeros(n_items)
    his = []
    for j, b in enumerate(baskets):
        v = np.zeros(n_items)
        v[b] = c.rb ** (n - 1 - j)
        his.append(v)
    if n < m:
        groups = his
    else:
        base, extra = n // m, n % m
        sizes = [base] * (m - extra) + [base + 1] * extra
        groups, a = [], 0
        for s in sizes:
            groups.append(sum(his[a : a + s]) / s)
            a += s
    out = np.zeros(n_items)
    for g, gv in enumerate(groups):
        out += gv * c.rg ** (m - 1 - g)
    return out / len(groups)


@pytest.mark.parametrize("n_baskets,m", [(5, 3), (2, 3), (6, 3), (7, 7), (10, 4), (1, 1)])
def test_tifu_vectors_group_formation(n_baskets, m):
    c = TIFUKNNConfig(m=m, rb=0.8, rg=0.6)
    rng = np.random.default_rng(n_baskets * 10 + m)
    baskets = [rng.choice(np.arange(1, 9), size=3, replace=False) for _ in range(n_baskets)]
    rows = np.concatenate([np.zeros(3, np.int64) for _ in baskets])
    pos = np.concatenate([np.full(3, j) for j in range(n_baskets)])
    items = np.concatenate(baskets)
    got = tifu_vectors(rows, pos, items, np.array([n_baskets]), 9, c).toarray()[0]
    np.testing.assert_allclose(got, reference_vector(baskets, 9, c), rtol=1e-12)


def test_tifu_groups_by_hand():
    # 5 baskets, m = 3: groups {b0}, {b1, b2}, {b3, b4} (the older groups are the smaller)
    c = TIFUKNNConfig(m=3, rb=0.5, rg=0.5)
    v = tifu_vectors(
        np.zeros(5, np.int64), np.arange(5), np.arange(1, 6), np.array([5]), 6, c
    ).toarray()[0]
    rb = [0.5**4, 0.5**3, 0.5**2, 0.5, 1.0]
    want = [0, rb[0] * 0.25 / 3, rb[1] / 2 * 0.5 / 3, rb[2] / 2 * 0.5 / 3, rb[3] / 2 / 3, 1 / 2 / 3]
    np.testing.assert_allclose(v, want, rtol=1e-12)


def brute_force_tifu(train_users, queries, n_items, c: TIFUKNNConfig) -> np.ndarray:
    users = np.stack([reference_vector(u, n_items, c) for u in train_users])
    out = []
    for qb in queries:
        v = reference_vector(qb, n_items, c)
        sims = np.zeros(len(users))
        for j, uv in enumerate(users):
            d = np.linalg.norm(v) * np.linalg.norm(uv)
            sims[j] = v @ uv / d if d > 0 else 0.0
        order = [j for j in np.argsort(-sims, kind="stable") if sims[j] > 0][: c.k]
        nbr = users[order].mean(axis=0) if order else np.zeros(n_items)
        out.append(c.alpha * v + (1 - c.alpha) * nbr)
    return np.stack(out)


@pytest.mark.parametrize("k,m", [(5, 3), (30, 7), (1000, 2)])
def test_tifu_knn_matches_brute_force(k, m):
    df = synthetic_baskets(80, 50, mean_baskets=8.0, max_baskets=20, mean_size=4.0, seed=k)
    data = SequenceData.from_frame(df, Vocabulary.fit(df["item_id"]))
    c = TIFUKNNConfig(k=k, m=m, rb=0.9, rg=0.7, alpha=0.7)
    model = TIFUKNN(c, data.n_items).fit(data)
    users = [data.baskets_of(i) for i in range(len(data))]
    queries = [u[: 1 + i % len(u)] for i, u in enumerate(users[:20])] + [[]]
    got = model.evidence(QueryBatch.from_baskets(queries, data.n_items)).toarray()
    want = brute_force_tifu(users, queries, data.n_items, c)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    # ranking = the evidence, equal evidence and the rest by the G-TopFreq order
    scores = model.score(QueryBatch.from_baskets(queries, data.n_items))
    for row in range(3):
        top = ranked(scores[row : row + 1])[0][:5]
        assert np.all(np.diff(want[row][top]) <= 0)
    assert (
        ranked(scores[-1:])[0]
        == ranked(fit_g(data).score(QueryBatch.from_baskets([[]], data.n_items)))[0]
    )


def fit_g(data):
    return GTopFreq(GTopFreqConfig(), data.n_items).fit(data)


def test_tifu_knn_new_user_and_unknown_overlap():
    m = fit(TIFUKNN, TIFUKNNConfig(k=2, m=2, alpha=0.5))
    ev = m.evidence(QueryBatch.from_baskets([[[4]]], N)).toarray()[0]
    # the query vector: 1 basket, 1 group -> rg^(m-1) / 1 = 0.7; its only neighbour is user 2
    # (the only training user with item 4)
    own = np.zeros(N)
    own[4] = 0.7
    nbr = reference_vector([np.array(b) for b in TRAIN[1]], N, TIFUKNNConfig(k=2, m=2))
    np.testing.assert_allclose(ev, 0.5 * own + 0.5 * nbr, rtol=1e-12)


# ------------------------------------------------------------------------- speed guard
def test_tifu_knn_is_vectorised():
    """Fit + score 5,000 synthetic users: seconds, not the minutes a per-user loop takes
    (measured ~1-3 s on 2 shared cores; the bound leaves room for a busy machine)."""
    df = synthetic_baskets(5000, 2000, seed=1)
    data = SequenceData.from_frame(df, Vocabulary.fit(df["item_id"]))
    targets = data.sequence_baskets()[1:] - 1  # each user's last basket
    t0 = time.perf_counter()
    model = TIFUKNN(TIFUKNNConfig(), data.n_items).fit(data)
    for a in range(0, len(targets), 1024):
        s = model.score(QueryBatch.basket_prefixes(data, targets[a : a + 1024]))
        assert s.shape == (min(1024, len(targets) - a), data.n_items)
    dt = time.perf_counter() - t0
    assert dt < 20.0, f"TIFU-KNN fit + score of 5,000 users took {dt:.1f}s"
