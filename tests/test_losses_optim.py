import numpy as np
import pytest
import torch

from seqrec.losses import bpr_max, logq_correction, sampled_cross_entropy
from seqrec.models.gru4rec.objective import merge_sampled_columns
from seqrec.sampling import PopularitySampler
from seqrec.optim import IndexedAdagradM, IndexedAdam, coalesce_rows


def test_sampled_cross_entropy_is_diagonal_softmax():
    torch.manual_seed(0)
    R = torch.randn(4, 9)
    ref = -sum(torch.log_softmax(R[i], 0)[i] for i in range(4))
    assert torch.allclose(sampled_cross_entropy(R), ref)


def test_bpr_max_matches_loop_reference():
    torch.manual_seed(1)
    R = torch.randn(3, 6)
    got = bpr_max(R, bpreg=0.5, elu_param=0.0)
    ref = 0.0
    for i in range(3):
        neg = [j for j in range(6) if j != i]
        s = torch.softmax(R[i, neg], 0)
        ref += (
            -torch.log((s * torch.sigmoid(R[i, i] - R[i, neg])).sum())
            + 0.5 * (s * R[i, neg] ** 2).sum()
        )
    assert torch.allclose(got, ref, atol=1e-5)


def test_logq_correction_uses_alpha_only_for_extra_samples():
    q = torch.tensor([2.0, 4.0, 8.0])
    c = logq_correction(q.log(), 1, 0.5)
    assert torch.allclose(
        c, torch.tensor([np.log(2.0), 0.5 * np.log(4.0), 0.5 * np.log(8.0)], dtype=torch.float32)
    )


def test_sampler_follows_popularity_power_and_never_draws_padding():
    counts = np.array([0, 1, 4, 16])
    s = PopularitySampler(counts, 1000, 0.5, cache_size=200_000, rng=np.random.default_rng(0))
    draws = torch.cat([s.sample() for _ in range(200)]).numpy()
    freq = np.bincount(draws, minlength=4) / len(draws)
    assert freq[0] == 0
    np.testing.assert_allclose(freq[1:], np.array([1, 2, 4]) / 7, atol=0.01)


def test_sampler_guide_table_matches_inverse_cdf_with_skew_and_gaps():
    """Many tiny items packed into one bucket (the binary-search fallback), zero-count items
    between positive ones (never drawn), one dominant item."""
    rng = np.random.default_rng(1)
    counts = np.r_[0, rng.integers(0, 3, 300), 10**7, 0, 5]
    s = PopularitySampler(counts, 10, 1.0, rng=np.random.default_rng(2))
    assert s._any_hard
    u = np.random.default_rng(3).random(200_000)
    s.rng = np.random.default_rng(3)
    got = s.draw(200_000)
    ref = np.searchsorted(np.cumsum(counts / counts.sum()), u, side="right")
    np.testing.assert_array_equal(got, np.minimum(ref, len(counts) - 1))
    assert counts[got].min() > 0


def _brute_merge(targets, row_offsets, samples, log_count, alpha, logq, inputs):
    """Official layout per step -> {item: summed exp(-correction)} and the official loss
    terms, by loops."""
    out = []
    for t in range(len(row_offsets) - 1):
        a, b = row_offsets[t], row_offsets[t + 1]
        w: dict[int, float] = {}
        for y in targets[a:b]:
            w[int(y)] = w.get(int(y), 0.0) + np.exp(-logq * log_count[y])
        for smp in samples[t] if samples is not None else []:
            w[int(smp)] = w.get(int(smp), 0.0) + np.exp(-logq * alpha * log_count[smp])
        items = set(w) | (set(map(int, inputs[a:b])) if inputs is not None else set())
        out.append((w, items))
    return out


