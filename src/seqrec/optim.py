"""Row-sparse optimisers for embedding tables, as ``torch.optim.Optimizer`` subclasses.

GRU4Rec's official code updates only the rows of the item tables that a mini-batch touched
(its ``IndexedAdagradM``). :class:`SparseAdagradM` is that optimiser and :class:`RowSparseAdam`
is lazy Adam with weight decay; dense parameters use ``torch.optim.Adam``/``AdamW`` (or
:class:`SparseAdagradM`, which takes dense gradients too).

A parameter's gradient may be dense or a row-sparse ``torch.sparse_coo`` tensor (sparse
dimension 1, the layout of ``nn.Embedding(sparse=True)``; GRU4Rec's loop builds them from the
gradients of the rows it looked up). For a sparse gradient only the listed rows change, their
weights and their state; duplicate rows are summed first (the update is non-linear). State is
saved and restored with the standard ``state_dict()``/``load_state_dict()``.

An option an optimiser does not support (``weight_decay`` for Adagrad, say) is a
:class:`~seqrec.exceptions.ConfigError` naming it. The packed layout of GRU4Rec's fast loop
(weights and optimiser state of a row side by side) lives in
:mod:`seqrec.models.gru4rec.packed`; it applies the same maths.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import chain
from typing import Any

import torch
from torch import Tensor
from torch.optim import optimizer as _torch_optimizer

from seqrec.exceptions import ConfigError


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


def row_sparse_grad(
    param: Tensor, ids: Tensor, grads: Tensor, *, coalesced: bool = False
) -> Tensor:
    """The row-sparse gradient of ``param`` with rows ``grads`` (K, ...) at ``ids`` (K,),
    without a copy. ``coalesced=True`` declares the ids unique and sorted."""
    return torch.sparse_coo_tensor(
        ids[None], grads, param.shape, is_coalesced=coalesced, check_invariants=False
    )


def _sparse_rows(grad: Tensor) -> tuple[Tensor, Tensor, bool]:
    """``(ids, rows, coalesced)`` of a row-sparse gradient."""
    if grad.sparse_dim() != 1:
        raise ValueError(
            f"sparse gradients must be row-sparse (sparse_dim 1, as nn.Embedding(sparse=True) "
            f"gives), not sparse_dim {grad.sparse_dim()}"
        )
    return grad._indices()[0], grad._values(), grad.is_coalesced()


def _refuse(optimizer: str, options: Iterable[str], supported: Iterable[str]) -> None:
    bad = sorted(set(options) - set(supported))
    if bad:
        raise ConfigError(
            f"{optimizer} does not support option(s) {', '.join(bad)}; "
            f"it takes {', '.join(sorted(set(supported) - {'params', 'param_names'}))}"
        )


class _Optimizer(torch.optim.Optimizer):
    """Base of the optimisers here: torch's ``Optimizer`` whose ``step`` runs the step hooks
    (the optimiser's and the global ones, as torch does) without a profiler range.

    torch wraps every subclass's ``step`` in ``record_function``, under which the ~20 small
    kernels of a row update dispatch measurably slower: ~60 us a call on a 2-core CPU, 5%
    of GRU4Rec's autograd loop, which steps once per mini-batch. A subclass writes
    :meth:`_step`.
    """

    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        args: tuple[Any, ...] = (self,) if closure is None else (self, closure)
        kwargs: dict[str, Any] = {}
        pre = chain(
            getattr(_torch_optimizer, "_global_optimizer_pre_hooks", {}).values(),
            self._optimizer_step_pre_hooks.values(),
        )
        for hook in pre:
            result = hook(self, args, kwargs)
            if result is not None:
                args, kwargs = result
        loss = self._step(*args[1:], **kwargs)
        post = chain(
            self._optimizer_step_post_hooks.values(),
            getattr(_torch_optimizer, "_global_optimizer_post_hooks", {}).values(),
        )
        for hook in post:
            hook(self, args, kwargs)
        return loss

    step.hooked = True  # type: ignore[attr-defined]  # torch: do not wrap it again

    def _step(self, closure: Callable[[], float] | None = None) -> float | None:
        raise NotImplementedError


class SparseAdagradM(_Optimizer):
    """Adagrad with (heavy-ball) momentum, row-sparse for tables: the official GRU4Rec optimiser.

    ``acc += g^2;  v = momentum * v - lr * g / sqrt(acc + eps);  p += v`` — for a row-sparse
    gradient only on its rows (duplicates summed first). State per parameter: ``acc`` and,
    with momentum, ``momentum_buffer``. Defaults are the official code's.
    """

    _OPTIONS = ("params", "param_names", "lr", "momentum", "eps")

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 0.05,
        momentum: float = 0.0,
        eps: float = 1e-6,
        **unsupported: Any,
    ) -> None:
        _refuse("SparseAdagradM", unsupported, self._OPTIONS)
        if not lr > 0:
            raise ValueError(f"invalid learning rate {lr}: must be > 0")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"invalid momentum {momentum}: must be in [0, 1)")
        if not eps >= 0:
            raise ValueError(f"invalid eps {eps}: must be >= 0")
        super().__init__(params, {"lr": lr, "momentum": momentum, "eps": eps})
        for group in self.param_groups:
            for p in group["params"]:
                self._state(p, group["momentum"])

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        _refuse("SparseAdagradM", param_group, self._OPTIONS)
        super().add_param_group(param_group)

    def _state(self, p: Tensor, momentum: float) -> dict[str, Tensor]:
        st = self.state[p]
        if not st:
            st["acc"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        if momentum > 0 and "momentum_buffer" not in st:
            st["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return st

    @torch.no_grad()
    def _step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, momentum, eps = group["lr"], group["momentum"], group["eps"]
            dense: list[Tensor] = []
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if g.is_sparse:
                    ids, rows, coalesced = _sparse_rows(g)
                    self._step_rows(p, ids, rows, coalesced, lr, momentum, eps)
                else:
                    dense.append(p)
            if dense:
                self._step_dense(dense, lr, momentum, eps)
        return loss

    def _step_dense(self, ps: list[Tensor], lr: float, momentum: float, eps: float) -> None:
        gs = [p.grad for p in ps]
        states = [self._state(p, momentum) for p in ps]
        accs = [s["acc"] for s in states]
        torch._foreach_addcmul_(accs, gs, gs)
        denom = torch._foreach_add(accs, eps)
        torch._foreach_sqrt_(denom)
        if momentum > 0:
            moms = [s["momentum_buffer"] for s in states]
            torch._foreach_mul_(moms, momentum)
            torch._foreach_addcdiv_(moms, gs, denom, value=-lr)
            torch._foreach_add_(ps, moms)
        else:
            torch._foreach_addcdiv_(ps, gs, denom, value=-lr)

    def _step_rows(
        self,
        table: Tensor,
        ids: Tensor,
        grads: Tensor,
        coalesced: bool,
        lr: float,
        momentum: float,
        eps: float,
    ) -> None:
        st = self._state(table, momentum)
        n_rows = table.shape[0]
        if table.dim() == 1 and n_rows <= 4 * len(ids):  # measured: wins for bias vectors only
            self._step_touched_dense(table, st, ids, grads, lr, momentum, eps)
            return
        own = not coalesced  # whether ``grads`` is our copy (may be changed in place)
        if not coalesced:
            ids, grads = coalesce_rows(ids, grads, n_rows)
        acc = st["acc"]
        # index_select / index_copy_ are much cheaper than advanced indexing for row blocks
        a = acc.index_select(0, ids).addcmul_(grads, grads)
        acc.index_copy_(0, ids, a)
        a.add_(eps).sqrt_()
        if momentum > 0:
            mom = st["momentum_buffer"]
            upd = mom.index_select(0, ids).mul_(momentum).addcdiv_(grads, a, value=-lr)
            mom.index_copy_(0, ids, upd)
        else:
            upd = (grads.div_(a) if own else grads.div(a)).mul_(-lr)
        # ids are unique here: gather + add + copy beats the serial scatter of index_add_
        table.index_copy_(0, ids, table.index_select(0, ids).add_(upd))

    @staticmethod
    def _step_touched_dense(
        table: Tensor,
        st: dict[str, Tensor],
        ids: Tensor,
        grads: Tensor,
        lr: float,
        momentum: float,
        eps: float,
    ) -> None:
        """The same update over the whole (small) table, masked to the touched rows.

        Used when the batch touches a large share of the table: a handful of dense passes
        beat gathering and scattering most of the rows. Untouched rows get a zero gradient,
        which leaves ``acc`` unchanged, and a momentum factor of 1 and a zero step, which
        leaves ``momentum_buffer`` and the weights unchanged: exactly the row-sparse rule.
        """
        g = torch.zeros_like(table).index_add_(0, ids, grads)
        shape = (-1,) + (1,) * (table.dim() - 1)
        touched = (torch.bincount(ids, minlength=table.shape[0]) > 0).view(shape)
        acc = st["acc"]
        acc.addcmul_(g, g)
        denom = acc.add(eps).sqrt_()
        if momentum > 0:
            mom = st["momentum_buffer"]
            mom.mul_(torch.where(touched, momentum, 1.0))
            mom.addcdiv_(g, denom, value=-lr)
            table.addcmul_(mom, touched)
        else:
            table.addcdiv_(g, denom, value=-lr)


class RowSparseAdam(_Optimizer):
    """Lazy Adam for embedding tables: a row-sparse gradient updates only its rows' moments,
    step counts and weights; a dense gradient counts as every row touched.

    Each row keeps its own step count (``row_step``), so its bias correction is that of the
    updates it has had: a row touched every step follows dense Adam exactly (torch's
    ``SparseAdam`` counts steps per table and corrects ``eps`` differently). ``weight_decay``
    is an L2 term added to the touched rows' gradients (as ``torch.optim.Adam``) or, with
    ``decoupled_weight_decay=True``, a decay of the touched rows (as ``torch.optim.AdamW``).
    State per parameter: ``exp_avg``, ``exp_avg_sq``, ``row_step`` (float32, one per row).
    """

    _OPTIONS = (
        "params",
        "param_names",
        "lr",
        "betas",
        "eps",
        "weight_decay",
        "decoupled_weight_decay",
    )

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool = False,
        **unsupported: Any,
    ) -> None:
        _refuse("RowSparseAdam", unsupported, self._OPTIONS)
        if not lr > 0:
            raise ValueError(f"invalid learning rate {lr}: must be > 0")
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"invalid betas {betas}: two values in [0, 1)")
        if not eps >= 0 or not weight_decay >= 0:
            raise ValueError(f"invalid eps {eps} or weight_decay {weight_decay}: must be >= 0")
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._state(p)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        _refuse("RowSparseAdam", param_group, self._OPTIONS)
        super().add_param_group(param_group)

    def _state(self, p: Tensor) -> dict[str, Tensor]:
        st = self.state[p]
        if not st:
            st["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            st["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            st["row_step"] = torch.zeros(p.shape[0], dtype=torch.float32, device=p.device)
        return st

    @torch.no_grad()
    def _step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if g.is_sparse:
                    ids, rows, coalesced = _sparse_rows(g)
                    if not coalesced:
                        ids, rows = coalesce_rows(ids, rows, p.shape[0])
                else:
                    ids, rows = torch.arange(p.shape[0], device=p.device), g
                self._step_rows(p, ids, rows, group)
        return loss

    def _step_rows(self, table: Tensor, ids: Tensor, grads: Tensor, group: dict[str, Any]) -> None:
        """Lazy Adam on the distinct rows ``ids`` with their summed gradients ``grads``."""
        st = self._state(table)
        lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
        b1, b2 = group["betas"]
        if wd and group["decoupled_weight_decay"]:
            table.index_copy_(0, ids, table.index_select(0, ids).mul_(1 - lr * wd))
        elif wd:
            grads = grads + wd * table[ids]
        t = st["row_step"]
        tr = t[ids] + 1
        t[ids] = tr
        m, v = st["exp_avg"], st["exp_avg_sq"]
        mr = m[ids].lerp_(grads, 1 - b1)
        vr = v[ids].mul_(b2).addcmul_(grads, grads, value=1 - b2)
        m[ids] = mr
        v[ids] = vr
        shape = (-1,) + (1,) * (grads.dim() - 1)
        c1 = (1 - b1**tr).view(shape)
        c2 = (1 - b2**tr).view(shape)
        upd = (mr / c1) / ((vr / c2).sqrt_().add_(eps))
        table.index_add_(0, ids, upd.mul_(-lr))
