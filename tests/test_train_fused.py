import pytest
import torch

from seqrec.models import GRU4Rec, GRU4RecConfig
from seqrec.models.gru4rec.training import (
    _cell_weights,
    _dropout_masks,
    _gru_backward,
    _gru_forward,
)


def test_gru_forward_backward_match_autograd():
    torch.manual_seed(0)
    cell = torch.nn.GRUCell(5, 8)
    x = torch.randn(4, 5, requires_grad=True)
    h = torch.randn(4, 8)
    d_hn = torch.randn(4, 8)
    ref = cell(x, h)
    ref.backward(d_hn)
    w = _cell_weights(cell)
    grads = tuple(torch.empty_like(p) for p in w)
    with torch.no_grad():
        hn, cache = _gru_forward(w, x.detach(), h)
        d_x = _gru_backward(w, cache, d_hn, grads)
    assert torch.allclose(hn, ref.detach(), atol=1e-6)
    assert torch.allclose(d_x, x.grad, atol=1e-6)
    for p, g in zip(w, grads, strict=True):
        assert torch.allclose(g, p.grad, atol=1e-6)


def test_dropout_masks_scale_like_inverted_dropout():
    torch.manual_seed(0)
    m = _dropout_masks(20_000, 6, 0.4, torch.device("cpu"))
    assert m.shape == (20_000, 6)
    assert (m == 0).float().mean().item() == pytest.approx(0.4, abs=0.01)
    assert m.unique().tolist() == [0.0, pytest.approx(1 / 0.6)]
    assert _dropout_masks(5, 6, 0.0, torch.device("cpu")) is None


class _FixedSampler:
    """Serves the same pre-drawn negatives, step after step, to whichever loop asks."""

    block = None

    def __init__(self, counts, n_sample, alpha, **kwargs):
        self.pos = 0

    def draw(self, shape):
        rows = self.block[self.pos : self.pos + shape[0]]
        self.pos += shape[0]
        return rows.copy()

    def sample(self):
        self.pos += 1
        return torch.from_numpy(self.block[self.pos - 1].copy())


class _ReplayMasks:
    """One stream of pre-drawn dropout multipliers per dropout rate, served in order: in
    bulk to the fast loop (``_dropout_masks``) and row block by row block to autograd's
    dropout modules, so both paths drop the same units."""

    def __init__(self, size: int, rates: list[float]) -> None:
        g = torch.Generator().manual_seed(5)
        self.masks = {
            p: (torch.rand(20_000, size, generator=g) > p).float() / (1 - p) for p in rates
        }
        self.pos = dict.fromkeys(rates, 0)

    def take(self, p: float, rows: int) -> torch.Tensor:
        out = self.masks[p][self.pos[p] : self.pos[p] + rows]
        self.pos[p] += rows
        return out

    def module(self, p: float) -> torch.nn.Module:
        replay = self

        class Drop(torch.nn.Module):
            def forward(self, x):
                return x * replay.take(p, x.shape[0]) if self.training else x

        return Drop()


