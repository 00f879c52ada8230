"""Optimisers with row-sparse updates of embedding tables.

GRU4Rec's official code updates only the rows of the item tables that a mini-batch touched
(``IndexedAdagradM``). Here the training loop looks up table rows as leaf tensors and hands
the optimiser ``(table, row_ids, row_grads)``; duplicate ids are summed first, because the
update is non-linear. Dense parameters (GRU weights) get the same rule, densely.

The fast training path keeps a table and its optimiser state *packed* row by row
(:func:`pack_rows`): one gather brings a row's weights and state together, ``step_packed``
updates them in place, one scatter writes them back.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


def coalesce_rows(ids: Tensor, grads: Tensor, n_rows: int | None = None) -> tuple[Tensor, Tensor]:
    """Sum the gradient rows of duplicate ids. ids: (K,), grads: (K, D) -> (U,), (U, D).

    With ``n_rows`` (the table size) not much larger than ``K``, a dense scatter + bincount is
    used instead of a sort; both give sorted unique ids.
    """
    if n_rows is not None and n_rows <= 4 * len(ids):
        dense = torch.zeros(n_rows, *grads.shape[1:], dtype=grads.dtype, device=grads.device)
        dense.index_add_(0, ids, grads)
        uniq = torch.bincount(ids, minlength=n_rows).nonzero().squeeze(1)
        return uniq, dense.index_select(0, uniq)
    uniq, inv = torch.unique(ids, return_inverse=True)
    out = torch.zeros(len(uniq), *grads.shape[1:], dtype=grads.dtype, device=grads.device)
    out.index_add_(0, inv, grads)
    return uniq, out


def pack_rows(table: Tensor, state_init: Sequence[float]) -> Tensor:
    """``(N, D)`` table -> ``(N, 1 + len(state_init), D)``: slot 0 the weights, then one slot
    per state tensor filled with its initial value."""
    packed = torch.empty(table.shape[0], 1 + len(state_init), table.shape[1], device=table.device)
    packed[:, 0] = table
    for i, v in enumerate(state_init, 1):
        packed[:, i] = v
    return packed


class IndexedAdagradM:
    """Adagrad with (heavy-ball) momentum, row-sparse for tables: the official GRU4Rec optimiser.

    ``acc += g^2;  v = momentum * v - lr * g / sqrt(acc + eps);  p += v`` — for tables only on
    the rows in the batch.
    """

    def __init__(
        self,
        dense: Sequence[Tensor],
        tables: Sequence[Tensor],
        *,
        lr: float,
        momentum: float = 0.0,
        eps: float = 1e-6,
    ) -> None:
        self.dense = list(dense)
        self.params = [*self.dense, *tables]
        self.lr, self.momentum, self.eps = lr, momentum, eps
        self.acc = {id(p): torch.zeros_like(p) for p in [*self.dense, *tables]}
        self.mom = (
            {id(p): torch.zeros_like(p) for p in [*self.dense, *tables]} if momentum > 0 else {}
        )

    @torch.no_grad()
    def step_dense(self) -> None:
        ps = [p for p in self.dense if p.grad is not None]
        if not ps:
            return
        gs = [p.grad for p in ps]
        accs = [self.acc[id(p)] for p in ps]
        torch._foreach_addcmul_(accs, gs, gs)
        denom = torch._foreach_add(accs, self.eps)
        torch._foreach_sqrt_(denom)
        if self.momentum > 0:
            moms = [self.mom[id(p)] for p in ps]
            torch._foreach_mul_(moms, self.momentum)
            torch._foreach_addcdiv_(moms, gs, denom, value=-self.lr)
            torch._foreach_add_(ps, moms)
        else:
            torch._foreach_addcdiv_(ps, gs, denom, value=-self.lr)

    @torch.no_grad()
    def step_rows(
        self, table: Tensor, ids: Tensor, grads: Tensor, *, coalesced: bool = False
    ) -> None:
        n_rows = table.shape[0]
        if table.dim() == 1 and n_rows <= 4 * len(ids):  # measured: wins for bias vectors only
            self._step_touched_dense(table, ids, grads)
            return
        if not coalesced:
            ids, grads = coalesce_rows(ids, grads, n_rows)
        acc = self.acc[id(table)]
        # index_select / index_copy_ are much cheaper than advanced indexing for row blocks
        a = acc.index_select(0, ids).addcmul_(grads, grads)
        acc.index_copy_(0, ids, a)
        a.add_(self.eps).sqrt_()
        if self.momentum > 0:
            mom = self.mom[id(table)]
            upd = mom.index_select(0, ids).mul_(self.momentum).addcdiv_(grads, a, value=-self.lr)
            mom.index_copy_(0, ids, upd)
        else:
            upd = grads.div_(a).mul_(-self.lr)
        # ids are unique here: gather + add + copy beats the serial scatter of index_add_
        table.index_copy_(0, ids, table.index_select(0, ids).add_(upd))

    def pack(self, table: Tensor, grad_scale: float = 1.0) -> Tensor:
        """``table`` and its Adagrad state packed row by row (:func:`pack_rows`) for
        :meth:`step_packed`, which will be given gradients ``grad_scale`` times the true ones.

        Adagrad is scale-free but for ``eps``: ``g / sqrt(sum g^2 + eps)`` equals
        ``s g / sqrt(sum (s g)^2 + eps s^2)``. The accumulator therefore starts at
        ``eps * grad_scale**2``, which saves the scaling and the ``+ eps`` pass every step.
        """
        state = [self.eps * grad_scale**2] + ([0.0] if self.momentum > 0 else [])
        return pack_rows(table, state)

    @torch.no_grad()
    def step_packed(self, block: Tensor, grad: Tensor) -> None:
        """The row update in place on gathered packed rows ``block`` (U, 1 + state, D) with
        their summed gradients ``grad`` (U, D), scaled as declared to :meth:`pack`; rows must
        be distinct."""
        p, acc = block[:, 0], block[:, 1]
        acc.addcmul_(grad, grad)
        # sqrt of a strided view takes a slow path: on a contiguous copy it is ~10x faster
        denom = acc.sqrt() if acc.is_contiguous() else acc.contiguous().sqrt_()
        if self.momentum > 0:
            mom = block[:, 2]
            mom.mul_(self.momentum).addcdiv_(grad, denom, value=-self.lr)
            p.add_(mom)
        else:
            p.addcdiv_(grad, denom, value=-self.lr)

    def _step_touched_dense(self, table: Tensor, ids: Tensor, grads: Tensor) -> None:
        """The same update over the whole (small) table, masked to the touched rows.

        Used when the batch touches a large share of the table: a handful of dense passes
        beat gathering and scattering most of the rows. Untouched rows get a zero gradient,
        which leaves ``acc`` unchanged, and a momentum factor of 1 and a zero step, which
        leaves ``mom`` and the weights unchanged: exactly the row-sparse rule.
        """
        g = torch.zeros_like(table).index_add_(0, ids, grads)
        shape = (-1,) + (1,) * (table.dim() - 1)
        touched = (torch.bincount(ids, minlength=table.shape[0]) > 0).view(shape)
        acc = self.acc[id(table)]
        acc.addcmul_(g, g)
        denom = acc.add(self.eps).sqrt_()
        if self.momentum > 0:
            mom = self.mom[id(table)]
            mom.mul_(torch.where(touched, self.momentum, 1.0))
            mom.addcdiv_(g, denom, value=-self.lr)
            table.addcmul_(mom, touched)
        else:
            table.addcdiv_(g, denom, value=-self.lr)

    def state_dict(self) -> dict[str, object]:
        """Hyper-parameters and the per-parameter state, in parameter order."""
        return {
            "lr": self.lr,
            "momentum": self.momentum,
            "eps": self.eps,
            "acc": [self.acc[id(p)] for p in self.params],
            "mom": [self.mom[id(p)] for p in self.params] if self.mom else [],
        }

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, object]) -> None:
        _load_list(self.acc, self.params, state["acc"])
        if self.mom:
            _load_list(self.mom, self.params, state["mom"])


class IndexedAdam:
    """Adam; tables get lazy row-sparse updates (as ``torch.optim.SparseAdam``), dense params
    the usual update. With full-softmax training every row is touched each step, which makes
    it identical to dense Adam."""

    def __init__(
        self,
        dense: Sequence[Tensor],
        tables: Sequence[Tensor],
        *,
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        self.dense = list(dense)
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.params = params = [*self.dense, *tables]
        self.tables = list(tables)
        self.m = {id(p): torch.zeros_like(p) for p in params}
        self.v = {id(p): torch.zeros_like(p) for p in params}
        self.t = {
            id(p): torch.zeros(p.shape[0], dtype=torch.float32, device=p.device) for p in tables
        }
        self.t_dense = 0
        self._grad_scale = 1.0  # of the gradients given to step_packed, see pack

    @torch.no_grad()
    def step_dense(self) -> None:
        ps = [p for p in self.dense if p.grad is not None]
        if not ps:
            return
        self.t_dense += 1
        b1, b2 = self.betas
        gs = [p.grad for p in ps]
        if self.weight_decay:
            torch._foreach_add_(gs, ps, alpha=self.weight_decay)
        ms = [self.m[id(p)] for p in ps]
        vs = [self.v[id(p)] for p in ps]
        torch._foreach_lerp_(ms, gs, 1 - b1)
        torch._foreach_mul_(vs, b2)
        torch._foreach_addcmul_(vs, gs, gs, value=1 - b2)
        c1 = 1 - b1**self.t_dense
        c2 = 1 - b2**self.t_dense
        denom = torch._foreach_sqrt(vs)
        torch._foreach_div_(denom, math.sqrt(c2))
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(ps, ms, denom, value=-self.lr / c1)

    @torch.no_grad()
    def step_rows(
        self, table: Tensor, ids: Tensor, grads: Tensor, *, coalesced: bool = False
    ) -> None:
        if not coalesced:
            ids, grads = coalesce_rows(ids, grads, table.shape[0])
        b1, b2 = self.betas
        if self.weight_decay:
            grads = grads + self.weight_decay * table[ids]
        t = self.t[id(table)]
        tr = t[ids] + 1
        t[ids] = tr
        m = self.m[id(table)]
        v = self.v[id(table)]
        mr = m[ids].lerp_(grads, 1 - b1)
        vr = v[ids].mul_(b2).addcmul_(grads, grads, value=1 - b2)
        m[ids] = mr
        v[ids] = vr
        shape = (-1,) + (1,) * (grads.dim() - 1)
        c1 = (1 - b1**tr).view(shape)
        c2 = (1 - b2**tr).view(shape)
        upd = (mr / c1) / ((vr / c2).sqrt_().add_(self.eps))
        table.index_add_(0, ids, upd.mul_(-self.lr))

    def pack(self, table: Tensor, grad_scale: float = 1.0) -> Tensor:
        """``table`` with its lazy-Adam state packed row by row for :meth:`step_packed`:
        first and second moments and the row's step count (repeated along the row, so a
        row's state is one block). Gradients will be ``grad_scale`` times the true ones: Adam
        is scale-free but for ``eps`` and weight decay, which are scaled to match."""
        self._grad_scale = grad_scale
        return pack_rows(table, [0.0, 0.0, 0.0])

    @torch.no_grad()
    def step_packed(self, block: Tensor, grad: Tensor) -> None:
        """Lazy Adam in place on gathered packed rows ``block`` (U, 4, D); see
        :meth:`IndexedAdagradM.step_packed`."""
        p, m, v, t = block[:, 0], block[:, 1], block[:, 2], block[:, 3]
        b1, b2 = self.betas
        scale = self._grad_scale
        if self.weight_decay:
            grad = grad.add(p, alpha=self.weight_decay * scale)
        t.add_(1)
        m.lerp_(grad, 1 - b1)
        v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        c1 = torch.pow(b1, t).neg_().add_(1)
        c2 = torch.pow(b2, t).neg_().add_(1)
        denom = v.div(c2).sqrt_().add_(self.eps * scale)
        p.addcdiv_(m.div(c1), denom, value=-self.lr)

    def state_dict(self) -> dict[str, object]:
        """Hyper-parameters and the per-parameter state, in parameter order."""
        return {
            "lr": self.lr,
            "betas": list(self.betas),
            "eps": self.eps,
            "m": [self.m[id(p)] for p in self.params],
            "v": [self.v[id(p)] for p in self.params],
            "t": [self.t[id(p)] for p in self.tables],
            "t_dense": self.t_dense,
            "grad_scale": self._grad_scale,
        }

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, object]) -> None:
        _load_list(self.m, self.params, state["m"])
        _load_list(self.v, self.params, state["v"])
        _load_list(self.t, self.tables, state["t"])
        self.t_dense = int(state["t_dense"])  # type: ignore[arg-type]
        self._grad_scale = float(state["grad_scale"])  # type: ignore[arg-type]


def _load_list(target: dict[int, Tensor], params: Sequence[Tensor], saved: object) -> None:
    saved = list(saved)  # type: ignore[call-overload]
    if len(saved) != len(params):
        raise ValueError(f"optimizer state has {len(saved)} tensors, expected {len(params)}")
    for p, t in zip(params, saved, strict=True):
        target[id(p)].copy_(t)
