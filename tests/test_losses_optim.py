import copy

import numpy as np
import pytest
import torch

from seqrec.exceptions import ConfigError
from seqrec.losses import bpr_max, logq_correction, sampled_cross_entropy
from seqrec.models.gru4rec.objective import merge_sampled_columns
from seqrec.models.gru4rec.packed import PackedAdagradM, PackedAdam, packed_optimizer
from seqrec.optim import RowSparseAdam, SparseAdagradM, coalesce_rows, row_sparse_grad
from seqrec.sampling import PopularitySampler


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


def _sparse(W, ids, g, coalesced=False):
    return row_sparse_grad(W, torch.as_tensor(ids), g, coalesced=coalesced)


def _step(opt, W, ids, g, coalesced=False):
    W.grad = _sparse(W, ids, g, coalesced)
    opt.step()
    W.grad = None


def test_sparse_adagrad_matches_dense_update_on_touched_rows_only():
    W = torch.ones(5, 2)
    opt = SparseAdagradM([W], lr=0.1, momentum=0.5)
    g = torch.tensor([[1.0, 2.0], [1.0, 2.0]])
    _step(opt, W, [2, 2], g.clone())
    # coalesced grad (2, 4): acc = g^2, step = -lr * g / sqrt(g^2 + eps)
    expect = 1 - 0.1 * torch.tensor([2.0, 4.0]) / torch.sqrt(torch.tensor([4.0, 16.0]) + 1e-6)
    assert torch.allclose(W[2], expect)
    assert torch.equal(W[[0, 1, 3, 4]], torch.ones(4, 2))  # untouched rows keep value
    _step(opt, W, [0], torch.tensor([[0.0, 0.0]]))
    assert torch.allclose(W[2], expect)  # lazy momentum: row 2 not moved by another row's step


@pytest.mark.parametrize("momentum", [0.0, 0.4])
def test_sparse_adagrad_embedding_gradients_equal_a_dense_reference(momentum):
    """nn.Embedding(sparse=True) gradients (uncoalesced, duplicate rows) against the rule
    written densely with a touched-row mask; rows never touched stay bit-identical."""
    torch.manual_seed(0)
    emb = torch.nn.Embedding(40, 3, sparse=True)
    start = emb.weight.detach().clone()
    opt = SparseAdagradM(emb.parameters(), lr=0.1, momentum=momentum)
    W, acc, mom = start.clone(), torch.zeros(40, 3), torch.zeros(40, 3)
    ever = torch.zeros(40, dtype=torch.bool)
    for _ in range(5):
        ids = torch.randint(0, 30, (25,))  # rows 30.. never touched
        coef = torch.randn(25, 3)
        opt.zero_grad()
        (emb(ids) * coef).sum().backward()
        assert emb.weight.grad.is_sparse
        opt.step()
        g = torch.zeros(40, 3).index_add_(0, ids, coef)
        hit = torch.zeros(40, dtype=torch.bool)
        hit[ids] = True
        ever |= hit
        acc[hit] += g[hit] ** 2
        mom[hit] = momentum * mom[hit] - 0.1 * g[hit] / torch.sqrt(acc[hit] + 1e-6)
        W[hit] += mom[hit]
    assert torch.allclose(emb.weight.detach(), W, atol=1e-6)
    assert torch.equal(emb.weight.detach()[~ever], start[~ever])
    assert set(opt.state[emb.weight]) == ({"acc", "momentum_buffer"} if momentum else {"acc"})


def test_sparse_adagrad_dense_gradients_are_adagrad_with_momentum():
    torch.manual_seed(1)
    W = torch.randn(4, 3, requires_grad=True)
    ref = W.detach().clone()
    opt = SparseAdagradM([W], lr=0.2, momentum=0.3)
    acc, mom = torch.zeros(4, 3), torch.zeros(4, 3)
    for _ in range(4):
        g = torch.randn(4, 3)
        W.grad = g.clone()
        opt.step()
        acc += g * g
        mom = 0.3 * mom - 0.2 * g / torch.sqrt(acc + 1e-6)
        ref += mom
    assert torch.allclose(W.detach(), ref, atol=1e-6)


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: SparseAdagradM(ps, lr=0.1, momentum=0.5),
        lambda ps: RowSparseAdam(ps, lr=0.01, weight_decay=0.1),
        lambda ps: RowSparseAdam(ps, lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
    ],
)
def test_optimizer_state_dict_round_trip_continues_identically(make):
    """Saved after some steps and loaded into a fresh optimiser over copies of the weights,
    the state continues exactly as the uninterrupted optimiser (dense and sparse grads)."""
    torch.manual_seed(2)
    tab, dense = torch.randn(20, 3), torch.randn(3, 3, requires_grad=True)
    opt = make([tab, dense])
    gen = torch.Generator().manual_seed(3)

    def steps(o, t, d, n):
        for _ in range(n):
            ids = torch.randint(0, 20, (8,), generator=gen)
            t.grad = _sparse(t, ids, torch.randn(8, 3, generator=gen))
            d.grad = torch.randn(3, 3, generator=gen)
            o.step()

    steps(opt, tab, dense, 3)
    saved = copy.deepcopy(opt.state_dict())  # torch's state_dict shares the tensors
    tab2, dense2 = tab.clone(), dense.detach().clone().requires_grad_()
    opt2 = make([tab2, dense2])
    opt2.load_state_dict(saved)
    gen_state = gen.get_state()
    steps(opt, tab, dense, 3)
    gen.set_state(gen_state)
    steps(opt2, tab2, dense2, 3)
    assert torch.equal(tab, tab2) and torch.equal(dense, dense2)
    for k, v in opt.state[tab].items():
        assert torch.equal(v, opt2.state[tab2][k]), k