@pytest.mark.parametrize(
    "constrained,optimizer,momentum,weight_decay,dropout,n_sample,batch_size",
    [
        (True, "adagrad", 0.2, 0.0, False, 12, 5),
        (False, "adagrad", 0.0, 0.0, False, 12, 5),
        (True, "adam", 0.0, 0.0, False, 12, 5),
        (False, "adam", 0.0, 0.01, False, 12, 5),
        (True, "adagrad", 0.2, 0.0, True, 12, 5),
        (False, "adagrad", 0.3, 0.0, True, 12, 5),
        (True, "adagrad", 0.2, 0.0, False, 0, 5),
        (True, "adagrad", 0.2, 0.0, True, None, 5),  # None: full softmax
        (False, "adam", 0.0, 0.01, False, None, 5),
        (True, "adamw", 0.0, 0.05, True, 12, 5),
        (False, "adamw", 0.0, 0.05, False, 12, 5),
        (True, "adagrad", 0.2, 0.0, True, 12, 64),  # more slots than sessions
        (True, "adagrad", 0.0, 0.0, False, 12, 1),  # one session at a time
    ],
)
def test_merged_columns_loop_trains_exactly_like_autograd(
    monkeypatch, constrained, optimizer, momentum, weight_decay, dropout, n_sample, batch_size
):
    """The fast loop (merged duplicate columns, packed tables, bulk dropout masks) against
    autograd over the official column layout, fed the same negatives and dropout masks:
    same weights and losses after two epochs."""
    import numpy as np

    from seqrec.data import SequenceData
    from seqrec.models.gru4rec import ObjectiveConfig
    from seqrec.models.gru4rec.training import fit_session_parallel
    from seqrec.train import TrainConfig

    rng = np.random.default_rng(0)
    n_items = 25
    seqs = [list(rng.integers(1, n_items, rng.integers(2, 7))) for _ in range(40)]
    data = SequenceData.from_lists(seqs, n_items=n_items)
    # few items, many samples: duplicates among samples, targets and inputs in every step
    _FixedSampler.block = rng.integers(1, n_items, (10_000, 12))
    monkeypatch.setattr("seqrec.models.gru4rec.training.PopularitySampler", _FixedSampler)
    p_e, p_h = (0.2, 0.3) if dropout else (0.0, 0.0)
    cfg = GRU4RecConfig(
        layers=[6],
        constrained_embedding=constrained,
        embedding_dim=0 if constrained else 6,
        dropout_embed=p_e,
        dropout_hidden=p_h,
    )
    obj = (
        ObjectiveConfig(negatives="full")
        if n_sample is None
        else ObjectiveConfig(n_sample=n_sample, sample_alpha=0.5, logq=1.0)
    )
    models, logs = [], []
    for fused in (True, False):
        replay = _ReplayMasks(6, [p_e, p_h])
        monkeypatch.setattr(
            "seqrec.models.gru4rec.training._dropout_masks",
            lambda rows, size, p, device, r=replay: r.take(p, rows) if p > 0 else None,
        )
        torch.manual_seed(0)
        m = GRU4Rec(cfg, n_items)
        if dropout:
            m.drop_embed, m.drop_hidden = replay.module(p_e), replay.module(p_h)
        tc = TrainConfig(
            epochs=2,
            batch_size=batch_size,
            optimizer=optimizer,
            learning_rate=0.05,
            momentum=momentum,
            weight_decay=weight_decay,
            fused=fused,
            progress=False,
            device="cpu",
        )
        logs.append(fit_session_parallel(m, data, obj, tc, seed=0))
        models.append(m)
    for (k, a), b in zip(
        models[0].state_dict().items(), models[1].state_dict().values(), strict=True
    ):
        assert torch.allclose(a, b, atol=1e-5), k
    for la, lb in zip(*logs, strict=True):
        assert la.loss == pytest.approx(lb.loss, rel=1e-5)


@pytest.mark.parametrize("fused", [True, False])
def test_early_stopping_keeps_the_best_epoch_and_validation_sees_trained_weights(fused):
    from seqrec.data import SequenceData, Vocabulary
    from seqrec.data.synthetic import synthetic_sessions
    from seqrec.models.gru4rec import ObjectiveConfig
    from seqrec.models.gru4rec.training import fit_session_parallel
    from seqrec.train import TrainConfig

    df = synthetic_sessions(n_sessions=300, n_items=50, seed=0)
    data = SequenceData.from_frame(df, Vocabulary.fit(df["item_id"]))
    torch.manual_seed(0)
    m = GRU4Rec(GRU4RecConfig(layers=[8]), data.n_items)
    start = {k: v.clone() for k, v in m.state_dict().items()}
    seen, scores = [], iter([0.5, 0.4, 0.3, 0.2])

    def validate(model):
        seen.append({k: v.clone() for k, v in model.state_dict().items()})
        return {"recall@20": next(scores)}

    tc = TrainConfig(epochs=4, batch_size=8, patience=1, fused=fused, progress=False, device="cpu")
    log = fit_session_parallel(m, data, ObjectiveConfig(n_sample=16), tc, seed=0, validate=validate)
    assert len(log) == 2  # epoch 2 did not improve, patience 1
    assert not torch.equal(seen[0]["Wy"], start["Wy"])  # validation saw trained weights
    assert not torch.equal(seen[1]["Wy"], seen[0]["Wy"])
    for k, v in m.state_dict().items():
        assert torch.equal(v, seen[0][k]), k  # the best (first) epoch's weights are kept


