"""Tests of seqrec.metrics: hand-computed cases, brute-force references, accumulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqrec.exceptions import ConfigError
from seqrec.metrics import (
    RankAccumulator,
    basket_precision_recall_at_k,
    f1_micro_macro,
    hit_rate_at_k,
    mrr_at_k,
    ndcg_at_k,
    parse_metrics,
    recall_at_k,
    sampled_target_ranks,
    target_ranks,
)

NAN = float("nan")
TIES = ("conservative", "optimistic", "average")


# ---------------------------------------------------------------------------- hand-computed
# column 0 is padding in every row
SCORES = torch.tensor(
    [
        [0.0, 0.5, 0.9, 0.5, 0.1],  # target 1: one better (col 2), one tie (col 3)
        [5.0, 0.2, 0.2, 0.2, 0.2],  # target 4: padding beats it, three ties
        [0.0, 0.3, NAN, 0.1, 0.7],  # target 1: NaN never beats it, col 4 does
        [0.0, NAN, 0.2, NAN, 0.4],  # target 3 is NaN (= -inf): ties with col 1
    ]
)
TARGETS = torch.tensor([1, 4, 1, 3])
MASK = torch.tensor(
    [
        [True, False, False, False, False],
        [True, False, False, False, False],
        [True, False, False, False, True],  # col 4 already seen
        [True, True, False, True, False],  # the target's own column is masked: ignored
    ]
)


@pytest.mark.parametrize(
    ("ties", "mask", "expected"),
    [
        ("optimistic", None, [2.0, 2.0, 2.0, 4.0]),
        ("conservative", None, [3.0, 5.0, 2.0, 5.0]),
        ("average", None, [2.5, 3.5, 2.0, 4.5]),
        ("optimistic", MASK, [2.0, 1.0, 1.0, 3.0]),
        ("conservative", MASK, [3.0, 4.0, 1.0, 3.0]),
        ("average", MASK, [2.5, 2.5, 1.0, 3.0]),
    ],
)
def test_target_ranks_hand_computed(ties, mask, expected):
    ranks = target_ranks(SCORES, TARGETS, ties=ties, mask=mask)
    assert ranks.dtype == torch.float32
    assert ranks.tolist() == expected


def test_default_tie_policy_is_conservative():
    assert torch.equal(
        target_ranks(SCORES, TARGETS), target_ranks(SCORES, TARGETS, ties="conservative")
    )


def test_constant_scores_rank_last_when_conservative():
    scores = torch.zeros(3, 10)
    targets = torch.tensor([0, 4, 9])
    assert target_ranks(scores, targets).tolist() == [10.0] * 3
    assert target_ranks(scores, targets, ties="optimistic").tolist() == [1.0] * 3
    assert target_ranks(scores, targets, ties="average").tolist() == [5.5] * 3


def test_rank_metrics_hand_computed():
    ranks = target_ranks(SCORES, TARGETS, mask=MASK)  # conservative: [3, 4, 1, 3]
    assert recall_at_k(ranks, 3).tolist() == [1.0, 0.0, 1.0, 1.0]
    assert hit_rate_at_k(ranks, 3).tolist() == [1.0, 0.0, 1.0, 1.0]
    assert recall_at_k(ranks, 1).tolist() == [0.0, 0.0, 1.0, 0.0]
    torch.testing.assert_close(mrr_at_k(ranks, 3), torch.tensor([1 / 3, 0.0, 1.0, 1 / 3]))
    torch.testing.assert_close(ndcg_at_k(ranks, 3), torch.tensor([0.5, 0.0, 1.0, 0.5]))
    # fractional ranks from average ties: 2.5 is outside the top 2, inside the top 3
    avg = target_ranks(SCORES, TARGETS, ties="average", mask=MASK)  # [2.5, 2.5, 1, 3]
    assert recall_at_k(avg, 2).tolist() == [0.0, 0.0, 1.0, 0.0]
    torch.testing.assert_close(mrr_at_k(avg, 3), torch.tensor([0.4, 0.4, 1.0, 1 / 3]))
    torch.testing.assert_close(
        ndcg_at_k(avg, 3), torch.tensor([1 / math.log2(3.5)] * 2 + [1.0, 0.5])
    )


def test_metrics_accept_integer_ranks():
    ranks = torch.tensor([1, 2, 30])
    assert recall_at_k(ranks, 20).tolist() == [1.0, 1.0, 0.0]
    torch.testing.assert_close(mrr_at_k(ranks, 20), torch.tensor([1.0, 0.5, 0.0]))


def test_sampled_ranks_hand_computed():
    scores = torch.tensor([[0.0, 0.5, 0.9, 0.5, 0.1, NAN]])
    targets = torch.tensor([1])
    # candidates: a better one, a tie, a worse one, a NaN, and the target itself (ignored)
    cands = torch.tensor([[2, 3, 4, 5, 1]])
    assert sampled_target_ranks(scores, targets, cands, ties="optimistic").tolist() == [2.0]
    assert sampled_target_ranks(scores, targets, cands, ties="conservative").tolist() == [3.0]
    assert sampled_target_ranks(scores, targets, cands, ties="average").tolist() == [2.5]
    # a repeated candidate counts once per occurrence
    cands = torch.tensor([[2, 2, 4]])
    assert sampled_target_ranks(scores, targets, cands).tolist() == [3.0]


# ---------------------------------------------------------------------------- brute force
def ref_rank(row: list[float], target: int, mask_row: list[bool] | None, ties: str) -> float:
    def val(x: float) -> float:
        return -math.inf if math.isnan(x) else x

    t = val(row[target])
    greater = equal = 0
    for j, x in enumerate(row):
        if j == target or (mask_row is not None and mask_row[j]):
            continue
        if val(x) > t:
            greater += 1
        elif val(x) == t:
            equal += 1
    return {"optimistic": 1 + greater, "conservative": 1 + greater + equal}.get(
        ties, 1 + greater + equal / 2
    )


def ref_sampled_rank(row: list[float], target: int, cands: list[int], ties: str) -> float:
    sub = [row[target]] + [row[c] for c in cands if c != target]
    return ref_rank(sub, 0, None, ties)


def random_scores(gen: torch.Generator, b: int, n: int) -> torch.Tensor:
    # few distinct values so ties are frequent, plus some NaN and -inf
    scores = torch.randint(0, 6, (b, n), generator=gen).float()
    special = torch.rand(b, n, generator=gen)
    scores[special < 0.05] = NAN
    scores[(special >= 0.05) & (special < 0.08)] = -math.inf
    return scores


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("ties", TIES)
def test_target_ranks_match_brute_force(seed, ties):
    gen = torch.Generator().manual_seed(seed)
    b, n = 40, 17
    scores = random_scores(gen, b, n)
    targets = torch.randint(0, n, (b,), generator=gen)
    mask = torch.rand(b, n, generator=gen) < 0.3
    for m in (None, mask):
        got = target_ranks(scores, targets, ties=ties, mask=m).tolist()
        expected = [
            ref_rank(
                scores[i].tolist(),
                int(targets[i]),
                None if m is None else m[i].tolist(),
                ties,
            )
            for i in range(b)
        ]
        assert got == expected


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("ties", TIES)
def test_sampled_ranks_match_brute_force(seed, ties):
    gen = torch.Generator().manual_seed(100 + seed)
    b, n, c = 40, 13, 6
    scores = random_scores(gen, b, n)
    targets = torch.randint(0, n, (b,), generator=gen)
    cands = torch.randint(0, n, (b, c), generator=gen)  # may hit the target and repeat
    got = sampled_target_ranks(scores, targets, cands, ties=ties).tolist()
    expected = [
        ref_sampled_rank(scores[i].tolist(), int(targets[i]), cands[i].tolist(), ties)
        for i in range(b)
    ]
    assert got == expected


def test_sampled_ranks_with_all_columns_equal_full_ranks():
    gen = torch.Generator().manual_seed(7)
    scores = random_scores(gen, 20, 9)
    targets = torch.randint(0, 9, (20,), generator=gen)
    cands = torch.arange(9).expand(20, 9)
    for ties in TIES:
        assert torch.equal(
            sampled_target_ranks(scores, targets, cands, ties=ties),
            target_ranks(scores, targets, ties=ties),
        )


@pytest.mark.parametrize("k", [1, 3, 10])
def test_rank_metrics_match_brute_force(k):
    gen = torch.Generator().manual_seed(k)
    ranks = torch.randint(2, 40, (200,), generator=gen).float() / 2  # 1, 1.5, 2, ...
    ref = {
        "recall": [1.0 if r <= k else 0.0 for r in ranks.tolist()],
        "mrr": [1.0 / r if r <= k else 0.0 for r in ranks.tolist()],
        "ndcg": [1.0 / math.log2(r + 1) if r <= k else 0.0 for r in ranks.tolist()],
    }
    torch.testing.assert_close(recall_at_k(ranks, k), torch.tensor(ref["recall"]))
    torch.testing.assert_close(hit_rate_at_k(ranks, k), torch.tensor(ref["recall"]))
    torch.testing.assert_close(mrr_at_k(ranks, k), torch.tensor(ref["mrr"]))
    torch.testing.assert_close(ndcg_at_k(ranks, k), torch.tensor(ref["ndcg"]))


@settings(max_examples=50, deadline=None)
@given(
    rows=st.lists(
        st.lists(st.sampled_from([0.0, 1.0, 2.0, NAN]), min_size=2, max_size=8),
        min_size=1,
        max_size=6,
    ).filter(lambda rows: len({len(r) for r in rows}) == 1),
    data=st.data(),
)
def test_rank_bounds_property(rows, data):
    scores = torch.tensor(rows)
    b, n = scores.shape
    targets = torch.tensor(data.draw(st.lists(st.integers(0, n - 1), min_size=b, max_size=b)))
    opt = target_ranks(scores, targets, ties="optimistic")
    con = target_ranks(scores, targets, ties="conservative")
    avg = target_ranks(scores, targets, ties="average")
    assert torch.all((opt >= 1) & (opt <= avg) & (avg <= con) & (con <= n))
    torch.testing.assert_close(avg, (opt + con) / 2)


# ---------------------------------------------------------------------------- accumulator
def test_accumulator_across_batches_equals_one_shot():
    gen = torch.Generator().manual_seed(0)
    scores = random_scores(gen, 90, 30)
    targets = torch.randint(0, 30, (90,), generator=gen)
    metrics = ["recall@5", "mrr@5", "ndcg@10", "hit@20"]
    one = RankAccumulator()
    one.add(target_ranks(scores, targets, ties="average"))
    many = RankAccumulator()
    for lo, hi in [(0, 7), (7, 40), (40, 40), (40, 90)]:  # includes an empty batch
        many.add(target_ranks(scores[lo:hi], targets[lo:hi], ties="average"))
    assert one.n == many.n == 90
    got, expected = many.compute(metrics), one.compute(metrics)
    assert list(got) == metrics
    for key in metrics:
        assert got[key] == pytest.approx(expected[key], abs=1e-12)
    ranks = one.ranks()
    assert got["mrr@5"] == pytest.approx(mrr_at_k(ranks, 5).double().mean().item())
    assert got["hit@20"] == pytest.approx(recall_at_k(ranks, 20).double().mean().item())


def test_accumulator_bare_names_with_ks_and_reset():
    acc = RankAccumulator()
    acc.add(torch.tensor([1.0, 4.0, 25.0, 2.0]))
    out = acc.compute(["recall", "mrr"], ks=[1, 20])
    assert out == pytest.approx(
        {"recall@1": 0.25, "recall@20": 0.75, "mrr@1": 0.25, "mrr@20": (1 + 0.25 + 0.5) / 4}
    )
    acc.reset()
    assert acc.n == 0
    assert all(math.isnan(v) for v in acc.compute(["recall@20"]).values())


def test_accumulator_rejects_bad_metric_before_computing():
    acc = RankAccumulator()
    acc.add(torch.tensor([1.0]))
    with pytest.raises(ConfigError, match="recall@K"):
        acc.compute(["precision@10"])


# ---------------------------------------------------------------------------- validation
def test_parse_metrics():
    assert parse_metrics(["recall@20", " MRR@20 ", "ndcg@10", "hit@10", "recall@20"]) == [
        ("recall", 20),
        ("mrr", 20),
        ("ndcg", 10),
        ("hit", 10),
    ]
    assert parse_metrics("ndcg", ks=[5, 10]) == [("ndcg", 5), ("ndcg", 10)]
    assert parse_metrics(["recall@3", "recall"], ks=3) == [("recall", 3)]


@pytest.mark.parametrize(
    "name", ["precision@10", "recall@", "recall@0", "recall@-1", "recall@2.5", "recall20", "", "@5"]
)
def test_bad_metric_names_raise_config_error(name):
    with pytest.raises(ConfigError, match="valid metrics|positive integer|no cutoff"):
        parse_metrics([name])


def test_bare_metric_without_ks_raises():
    with pytest.raises(ConfigError, match="no cutoff"):
        parse_metrics(["recall"])
    with pytest.raises(ConfigError, match="positive integer"):
        parse_metrics(["recall"], ks=[0])


def test_bad_arguments():
    with pytest.raises(ConfigError, match="tie policy"):
        target_ranks(SCORES, TARGETS, ties="median")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="positive integer"):
        recall_at_k(torch.tensor([1.0]), 0)
    with pytest.raises(ValueError, match="targets"):
        target_ranks(SCORES, TARGETS[:2])
    with pytest.raises(ValueError, match="mask"):
        target_ranks(SCORES, TARGETS, mask=MASK[:, :3])
    with pytest.raises(ValueError, match="candidates"):
        sampled_target_ranks(SCORES, TARGETS, torch.tensor([1, 2, 3, 4]))
    with pytest.raises(ValueError, match="1-D"):
        recall_at_k(torch.ones(2, 2), 5)


# ---------------------------------------------------------------------------- basket metrics
def multi_hot(baskets: list[list[int]], n: int) -> torch.Tensor:
    out = torch.zeros(len(baskets), n, dtype=torch.bool)
    for i, basket in enumerate(baskets):
        for item in basket:  # repeated items set the same cell
            out[i, item] = True
    return out


def test_basket_precision_recall_hand_computed():
    scores = torch.tensor(
        [[0.0, 0.9, 0.8, 0.1, 0.5], [0.0, 0.1, 0.2, 0.3, 0.4], [0.0, 1.0, 0.9, 0.8, 0.7]]
    )
    target = multi_hot([[1, 3, 3, 3], [], [1, 2, 3, 4]], 5)  # a repeated item, an empty basket
    precision, recall = basket_precision_recall_at_k(scores, target, 3)
    torch.testing.assert_close(precision, torch.tensor([1 / 3, 0.0, 1.0]))
    torch.testing.assert_close(recall, torch.tensor([0.5, 0.0, 0.75]))


def test_basket_mask_excludes_columns():
    scores = torch.tensor([[9.0, 0.9, 0.8, 0.1]])
    target = multi_hot([[1, 2]], 4)
    mask = torch.tensor([[True, False, False, False]])
    precision, recall = basket_precision_recall_at_k(scores, target, 2, mask=mask)
    assert precision.tolist() == [1.0] and recall.tolist() == [1.0]
    precision, _ = basket_precision_recall_at_k(scores, target, 2)
    assert precision.tolist() == [0.5]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [1, 4, 12, 20])
def test_basket_precision_recall_match_brute_force(seed, k):
    rng = np.random.default_rng(seed)
    b, n = 30, 12
    baskets = [
        rng.integers(0, n, size=rng.integers(0, 6)).tolist() for _ in range(b)
    ]  # repeats and empty baskets included
    scores = rng.permutation(b * n).reshape(b, n).astype(np.float32)  # no ties
    precision, recall = basket_precision_recall_at_k(
        torch.from_numpy(scores), multi_hot(baskets, n), k
    )
    for i in range(b):
        top = set(np.argsort(-scores[i])[:k].tolist())
        truth = set(baskets[i])
        hits = len(top & truth)
        assert precision[i].item() == pytest.approx(hits / k)
        assert recall[i].item() == pytest.approx(hits / len(truth) if truth else 0.0)


def ref_f1(pred: np.ndarray, target: np.ndarray, labels: str) -> tuple[float, float]:
    """scikit-learn f1_score semantics (zero_division=0), one label at a time."""
    tp_all = fp_all = fn_all = 0
    per_label = []
    for j in range(pred.shape[1]):
        tp = int(np.sum(pred[:, j] & target[:, j]))
        fp = int(np.sum(pred[:, j] & ~target[:, j]))
        fn = int(np.sum(~pred[:, j] & target[:, j]))
        tp_all, fp_all, fn_all = tp_all + tp, fp_all + fp, fn_all + fn
        present = pred[:, j].any() or target[:, j].any()
        if labels == "all" or present:
            precision = tp / (tp + fp) if tp + fp else 0.0
            recall = tp / (tp + fn) if tp + fn else 0.0
            per_label.append(
                2 * precision * recall / (precision + recall) if precision + recall else 0.0
            )
    micro_p = tp_all / (tp_all + fp_all) if tp_all + fp_all else 0.0
    micro_r = tp_all / (tp_all + fn_all) if tp_all + fn_all else 0.0
    micro = 2 * micro_p * micro_r / (micro_p + micro_r) if micro_p + micro_r else 0.0
    macro = float(np.mean(per_label)) if per_label else 0.0
    return micro, macro


def test_f1_hand_computed():
    pred = multi_hot([[1, 2], [2]], 4)
    target = multi_hot([[1, 1], [2, 3]], 4)
    # item 1: tp 1 -> F1 1; item 2: tp 1, fp 1 -> 2/3; item 3: fn 1 -> 0; item 0 absent
    micro, macro = f1_micro_macro(pred, target)
    assert micro.item() == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert macro.item() == pytest.approx((1 + 2 / 3 + 0) / 3)
    _, macro_all = f1_micro_macro(pred, target, labels="all")
    assert macro_all.item() == pytest.approx((1 + 2 / 3 + 0 + 0) / 4)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("labels", ["present", "all"])
def test_f1_matches_brute_force(seed, labels):
    rng = np.random.default_rng(seed)
    b, n = 25, 15
    pred = rng.random((b, n)) < 0.15
    target = rng.random((b, n)) < 0.15
    target[::5] = False  # rows with empty targets
    pred[:, :3] = False  # items absent from both pred and target
    target[:, :3] = False
    micro, macro = f1_micro_macro(torch.from_numpy(pred), torch.from_numpy(target), labels=labels)
    ref_micro, ref_macro = ref_f1(pred, target, labels)
    assert micro.item() == pytest.approx(ref_micro, abs=1e-6)
    assert macro.item() == pytest.approx(ref_macro, abs=1e-6)


def test_f1_empty_inputs_are_zero():
    empty = torch.zeros(3, 5, dtype=torch.bool)
    for labels in ("present", "all"):
        micro, macro = f1_micro_macro(empty, empty, labels=labels)
        assert micro.item() == 0.0 and macro.item() == 0.0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_metrics_on_cuda_match_cpu():
    gen = torch.Generator().manual_seed(3)
    scores = random_scores(gen, 64, 50)
    targets = torch.randint(0, 50, (64,), generator=gen)
    mask = torch.rand(64, 50, generator=gen) < 0.2
    acc_cpu, acc_gpu = RankAccumulator(), RankAccumulator()
    for ties in TIES:
        cpu = target_ranks(scores, targets, ties=ties, mask=mask)
        gpu = target_ranks(scores.cuda(), targets.cuda(), ties=ties, mask=mask.cuda())
        assert gpu.is_cuda
        assert torch.equal(cpu, gpu.cpu())
        acc_cpu.add(cpu)
        acc_gpu.add(gpu)
    assert acc_cpu.compute(["recall@10", "ndcg@10"]) == pytest.approx(
        acc_gpu.compute(["recall@10", "ndcg@10"])
    )
    target = torch.rand(64, 50, generator=gen) < 0.1
    distinct = torch.rand(64, 50, generator=gen)  # no ties: top-k is unambiguous
    for a, b in zip(
        basket_precision_recall_at_k(distinct, target, 5),
        basket_precision_recall_at_k(distinct.cuda(), target.cuda(), 5),
        strict=True,
    ):
        torch.testing.assert_close(a, b.cpu())
    for a, b in zip(
        f1_micro_macro(mask, target), f1_micro_macro(mask.cuda(), target.cuda()), strict=True
    ):
        torch.testing.assert_close(a, b.cpu())
