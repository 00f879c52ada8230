"""Training: one config, one loop per training strategy, early stopping, progress, history.

GRU4Rec trains with session-parallel mini-batches (:func:`fit_session_parallel`): the
hidden state is carried from step to step (gradients are truncated at every step, as in the
official code), reset to zero when a slot takes a new session, and the item tables are
updated row-sparsely (:mod:`seqrec.optim`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from tqdm.auto import tqdm

from seqrec.data.batching import TorchSessionSchedule, session_parallel_schedule
from seqrec.data.sequences import SequenceData
from seqrec.exceptions import SeqrecError
from seqrec.losses import (
    ObjectiveConfig,
    PopularitySampler,
    bpr_max,
    full_cross_entropy,
    logq_correction,
    sampled_cross_entropy,
)
from seqrec.models.gru4rec import GRU4Rec
from seqrec.optim import IndexedAdagradM, IndexedAdam

logger = logging.getLogger(__name__)


class TrainConfig(BaseModel):
    """How to train (GRU4Rec's names in brackets).

    Parameters
    ----------
    epochs
        Passes over the training data [n_epochs].
    batch_size
        Sessions side by side in a session-parallel mini-batch [batch_size].
    optimizer
        ``"adagrad"``: Adagrad with momentum, row-sparse on item tables (official);
        ``"adam"``: Adam (lazy row-sparse on item tables).
    learning_rate, momentum
        [learning_rate], [momentum] (momentum only for adagrad).
    patience
        Stop when the validation metric has not improved for this many epochs (needs a
        validation set); 0 disables early stopping. The best epoch's weights are kept.
    valid_metric
        Metric watched on validation, e.g. ``"recall@20"``.
    device
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    epochs: int = Field(10, ge=0)
    batch_size: int = Field(64, ge=1)
    optimizer: Literal["adagrad", "adam"] = "adagrad"
    learning_rate: float = Field(0.05, gt=0.0)
    momentum: float = Field(0.0, ge=0.0, lt=1.0)
    weight_decay: float = Field(0.0, ge=0.0)
    patience: int = Field(0, ge=0)
    valid_metric: str = "recall@20"
    eval_batch_size: int = Field(512, ge=1)
    fused: bool = True
    """Use the hand-written forward/backward of :func:`fused_gru_ce_step` where it applies
    (one GRU layer, cross-entropy, constrained or separate embedding); same maths as autograd,
    fewer kernel launches."""
    device: str = "auto"
    progress: bool = True


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise SeqrecError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda[:N]'") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SeqrecError(
            f"device {device!r} asked for but CUDA is not available; use device='cpu'"
        )
    return dev


@dataclass
class EpochLog:
    epoch: int
    loss: float
    events: int
    seconds: float
    valid: dict[str, float] = field(default_factory=dict)

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else math.nan


@contextlib.contextmanager
def flush_denormals() -> Iterator[None]:
    """Flush float denormals to zero on the CPU while training, then restore the default.

    Softmax probabilities of hopeless negatives and long-decayed momentum underflow into
    denormal floats, which x86 CPUs process up to 100x slower: an epoch can go from 4 s to
    60 s. Values below 1e-38 do not change any update meaningfully.
    """
    changed = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if changed:
            torch.set_flush_denormal(False)


def can_fuse(model: GRU4Rec, objective: ObjectiveConfig) -> bool:
    """Whether :func:`fused_gru_ce_step` computes this model's gradients."""
    return (
        isinstance(model, GRU4Rec)
        and len(model.cells) == 1
        and model.config.input_mode != "onehot"
        and objective.loss == "cross-entropy"
    )