def test_unsupported_optimizer_options_are_errors_naming_them():
    W = torch.zeros(3, 2)
    with pytest.raises(ConfigError, match="weight_decay"):
        SparseAdagradM([W], lr=0.1, weight_decay=0.01)
    with pytest.raises(ConfigError, match="nesterov"):
        SparseAdagradM([{"params": [W], "nesterov": True}], lr=0.1)
    with pytest.raises(ConfigError, match="amsgrad"):
        RowSparseAdam([W], amsgrad=True)
    with pytest.raises(ConfigError, match="weight_decay"):
        packed_optimizer("adagrad", lr=0.1, weight_decay=0.01)
    with pytest.raises(ConfigError, match="momentum"):
        packed_optimizer("adam", lr=0.1, momentum=0.5)
    with pytest.raises(ValueError, match="row-sparse"):
        W.grad = torch.zeros(3, 2).to_sparse()  # sparse_dim 2
        SparseAdagradM([W], lr=0.1).step()


@pytest.mark.parametrize("decoupled,weight_decay", [(False, 0.0), (False, 0.1), (True, 0.1)])
def test_row_sparse_adam_equals_torch_adam_when_all_rows_touched(decoupled, weight_decay):
    torch.manual_seed(0)
    W1 = torch.randn(4, 3)
    W2 = W1.clone().requires_grad_()
    mine = RowSparseAdam([W1], lr=0.01, weight_decay=weight_decay, decoupled_weight_decay=decoupled)
    torch_cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    ref = torch_cls([W2], lr=0.01, weight_decay=weight_decay)
    for _ in range(5):
        g = torch.randn(4, 3)
        _step(mine, W1, torch.arange(4), g.clone(), coalesced=True)
        W2.grad = g.clone()
        ref.step()
    assert torch.allclose(W1, W2.detach(), atol=1e-6)


def test_row_sparse_adam_is_lazy_with_per_row_step_counts():
    W = torch.ones(6, 2)
    opt = RowSparseAdam([W], lr=0.1)
    _step(opt, W, [1, 1, 3], torch.ones(3, 2))
    _step(opt, W, [3], torch.ones(1, 2))
    assert opt.state[W]["row_step"].tolist() == [0, 1, 0, 2, 0, 0]
    assert torch.equal(W[[0, 2, 4, 5]], torch.ones(4, 2))
    # a row's first update is -lr * sign(g) whatever the table's step count
    assert torch.allclose(W[1], torch.full((2,), 0.9))


@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_adagrad_dense_touched_path_equals_row_sparse_path(momentum):
    # a 50-entry bias vector takes the masked dense path (many rows touched), a 500-entry one the
    # gather/scatter path; both must apply the same lazy row-sparse rule
    torch.manual_seed(0)
    small = torch.randn(50)
    big = torch.cat([small.clone(), torch.randn(450)])
    o_small = SparseAdagradM([small], lr=0.1, momentum=momentum)
    o_big = SparseAdagradM([big], lr=0.1, momentum=momentum)
    for _ in range(6):
        ids = torch.randint(0, 50, (20,))
        g = torch.randn(20)
        _step(o_small, small, ids, g.clone())
        _step(o_big, big, ids, g.clone())
    assert torch.allclose(small, big[:50], atol=1e-6)


@pytest.mark.parametrize(
    "packed,unpacked",
    [
        (
            lambda: PackedAdagradM(lr=0.1, momentum=0.3, grad_scale=8.0),
            lambda ps: SparseAdagradM(ps, lr=0.1, momentum=0.3),
        ),
        (
            lambda: PackedAdagradM(lr=0.1, grad_scale=8.0),
            lambda ps: SparseAdagradM(ps, lr=0.1),
        ),
        (
            lambda: PackedAdam(lr=0.01, weight_decay=0.1, grad_scale=8.0),
            lambda ps: RowSparseAdam(ps, lr=0.01, weight_decay=0.1),
        ),
        (
            lambda: PackedAdam(
                lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, grad_scale=8.0
            ),
            lambda ps: RowSparseAdam(ps, lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
        ),
    ],
)
def test_packed_rows_update_like_the_row_sparse_optimizer(packed, unpacked):
    """Gather packed rows, step with grad_scale times the gradient, scatter back: the same
    weights as the row-sparse optimiser given the true gradient."""
    torch.manual_seed(4)
    W = torch.randn(30, 4)
    p_opt, ref = packed(), W.clone()
    table = p_opt.pack(W)
    opt = unpacked([ref])
    for _ in range(6):
        ids, g = coalesce_rows(torch.randint(0, 30, (12,)), torch.randn(12, 4), 30)
        blk = table.index_select(0, ids)
        p_opt.step(blk, g * 8.0)
        table.index_copy_(0, ids, blk)
        _step(opt, ref, ids, g, coalesced=True)
    assert torch.allclose(table[:, 0], ref, atol=1e-6)


def test_step_hooks_run_and_closure_loss_is_returned():
    W = torch.zeros(3, 2, requires_grad=True)
    opt = SparseAdagradM([W], lr=0.1)
    calls = []
    opt.register_step_pre_hook(lambda o, args, kwargs: calls.append("pre"))
    opt.register_step_post_hook(lambda o, args, kwargs: calls.append("post"))
    W.grad = torch.ones(3, 2)
    assert opt.step(lambda: 1.5) == 1.5
    assert calls == ["pre", "post"]
    assert torch.allclose(W.detach(), torch.full((3, 2), -0.1), atol=1e-6)