@pytest.mark.parametrize("with_inputs", [True, False])
@pytest.mark.parametrize("n_sample", [0, 7])
def test_merged_columns_match_the_official_columns(with_inputs, n_sample):
    rng = np.random.default_rng(4)
    n_items = 15
    sizes = rng.integers(1, 6, 40)
    row_offsets = np.r_[0, np.cumsum(sizes)]
    targets = rng.integers(1, n_items, row_offsets[-1])
    inputs = rng.integers(1, n_items, row_offsets[-1]) if with_inputs else None
    samples = rng.integers(1, n_items, (40, n_sample)) if n_sample else None
    log_count = np.log(rng.integers(1, 50, n_items).astype(float))
    m = merge_sampled_columns(
        targets, row_offsets, samples, log_count, alpha=0.5, logq=1.0, inputs=inputs
    )
    ref = _brute_merge(targets, row_offsets, samples, log_count, 0.5, 1.0, inputs)
    shift = 0.0
    for t, (w, items) in enumerate(ref):
        cols = m.item[m.offsets[t] : m.offsets[t + 1]]
        lw = m.log_weight[m.offsets[t] : m.offsets[t + 1]]
        assert len(set(cols.tolist())) == len(cols), "a step repeats an item"
        assert set(cols.tolist()) == items
        for c, v in zip(cols, lw, strict=True):
            assert v == pytest.approx(np.log(w[int(c)]), rel=1e-5) if int(c) in w else v == -np.inf
        # scored columns first, input-only ones after
        assert np.all(np.isfinite(lw[: m.n_scored[t]])) and np.all(lw[m.n_scored[t] :] == -np.inf)
        a, b = row_offsets[t], row_offsets[t + 1]
        np.testing.assert_array_equal(cols[m.target_col[a:b]], targets[a:b])
        if with_inputs:
            np.testing.assert_array_equal(cols[m.input_col[a:b]], inputs[a:b])
        shift += sum(np.log(w[int(y)]) + log_count[y] for y in targets[a:b])
    assert m.loss_shift == pytest.approx(shift, rel=1e-6)


def test_coalesce_sums_duplicates():
    ids, g = coalesce_rows(torch.tensor([3, 1, 3]), torch.tensor([[1.0], [2.0], [5.0]]))
    assert ids.tolist() == [1, 3] and g.squeeze(1).tolist() == [2.0, 6.0]


def test_indexed_adagrad_matches_dense_update_on_touched_rows_only():
    W = torch.ones(5, 2)
    opt = IndexedAdagradM([], [W], lr=0.1, momentum=0.5)
    g = torch.tensor([[1.0, 2.0], [1.0, 2.0]])
    opt.step_rows(W, torch.tensor([2, 2]), g.clone())
    # coalesced grad (2, 4): acc = g^2, step = -lr * g / sqrt(g^2 + eps)
    expect = 1 - 0.1 * torch.tensor([2.0, 4.0]) / torch.sqrt(torch.tensor([4.0, 16.0]) + 1e-6)
    assert torch.allclose(W[2], expect)
    assert torch.equal(W[[0, 1, 3, 4]], torch.ones(4, 2))  # untouched rows keep value
    opt.step_rows(W, torch.tensor([0]), torch.tensor([[0.0, 0.0]]))
    assert torch.allclose(W[2], expect)  # lazy momentum: row 2 not moved by another row's step


def test_indexed_adam_equals_torch_adam_when_all_rows_touched():
    torch.manual_seed(0)
    W1 = torch.randn(4, 3)
    W2 = W1.clone().requires_grad_()
    mine = IndexedAdam([], [W1], lr=0.01)
    ref = torch.optim.Adam([W2], lr=0.01)
    for _ in range(5):
        g = torch.randn(4, 3)
        mine.step_rows(W1, torch.arange(4), g.clone(), coalesced=True)
        W2.grad = g.clone()
        ref.step()
    assert torch.allclose(W1, W2.detach(), atol=1e-6)


@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_adagrad_dense_touched_path_equals_row_sparse_path(momentum):
    # a 50-entry bias vector takes the masked dense path (many rows touched), a 500-entry one the
    # gather/scatter path; both must apply the same lazy row-sparse rule
    torch.manual_seed(0)
    small = torch.randn(50)
    big = torch.cat([small.clone(), torch.randn(450)])
    o_small = IndexedAdagradM([], [small], lr=0.1, momentum=momentum)
    o_big = IndexedAdagradM([], [big], lr=0.1, momentum=momentum)
    for _ in range(6):
        ids = torch.randint(0, 50, (20,))
        g = torch.randn(20)
        o_small.step_rows(small, ids, g.clone())
        o_big.step_rows(big, ids, g.clone())
    assert torch.allclose(small, big[:50], atol=1e-6)