@torch.no_grad()
def fused_gru_ce_step(
    model: GRU4Rec,
    xe: torch.Tensor,
    h: torch.Tensor,
    O: torch.Tensor,
    bias: torch.Tensor,
    corr: torch.Tensor | None,
    targets: torch.Tensor | None,
    batch_size: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One training step of a 1-layer GRU4Rec with softmax cross-entropy, by hand.

    Forward and backward are written out (PyTorch's GRUCell equations, r/z/n gate order),
    so a step costs ~30 kernels instead of autograd's graph. Gradients of the GRU weights are
    stored in their ``.grad``; those of the looked-up rows are returned.

    Parameters
    ----------
    xe : (n, E) input rows; h : (n, H) previous state; O : (M, H) output rows;
    bias : (M,) output biases; corr : (M,) subtracted from the scores (logQ) or None;
    targets : (n,) target column per row, or None for the diagonal (sampled layout).

    Returns
    -------
    loss (sum over rows / batch_size), d_xe (n, E), d_O (M, H), d_bias (M,), new state (n, H)
    """
    cell = model.cells[0]
    p_e, p_h = model.config.dropout_embed, model.config.dropout_hidden
    n = xe.shape[0]
    me = mh = None
    if p_e > 0:
        me = torch.empty_like(xe).bernoulli_(1 - p_e).div_(1 - p_e)
        xe = xe * me
    gi = torch.addmm(cell.bias_ih, xe, cell.weight_ih.t())  # (n, 3H)
    gh = torch.addmm(cell.bias_hh, h, cell.weight_hh.t())  # (n, 3H)
    i_r, i_z, i_n = gi.chunk(3, 1)
    h_r, h_z, h_n = gh.chunk(3, 1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    c = torch.tanh(torch.addcmul(i_n, r, h_n))
    hn = torch.addcmul(c, z, h - c)  # (1 - z) * c + z * h
    out = hn
    if p_h > 0:
        mh = torch.empty_like(hn).bernoulli_(1 - p_h).div_(1 - p_h)
        out = hn * mh
    R = torch.addmm(bias, out, O.t())  # (n, M)
    if corr is not None:
        R = R - corr
    cols = torch.arange(n, device=R.device) if targets is None else targets
    rows_idx = torch.arange(n, device=R.device)
    logp = torch.log_softmax(R, dim=1)  # (n, M)
    loss = -logp[rows_idx, cols].sum() / batch_size
    dR = logp.exp_()
    dR[rows_idx, cols] -= 1.0
    dR.div_(batch_size)  # (n, M)
    d_O = dR.t() @ out  # (M, H)
    d_b = dR.sum(0)  # (M,)
    d_out = dR @ O  # (n, H)
    d_hn = d_out if mh is None else d_out.mul_(mh)
    d_c = d_hn * (1 - z)
    d_z = d_hn * (h - c)
    d_npre = d_c.mul_(1 - c * c)
    d_rpre = (d_npre * h_n).mul_(r * (1 - r))
    d_zpre = d_z.mul_(z * (1 - z))
    d_gi = torch.cat([d_rpre, d_zpre, d_npre], 1)  # (n, 3H)
    d_gh = torch.cat([d_rpre, d_zpre, d_npre * r], 1)  # (n, 3H)
    cell.weight_ih.grad = d_gi.t() @ xe
    cell.bias_ih.grad = d_gi.sum(0)
    cell.weight_hh.grad = d_gh.t() @ h
    cell.bias_hh.grad = d_gh.sum(0)
    d_x = d_gi @ cell.weight_ih  # (n, E)
    if me is not None:
        d_x.mul_(me)
    return loss.detach(), d_x, d_O, d_b, out.detach()


def _sparse_tables(model: GRU4Rec) -> list[torch.Tensor]:
    tabs = [model.Wy, model.By]
    if model.config.input_mode != "constrained":
        tabs.append(model.input_table)
    return tabs


def fit_session_parallel(
    model: GRU4Rec,
    data: SequenceData,
    objective: ObjectiveConfig,
    config: TrainConfig,
    *,
    seed: int | None = None,
    validate: Callable[[GRU4Rec], dict[str, float]] | None = None,
) -> list[EpochLog]:
    """Train ``model`` in place with GRU4Rec's session-parallel mini-batches.

    Parameters
    ----------
    validate
        Called after each epoch with the model in eval mode; returns metrics (the
        ``config.valid_metric`` one drives early stopping).

    Returns
    -------
    One :class:`EpochLog` per epoch run.
    """
    device = next(model.parameters()).device
    gen = torch.Generator(device="cpu")
    gen.manual_seed(
        int(np.random.SeedSequence(seed).generate_state(1)[0]) if seed is not None else torch.seed()
    )
    sched = TorchSessionSchedule(session_parallel_schedule(data, config.batch_size), device)
    counts = data.item_counts()
    log_q = torch.tensor(np.log(np.maximum(counts, 1)), dtype=torch.float32, device=device)
    sampled = objective.negatives == "sampled"
    sampler = None
    if sampled and objective.n_sample > 0:
        sampler = PopularitySampler(
            counts,
            objective.n_sample,
            objective.sample_alpha,
            cache_size=objective.sample_cache_size,
            generator=gen,
            device=device,
        )
    use_logq = sampled and objective.loss == "cross-entropy" and objective.logq > 0
    tables = _sparse_tables(model)
    dense = [p for p in model.parameters() if all(p is not t for t in tables)]
    if config.optimizer == "adagrad":
        opt: IndexedAdagradM | IndexedAdam = IndexedAdagradM(
            dense, tables, lr=config.learning_rate, momentum=config.momentum
        )
    else:
        opt = IndexedAdam(dense, tables, lr=config.learning_rate, weight_decay=config.weight_decay)
    constrained = model.config.input_mode == "constrained"
    fused = config.fused and can_fuse(model, objective)
    all_items = torch.arange(1, model.n_items, device=device)
    Wy, By, table = model.Wy, model.By, model.input_table
    bs = float(config.batch_size)
    # dropout masks need randomness: derive torch's from the seed, scoped to this call
    fork_devices = [device] if device.type == "cuda" else []
    history: list[EpochLog] = []
    best, best_state, bad_epochs = -math.inf, None, 0
    with torch.random.fork_rng(devices=fork_devices), flush_denormals():
        torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=gen)))
        for epoch in range(1, config.epochs + 1):
            model.train()
            t0 = time.perf_counter()
            H = model.init_hidden(sched.n_slots, device)
            loss_sum = torch.zeros((), device=device)
            bar = tqdm(
                total=sched.n_events,
                desc=f"epoch {epoch}",
                unit="ev",
                disable=not config.progress,
                leave=False,
                mininterval=1.0,
            )
            for t in range(sched.n_steps):
                a, b = sched.offsets[t], sched.offsets[t + 1]
                # truncated BPTT of one step, as official
                H = sched.carry(t, [h.detach() for h in H])
                x = sched.inputs[a:b]
                y = sched.targets[a:b]
                n = b - a
                if sampled:
                    out_ids = torch.cat([y, sampler.sample()]) if sampler is not None else y
                else:
                    out_ids = all_items
                if constrained:
                    row_ids = torch.cat([x, out_ids])
                    rows = Wy.detach().index_select(0, row_ids).requires_grad_(not fused)
                    xe, O = rows.split([n, len(out_ids)])
                else:
                    xrows = table.detach().index_select(0, x).requires_grad_(not fused)
                    rows = Wy.detach().index_select(0, out_ids).requires_grad_(not fused)
                    xe, O = xrows, rows
                bias_rows = By.detach().index_select(0, out_ids)
                corr = (
                    objective.logq * logq_correction(log_q[out_ids], n, objective.sample_alpha)
                    if use_logq
                    else None
                )
                if fused:
                    loss, d_x, d_o, d_b, H[0] = fused_gru_ce_step(
                        model,
                        xe,
                        H[0],
                        O,
                        bias_rows,
                        corr,
                        None if sampled else y - 1,
                        bs,
                    )
                    if constrained:
                        rows_grad = torch.cat([d_x, d_o])
                    else:
                        xrows_grad, rows_grad = d_x, d_o
                    bias_grad = d_b
                else:
                    bias = bias_rows.requires_grad_()
                    out = model.step(xe, H)  # (n, D)
                    R = torch.addmm(bias, out, O.t())  # (n, M)
                    if corr is not None:
                        R = R - corr
                    if not sampled:
                        loss = full_cross_entropy(R, y - 1)
                    elif objective.loss == "cross-entropy":
                        loss = sampled_cross_entropy(R)
                    else:
                        loss = bpr_max(R, bpreg=objective.bpreg, elu_param=objective.elu_param)
                    loss = loss / bs
                    loss.backward()
                    rows_grad, bias_grad = rows.grad, bias.grad
                    xrows_grad = None if constrained else xrows.grad
                opt.step_dense()
                for p in dense:
                    p.grad = None
                if constrained:
                    opt.step_rows(Wy, row_ids, rows_grad)
                else:
                    opt.step_rows(table, x, xrows_grad)
                    opt.step_rows(Wy, out_ids, rows_grad, coalesced=not sampled)
                opt.step_rows(By, out_ids, bias_grad, coalesced=not sampled)
                loss_sum += loss.detach() * bs
                if config.progress and t % 64 == 0:
                    bar.update(sched.offsets[min(t + 64, sched.n_steps)] - a)
            bar.close()
            loss_avg = float(loss_sum) / sched.n_events
            dt = time.perf_counter() - t0
            if not math.isfinite(loss_avg):
                raise SeqrecError(
                    f"training diverged (loss {loss_avg}) in epoch {epoch}; lower learning_rate"
                )
            log = EpochLog(epoch, loss_avg, sched.n_events, dt)
            if validate is not None:
                model.eval()
                log.valid = validate(model)
            history.append(log)
            logger.info(
                "epoch %d loss %.4f %.1fs %.0f ev/s %s",
                epoch,
                loss_avg,
                dt,
                log.events_per_second,
                " ".join(f"{k}={v:.4f}" for k, v in log.valid.items()),
            )
            if validate is not None and config.patience > 0:
                score = log.valid.get(config.valid_metric, -math.inf)
                if score > best:
                    best, bad_epochs = score, 0
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                else:
                    bad_epochs += 1
                    if bad_epochs >= config.patience:
                        logger.info(
                            "early stop after epoch %d (best %s %.4f)",
                            epoch,
                            config.valid_metric,
                            best,
                        )
                        break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history
