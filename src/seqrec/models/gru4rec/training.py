"""GRU4Rec's training: session-parallel mini-batches, as the official code trains.

The hidden state is carried from step to step (gradients are truncated at every step, as
in the official code), reset to zero when a slot takes a new session, and the item tables
are updated row-sparsely. Two loops do it, with the same maths:

* ``_FastLoop`` (1 GRU layer, input embedding, cross-entropy with sampled or full softmax):
  hand-written forward/backward, merged sampled columns, packed tables and packed optimisers
  (:mod:`.packed`);
* ``_GenericLoop``: plain autograd over the official layout (BPR-max, several layers,
  one-hot input, ``train.fused = false``), with ``torch.optim`` optimisers: row-sparse
  gradients for the tables (:mod:`seqrec.optim`), torch's Adam/AdamW for dense weights.

:class:`GRU4RecStrategy` wraps them for the :class:`~seqrec.train.Trainer`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from seqrec.data.batching import TorchSessionSchedule, session_parallel_schedule
from seqrec.data.sequences import SequenceData
from seqrec.exceptions import ArtifactError, ConfigError, DivergenceError
from seqrec.losses import bpr_max, full_cross_entropy, logq_correction, sampled_cross_entropy
from seqrec.models.gru4rec.model import GRU4Rec, GRU4RecConfig
from seqrec.models.gru4rec.objective import (
    ObjectiveConfig,
    merge_sampled_columns,
    union_per_step,
)
from seqrec.models.gru4rec.packed import PackedOptimizer, packed_optimizer
from seqrec.optim import RowSparseAdam, SparseAdagradM, row_sparse_grad
from seqrec.sampling import PopularitySampler
from seqrec.train import EpochLog, TrainConfig, Trainer

TRAIN_DEFAULTS = {"optimizer": "adagrad", "learning_rate": 0.05, "batch_size": 64}
"""GRU4Rec's [train] defaults (the official code's)."""


def _check_finite(loss: torch.Tensor, step: int) -> None:
    if not bool(torch.isfinite(loss)):
        raise DivergenceError(
            f"training diverged: non-finite loss by step {step}; lower learning_rate"
        )


def can_fuse(model: GRU4Rec, objective: ObjectiveConfig) -> bool:
    """Whether the fast loop (hand-written forward/backward, packed tables) trains this model:
    one GRU layer, an input embedding (shared or separate) and cross-entropy."""
    return (
        isinstance(model, GRU4Rec)
        and len(model.cells) == 1
        and model.config.input_mode != "onehot"
        and objective.loss == "cross-entropy"
    )


GRUWeights = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
"""``(weight_ih, weight_hh, bias_ih, bias_hh)`` of a GRU cell, PyTorch's r/z/n gate order."""


def _cell_weights(cell: torch.nn.GRUCell) -> GRUWeights:
    return cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh


def _gru_forward(
    w: GRUWeights, x: torch.Tensor, h: torch.Tensor
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """PyTorch's GRUCell by hand: the new state and what :func:`_gru_backward` needs."""
    w_ih, w_hh, b_ih, b_hh = w
    n_h = h.shape[1]
    gi = torch.addmm(b_ih, x, w_ih.t())  # (n, 3H)
    gh = torch.addmm(b_hh, h, w_hh.t())  # (n, 3H)
    rz, gi_n = gi.split((2 * n_h, n_h), 1)
    gh_rz, h_n = gh.split((2 * n_h, n_h), 1)
    rz.add_(gh_rz).sigmoid_()
    r, z = rz.split(n_h, 1)
    c = torch.addcmul(gi_n, r, h_n).tanh_()
    hc = h - c
    hn = torch.addcmul(c, z, hc)  # (1 - z) * c + z * h
    return hn, (x, h, rz, r, z, c, h_n, hc)


def _gru_backward(
    w: GRUWeights, cache: tuple[torch.Tensor, ...], d_hn: torch.Tensor, grads: GRUWeights
) -> torch.Tensor:
    """Backward of :func:`_gru_forward` given ``d_hn``: the weight gradients are written into
    ``grads`` (same shapes as ``w``), the input's gradient is returned."""
    x, h, rz, r, z, c, h_n, hc = cache
    n, n_h = h.shape
    d_gi = torch.empty(n, 3 * n_h, dtype=h.dtype, device=h.device)
    d_rz, d_n = d_gi.split((2 * n_h, n_h), 1)
    d_r, d_z = d_rz.split(n_h, 1)
    torch.addcmul(d_hn, d_hn, z, value=-1, out=d_n)  # d c = d_hn (1 - z)
    d_n.addcmul_(d_n * c, c, value=-1)  # through tanh: * (1 - c^2)
    torch.mul(d_n, h_n, out=d_r)
    torch.mul(d_hn, hc, out=d_z)
    d_rz.mul_(torch.addcmul(rz, rz, rz, value=-1))  # through the sigmoids: * rz (1 - rz)
    d_gh = d_gi.clone()
    d_gh.narrow(1, 2 * n_h, n_h).mul_(r)
    g_ih, g_hh, gb_ih, gb_hh = grads
    torch.mm(d_gi.t(), x, out=g_ih)
    torch.mm(d_gh.t(), h, out=g_hh)
    torch.sum(d_gi, 0, out=gb_ih)
    torch.sum(d_gh, 0, out=gb_hh)
    return d_gi @ w[0]


class _GenericLoop:
    """The step loop of :func:`fit_session_parallel` for every model and objective: autograd,
    the official column layout, row-sparse table updates: the gradients of the looked-up
    rows are handed to ``optimizers`` as row-sparse gradients of the tables."""

    def __init__(
        self,
        model: GRU4Rec,
        sched: TorchSessionSchedule,
        counts: np.ndarray,
        objective: ObjectiveConfig,
        batch_size: int,
        optimizers: list[torch.optim.Optimizer],
        rng: np.random.Generator,
    ) -> None:
        self.model, self.sched, self.objective = model, sched, objective
        self.optimizers = optimizers
        self.params = [p for o in optimizers for g in o.param_groups for p in g["params"]]
        device = model.Wy.device
        self.log_q = torch.tensor(np.log(np.maximum(counts, 1)), dtype=torch.float32, device=device)
        self.sampled = objective.negatives == "sampled"
        self.sampler = None
        if self.sampled and objective.n_sample > 0:
            self.sampler = PopularitySampler(
                counts,
                objective.n_sample,
                objective.sample_alpha,
                cache_size=objective.sample_cache_size,
                rng=rng,
                device=device,
            )
        self.use_logq = self.sampled and objective.loss == "cross-entropy" and objective.logq > 0
        self.all_items = torch.arange(1, model.n_items, device=device)
        self.batch_size = float(batch_size)

    def run_epoch(self, progress: Callable[[int], None] | None) -> float:
        """One pass; returns the summed loss over all rows."""
        model, sched, objective = self.model, self.sched, self.objective
        optimizers, params = self.optimizers, self.params
        sampled, sampler, bs = self.sampled, self.sampler, self.batch_size
        constrained = model.config.input_mode == "constrained"
        Wy, By, table = model.Wy, model.By, model.input_table
        H = model.init_hidden(sched.n_slots, Wy.device)
        loss_sum = torch.zeros((), device=Wy.device)
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
                out_ids = self.all_items
            if constrained:
                row_ids = torch.cat([x, out_ids])
                rows = Wy.detach().index_select(0, row_ids).requires_grad_()
                xe, O = rows.split([n, len(out_ids)])
            else:
                xrows = table.detach().index_select(0, x).requires_grad_()
                rows = Wy.detach().index_select(0, out_ids).requires_grad_()
                xe, O = xrows, rows
            bias = By.detach().index_select(0, out_ids).requires_grad_()
            corr = (
                objective.logq * logq_correction(self.log_q[out_ids], n, objective.sample_alpha)
                if self.use_logq
                else None
            )
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
            # the looked-up rows' gradients as row-sparse gradients of the tables (full
            # softmax: the output ids are all items, distinct and sorted)
            if constrained:
                Wy.grad = row_sparse_grad(Wy, row_ids, rows.grad)
            else:
                table.grad = row_sparse_grad(table, x, xrows.grad)
                Wy.grad = row_sparse_grad(Wy, out_ids, rows.grad, coalesced=not sampled)
            By.grad = row_sparse_grad(By, out_ids, bias.grad, coalesced=not sampled)
            for opt in optimizers:
                opt.step()
            for p in params:
                p.grad = None
            loss_sum += loss.detach() * bs
            if t % 64 == 0:
                if progress is not None:
                    progress(sched.offsets[min(t + 64, sched.n_steps)] - a)
                _check_finite(loss_sum, t)
        return float(loss_sum)


def _dropout_masks(rows: int, size: int, p: float, device: torch.device) -> torch.Tensor | None:
    """Inverted-dropout multipliers for ``rows`` steps' rows at once (None when p == 0)."""
    if p <= 0:
        return None
    return torch.rand(rows, size, device=device).lt_(1 - p).div_(1 - p)


class _FastLoop:
    """The fast path of :func:`fit_session_parallel`: a 1-layer GRU4Rec with softmax
    cross-entropy (sampled or full), hand-written forward/backward and packed tables.

    Ahead of each run of steps it draws the negatives in bulk, merges every step's output
    columns (:func:`seqrec.losses.merge_sampled_columns`: each touched item once, duplicates
    and logQ corrections folded into a log-weight), draws the dropout masks and cuts all of
    it into per-step views. A step then gathers each touched row of ``[Wy | By]`` together
    with its optimiser state (one gather), scores, backpropagates, updates the rows in place
    and scatters them back; with full softmax every row but padding is a column and the
    table is updated in place. The GRU weights live in one flat packed row, so their update
    is a handful of kernels. The maths is the official step's; only the layout differs.

    ``opt`` (:mod:`.packed`) must be built with ``grad_scale`` = the batch size: the loop's
    gradients are those of the summed loss, the batch size times the official mean's.
    """

    def __init__(
        self,
        model: GRU4Rec,
        sched: TorchSessionSchedule,
        counts: np.ndarray,
        objective: ObjectiveConfig,
        opt: PackedOptimizer,
        rng: np.random.Generator,
    ) -> None:
        self.model, self.sched, self.objective, self.opt = model, sched, objective, opt
        self.device = dev = model.Wy.device
        self.log_count = np.log(np.maximum(counts, 1))
        self.full = objective.negatives == "full"
        self.sampler = None
        if not self.full and objective.n_sample > 0:
            self.sampler = PopularitySampler(
                counts, objective.n_sample, objective.sample_alpha, cache_size=1, rng=rng
            )
        self.logq = objective.logq
        self.constrained = model.config.input_mode == "constrained"
        self.n_h = model.config.layers[-1]
        self.n_in = self.n_h if self.constrained else model.config.embedding_dim
        cell = model.cells[0]
        with torch.no_grad():
            self.out_table = opt.pack(torch.cat([model.Wy, model.By[:, None]], 1))
            self.in_table = None if self.constrained else opt.pack(model.E)
            flat = torch.cat([p.reshape(-1) for p in _cell_weights(cell)])
            self.gru_table = opt.pack(flat[None])  # (1, 1 + state, n_weights)
        self.gru_grad = torch.zeros_like(flat)[None]
        self.gru_weights = self._views(self.gru_table[0, 0])
        self.gru_grads = self._views(self.gru_grad[0])
        n_cols = model.n_items if self.full else objective.n_sample + 2 * sched.n_slots
        width = n_cols * 8
        rows = sched.n_slots * max(self.n_h, self.n_in)
        self.chunk_steps = max(1, min(2**24 // width, 2**23 // rows))
        # the last layer's (dropped-out) output with a column of ones for the biases; two
        # buffers alternate, so a step's input state is never overwritten while in use
        self.out_bufs = [torch.ones(sched.n_slots, self.n_h + 1, device=dev) for _ in range(2)]
        self.minus_one = torch.full((sched.n_slots,), -1.0, device=dev)

    def _views(self, flat: torch.Tensor) -> GRUWeights:
        """The GRU weights as views of one flat tensor."""
        out, at = [], 0
        for p in _cell_weights(self.model.cells[0]):
            out.append(flat[at : at + p.numel()].view(p.shape))
            at += p.numel()
        return tuple(out)

    def write_back(self) -> None:
        """Copy the packed weights into the model (before validation, and at the end)."""
        with torch.no_grad():
            self.model.Wy.copy_(self.out_table[:, 0, : self.n_h])
            self.model.By.copy_(self.out_table[:, 0, self.n_h])
            if self.in_table is not None:
                self.model.E.copy_(self.in_table[:, 0])
            for p, v in zip(_cell_weights(self.model.cells[0]), self.gru_weights, strict=True):
                p.copy_(v)

    def packed_state(self) -> dict[str, torch.Tensor | None]:
        """The packed tables (weights and optimiser state), for checkpoints."""
        return {"out": self.out_table, "in": self.in_table, "gru": self.gru_table}

    def load_packed_state(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.out_table.copy_(state["out"])
            if self.in_table is not None:
                self.in_table.copy_(state["in"])
            self.gru_table.copy_(state["gru"])

    def _plan(self, t0: int, t1: int) -> dict:
        """Everything steps ``t0..t1-1`` need, drawn and merged in bulk, as per-step lists."""
        s, dev, cfg = self.sched, self.device, self.model.config
        a, b = s.offsets[t0], s.offsets[t1]
        row_off = np.asarray(s.offsets[t0 : t1 + 1], dtype=np.int64) - a
        rows = np.diff(row_off).tolist()
        x, y = s.inputs_np[a:b], s.targets_np[a:b]
        n_steps = t1 - t0
        step = np.repeat(np.arange(n_steps), rows)
        row_in_step = np.arange(b - a) - row_off[step]

        def split(arr: np.ndarray | torch.Tensor | None, sizes: list[int]) -> list:
            if arr is None:
                return [None] * len(sizes)
            if isinstance(arr, np.ndarray):
                arr = torch.from_numpy(arr).to(dev)
            return list(torch.split(arr, sizes))

        plan = {
            "mask_h": split(_dropout_masks(b - a, self.n_h, cfg.dropout_hidden, dev), rows),
            "mask_e": split(_dropout_masks(b - a, self.n_in, cfg.dropout_embed, dev), rows),
        }
        if self.full:
            # every item but padding is a column: item i is column i - 1
            n_cols = len(self.log_count) - 1
            plan.update(
                item=[None] * n_steps,
                log_weight=[None] * n_steps,
                target_flat=split(row_in_step * n_cols + y - 1, rows),
                n_scored=[n_cols] * n_steps,
                width=[n_cols] * n_steps,
                shift=0.0,
            )
            input_col = x - 1
        else:
            samples = None
            if self.sampler is not None:
                samples = self.sampler.draw((n_steps, self.objective.n_sample))
            cols = merge_sampled_columns(
                y,
                row_off,
                samples,
                self.log_count,
                alpha=self.objective.sample_alpha,
                logq=self.logq,
                inputs=x if self.constrained else None,
            )
            widths = np.diff(cols.offsets)
            plan.update(
                item=split(cols.item, widths.tolist()),
                log_weight=split(cols.log_weight, widths.tolist()),
                target_flat=split(row_in_step * widths[step] + cols.target_col, rows),
                n_scored=cols.n_scored.tolist(),
                width=widths.tolist(),
                shift=cols.loss_shift,
            )
            input_col = cols.input_col
        if self.constrained:
            plan["input_col"] = split(input_col, rows)
            plan["in_item"] = [None] * n_steps  # inputs are rows of the output table
        else:
            item, offsets, _, (pos,), _ = union_per_step(
                len(self.log_count), n_steps, None, [(step, x)]
            )
            plan["in_item"] = split(item, np.diff(offsets).tolist())
            plan["input_col"] = split(pos, rows)
        return plan

    @torch.no_grad()
    def run_epoch(self, progress: Callable[[int], None] | None) -> float:
        """One pass; returns the summed (official) loss over all rows."""
        s, opt = self.sched, self.opt
        n_h = self.n_h
        out_table, in_table, gru_table = self.out_table, self.in_table, self.gru_table
        w, g, gru_grad = self.gru_weights, self.gru_grads, self.gru_grad
        minus_one, n_slots = self.minus_one, s.n_slots
        out_views = [(o, o[:, :n_h]) for o in self.out_bufs]
        all_rows = out_table[1:]
        keep_input_bias = in_table is None and not opt.zero_grad_is_identity
        loss = torch.zeros((), device=self.device)
        shift = 0.0
        h = self.model.init_hidden(s.n_slots, self.device)[0]
        for c0 in range(0, s.n_steps, self.chunk_steps):
            c1 = min(c0 + self.chunk_steps, s.n_steps)
            plan = self._plan(c0, c1)
            shift += plan["shift"]
            steps = zip(
                range(c0, c1),
                plan["item"],
                plan["log_weight"],
                plan["target_flat"],
                plan["input_col"],
                plan["mask_h"],
                plan["mask_e"],
                plan["n_scored"],
                plan["width"],
                plan["in_item"],
                strict=True,
            )
            for t, u, lw, flat, in_col, mask_h, mask_e, n_out, width, u_in in steps:
                n = len(flat)
                h = s.carry(t, [h])[0]
                # (U, 1 + state, H + 1): the touched rows, or all but padding (full softmax)
                blk = all_rows if u is None else out_table.index_select(0, u)
                W = blk[:, 0]  # (U, H + 1): item vectors and biases
                W_h = W[:, :n_h]
                if in_table is None:
                    xe = W_h.index_select(0, in_col)
                else:
                    blk_in = in_table.index_select(0, u_in)
                    xe = blk_in[:, 0].index_select(0, in_col)
                if mask_e is not None:
                    xe = xe * mask_e
                hn, cache = _gru_forward(w, xe, h)
                out, out_h = out_views[t & 1]
                if n < n_slots:
                    out, out_h = out[:n], out_h[:n]
                if mask_h is not None:
                    torch.mul(hn, mask_h, out=out_h)
                else:
                    out_h.copy_(hn)
                scores = out @ W.t() if lw is None else torch.addmm(lw, out, W.t())  # (n, U)
                d_s = torch.log_softmax(scores, 1)  # log-probabilities, then their gradient
                d_s_flat = d_s.view(-1)
                loss -= d_s_flat.index_select(0, flat).sum()
                d_s.exp_()
                d_s_flat.index_add_(0, flat, minus_one if n == n_slots else minus_one[:n])
                d_w = d_s.t() @ out  # (U, H + 1)
                d_out = d_s @ W_h
                if mask_h is not None:
                    d_out.mul_(mask_h)
                d_x = _gru_backward(w, cache, d_out, g)
                if mask_e is not None:
                    d_x.mul_(mask_e)
                if in_table is None:
                    d_w[:, :n_h].index_add_(0, in_col, d_x)
                else:
                    d_in = torch.zeros(len(u_in), d_x.shape[1], device=d_x.device)
                    opt.step(blk_in, d_in.index_add_(0, in_col, d_x))
                    in_table.index_copy_(0, u_in, blk_in)
                opt.step(gru_table, gru_grad)
                if keep_input_bias and n_out < width:
                    # rows that are only inputs have no bias gradient: the official update
                    # leaves their bias and its state alone (momentum would move them)
                    bias_state = blk[n_out:, :, n_h].clone()
                    opt.step(blk, d_w)
                    blk[n_out:, :, n_h] = bias_state
                else:
                    opt.step(blk, d_w)
                if u is not None:
                    out_table.index_copy_(0, u, blk)
                h = out_h
                if progress is not None and t % 64 == 0:
                    progress(s.offsets[min(t + 64, s.n_steps)] - s.offsets[t])
            _check_finite(loss, c1 - 1)
        return float(loss) + shift


def _optimizers(
    name: str,
    dense: list[torch.Tensor],
    tables: list[torch.Tensor],
    *,
    lr: float,
    momentum: float,
    weight_decay: float,
) -> list[torch.optim.Optimizer]:
    """The autograd loop's optimisers: ``adagrad``, the official Adagrad with momentum for
    all parameters (row-sparse on tables); ``adam``/``adamw``, torch's Adam/AdamW for dense
    weights and lazy row-sparse Adam for the tables. Unsupported options are ConfigErrors."""
    if name == "adagrad":
        extra = {"weight_decay": weight_decay} if weight_decay else {}
        return [SparseAdagradM([*dense, *tables], lr=lr, momentum=momentum, **extra)]
    if momentum:
        raise ConfigError(f"momentum is not supported by optimizer {name!r}; set 0")
    adam = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
    out: list[torch.optim.Optimizer] = []
    if dense:
        out.append(adam(dense, lr=lr, weight_decay=weight_decay, foreach=True))
    if tables:
        out.append(
            RowSparseAdam(
                tables,
                lr=lr,
                weight_decay=weight_decay,
                decoupled_weight_decay=name == "adamw",
            )
        )
    return out


def _sparse_tables(model: GRU4Rec) -> list[torch.Tensor]:
    tabs = [model.Wy, model.By]
    if model.config.input_mode != "constrained":
        tabs.append(model.input_table)
    return tabs


class GRU4RecStrategy:
    """The :class:`~seqrec.models.base.TrainingStrategy` of GRU4Rec."""

    units = "ev"

    def __init__(
        self, config: GRU4RecConfig, objective: ObjectiveConfig | None, train: TrainConfig
    ) -> None:
        train = train.resolved(TRAIN_DEFAULTS, "gru4rec")  # no-op if the caller did it
        if train.optimizer not in ("adagrad", "adam", "adamw"):
            raise ConfigError(
                f"gru4rec supports optimizer 'adagrad', 'adam' or 'adamw', not {train.optimizer!r}"
            )
        self.config = config
        self.objective = objective if objective is not None else ObjectiveConfig()
        self.train = train

    def setup(
        self, model: GRU4Rec, data: SequenceData, *, rng: np.random.Generator, device: torch.device
    ) -> None:
        cfg, objective = self.train, self.objective
        batch_size = int(cfg.batch_size)  # type: ignore[arg-type]  # resolved
        self.model = model
        self.sched = sched = TorchSessionSchedule(
            session_parallel_schedule(data, batch_size, last_batch=objective.last_batch), device
        )
        counts = data.item_counts()
        fast_loop = cfg.fused and can_fuse(model, objective)
        tables = [] if fast_loop else _sparse_tables(model)
        dense = [p for p in model.parameters() if all(p is not t for t in _sparse_tables(model))]
        lr = float(cfg.learning_rate)  # type: ignore[arg-type]  # resolved
        name = str(cfg.optimizer)
        if fast_loop:
            # weights and optimiser state live in the loop's packed tables
            self.optimizers: list[torch.optim.Optimizer] = []
            packed = packed_optimizer(
                name,
                lr=lr,
                momentum=cfg.momentum,
                weight_decay=cfg.weight_decay,
                grad_scale=batch_size,
            )
            self.loop: _FastLoop | _GenericLoop = _FastLoop(
                model, sched, counts, objective, packed, rng
            )
        else:
            self.optimizers = _optimizers(
                name, dense, tables, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
            )
            self.loop = _GenericLoop(
                model, sched, counts, objective, batch_size, self.optimizers, rng
            )

    def epoch_units(self) -> int:
        return self.sched.n_events

    def run_epoch(self, progress: Callable[[int], None] | None) -> tuple[float, int]:
        return self.loop.run_epoch(progress), self.sched.n_events

    def finish(self) -> None:
        if isinstance(self.loop, _FastLoop):
            self.loop.write_back()

    def state_dict(self) -> dict[str, Any]:
        """``optimizers``: the autograd loop's optimisers' ``state_dict()`` (the fast loop has
        none: its ``packed`` tables hold weights and optimiser state); ``sampler``: the
        negative sampler's bulk cache."""
        state: dict[str, Any] = {"optimizers": [o.state_dict() for o in self.optimizers]}
        sampler = self.loop.sampler
        state["sampler"] = sampler.state_dict() if sampler is not None else None
        if isinstance(self.loop, _FastLoop):
            state["packed"] = self.loop.packed_state()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state.get("optimizers")
        if saved is None or len(saved) != len(self.optimizers):
            raise ArtifactError(
                "the checkpoint's optimiser state does not match this GRU4Rec training "
                "(written by another seqrec version?); delete the checkpoint to start over"
            )
        for opt, s in zip(self.optimizers, saved, strict=True):
            # checkpoints store mappings with string keys; torch's state is keyed by index
            opt.load_state_dict({**s, "state": {int(k): v for k, v in s["state"].items()}})
        if state.get("sampler") is not None and self.loop.sampler is not None:
            self.loop.sampler.load_state_dict(state["sampler"])
        if isinstance(self.loop, _FastLoop):
            self.loop.load_packed_state(state["packed"])
            self.loop.write_back()


def fit_session_parallel(
    model: GRU4Rec,
    data: SequenceData,
    objective: ObjectiveConfig,
    config: TrainConfig,
    *,
    seed: int | None = None,
    validate: Callable[[GRU4Rec], dict[str, float]] | None = None,
) -> list[EpochLog]:
    """Train ``model`` in place with GRU4Rec's strategy and the generic Trainer (a shortcut
    for tests and notebooks; :class:`~seqrec.recommender.Recommender` does the same)."""
    strategy = GRU4RecStrategy(model.config, objective, config)  # resolves the defaults
    return Trainer(strategy.train, seed=seed, validate=validate).fit(model, strategy, data)
