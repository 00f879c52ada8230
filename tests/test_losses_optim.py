import numpy as np
import pytest
import torch

from seqrec.losses import PopularitySampler, bpr_max, logq_correction, sampled_cross_entropy
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
    g = torch.Generator().manual_seed(0)
    s = PopularitySampler(counts, 1000, 0.5, cache_size=200_000, generator=g)
    draws = torch.cat([s.sample() for _ in range(200)]).numpy()
    freq = np.bincount(draws, minlength=4) / len(draws)
    assert freq[0] == 0
    np.testing.assert_allclose(freq[1:], np.array([1, 2, 4]) / 7, atol=0.01)


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