@pytest.mark.parametrize(
    "fused,constrained,optimizer,momentum,weight_decay",
    [
        (True, True, "adagrad", 0.2, 0.0),
        (False, True, "adagrad", 0.2, 0.0),
        (True, True, "adam", 0.0, 0.01),
        (False, True, "adam", 0.0, 0.01),
        (True, False, "adamw", 0.0, 0.05),
        (False, False, "adagrad", 0.0, 0.0),
    ],
)
def test_resumed_training_continues_bit_identically(
    tmp_path, fused, constrained, optimizer, momentum, weight_decay
):
    """A run interrupted after epoch 1 (its checkpoint: model, optimiser or packed state,
    sampler cache, RNG states) and resumed by a new Trainer and strategy for a model
    initialised differently ends with exactly the weights and losses of an uninterrupted run."""
    from seqrec.data import SequenceData, Vocabulary
    from seqrec.data.synthetic import synthetic_sessions
    from seqrec.models.gru4rec import ObjectiveConfig
    from seqrec.models.gru4rec.training import GRU4RecStrategy, _FastLoop
    from seqrec.train import TrainConfig, Trainer

    df = synthetic_sessions(n_sessions=200, n_items=40, seed=1)
    data = SequenceData.from_frame(df, Vocabulary.fit(df["item_id"]))
    cfg = GRU4RecConfig(
        layers=[8],
        constrained_embedding=constrained,
        embedding_dim=0 if constrained else 6,
        dropout_hidden=0.2,
    )
    # a small autograd-loop sample cache: its position carries over the epochs
    obj = ObjectiveConfig(n_sample=16, sample_alpha=0.5, logq=1.0, sample_cache_size=5_000)

    def run(epochs, init_seed=0, resume=False, ckpt=None):
        torch.manual_seed(init_seed)
        m = GRU4Rec(cfg, data.n_items)
        tc = TrainConfig(
            epochs=epochs,
            batch_size=8,
            optimizer=optimizer,
            learning_rate=0.05,
            momentum=momentum,
            weight_decay=weight_decay,
            fused=fused,
            progress=False,
            device="cpu",
        )
        strategy = GRU4RecStrategy(cfg, obj, tc)
        log = Trainer(tc, seed=7, checkpoint_dir=ckpt).fit(m, strategy, data, resume=resume)
        assert isinstance(strategy.loop, _FastLoop) == fused
        return m, [h.loss for h in log]

    full, full_loss = run(3)
    run(1, ckpt=tmp_path)
    resumed, resumed_loss = run(3, init_seed=1, resume=True, ckpt=tmp_path)
    assert resumed_loss == full_loss
    for k, v in full.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k


@pytest.mark.parametrize("fused", [True, False])
def test_last_batch_stop_trains_on_the_notebook_loader_events(fused):
    """``last_batch = "stop"`` (the Keras notebook's loader) trains on the events of the
    full-width steps only; ``"shrink"`` on every event."""
    from seqrec.data import SequenceData, Vocabulary
    from seqrec.data.batching import session_parallel_schedule
    from seqrec.data.synthetic import synthetic_sessions
    from seqrec.models.gru4rec import ObjectiveConfig
    from seqrec.models.gru4rec.training import GRU4RecStrategy
    from seqrec.train import TrainConfig, Trainer

    df = synthetic_sessions(n_sessions=120, n_items=30, seed=2)
    data = SequenceData.from_frame(df, Vocabulary.fit(df["item_id"]))
    cfg = GRU4RecConfig(layers=[8], constrained_embedding=False, embedding_dim=0)
    tc = TrainConfig(
        epochs=1,
        batch_size=16,
        optimizer="adam",
        learning_rate=0.01,
        fused=fused,
        progress=False,
        device="cpu",
    )
    seen = {}
    for last_batch in ("shrink", "stop"):
        obj = ObjectiveConfig(negatives="full", last_batch=last_batch)
        torch.manual_seed(0)
        m = GRU4Rec(cfg, data.n_items)
        log = Trainer(tc, seed=3).fit(m, GRU4RecStrategy(cfg, obj, tc), data)
        seen[last_batch] = log[0].events
    expected = session_parallel_schedule(data, 16, last_batch="stop").n_events
    assert seen["stop"] == expected < seen["shrink"] == int((data.lengths - 1).sum())
