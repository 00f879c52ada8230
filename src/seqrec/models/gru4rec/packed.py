"""Packed tables for GRU4Rec's fast loop: a row's weights and its optimiser state side by side.

A table ``(N, D)`` is packed into ``(N, 1 + S, D)`` (:func:`pack_rows`): slot 0 the weights,
then the ``S`` state tensors of the optimiser. One gather brings the rows a step touches
together with their state, the optimiser's ``step`` updates them in place, one scatter writes
them back (with full softmax the table is updated in place). The maths is that of
:class:`seqrec.optim.SparseAdagradM` / :class:`seqrec.optim.RowSparseAdam` (and, for the GRU
weights, one packed row touched every step, of dense Adam/AdamW): the autograd loop uses those
and a test trains both loops to the same weights.

The fast loop's gradients are those of the summed loss, ``grad_scale`` (the batch size) times
the official mean's; each optimiser folds the scale into its constants instead of rescaling
every gradient. Checkpoints save the packed tables themselves: they hold all the state.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from seqrec.exceptions import ConfigError


def pack_rows(table: Tensor, state_init: Sequence[float]) -> Tensor:
    """``(N, D)`` table -> ``(N, 1 + len(state_init), D)``: slot 0 the weights, then one slot
    per state tensor filled with its initial value."""
    packed = torch.empty(table.shape[0], 1 + len(state_init), table.shape[1], device=table.device)
    packed[:, 0] = table
    for i, v in enumerate(state_init, 1):
        packed[:, i] = v
    return packed


class PackedAdagradM:
    """:class:`~seqrec.optim.SparseAdagradM` on packed rows: slots weights, ``acc`` and, with
    momentum, ``momentum_buffer``.

    Adagrad is scale-free but for ``eps``: ``g / sqrt(sum g^2 + eps)`` equals
    ``s g / sqrt(sum (s g)^2 + eps s^2)``. The accumulator therefore starts at
    ``eps * grad_scale**2``, which saves the scaling and the ``+ eps`` pass every step.
    """

    def __init__(
        self, *, lr: float, momentum: float = 0.0, eps: float = 1e-6, grad_scale: float = 1.0
    ) -> None:
        self.lr, self.momentum, self.eps, self.grad_scale = lr, momentum, eps, grad_scale
        # a zero gradient leaves a row unchanged only without momentum
        self.zero_grad_is_identity = momentum == 0

    def pack(self, table: Tensor) -> Tensor:
        """``table`` packed with its initial state, for :meth:`step`."""
        state = [self.eps * self.grad_scale**2] + ([0.0] if self.momentum > 0 else [])
        return pack_rows(table, state)

    @torch.no_grad()
    def step(self, block: Tensor, grad: Tensor) -> None:
        """The row update in place on gathered packed rows ``block`` (U, 1 + state, D) with
        their summed gradients ``grad`` (U, D), ``grad_scale`` times the true ones; rows must
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


class PackedAdam:
    """Lazy Adam (:class:`~seqrec.optim.RowSparseAdam`) on packed rows: slots weights, first
    and second moments and the row's step count (repeated along the row, so a row's state is
    one block). Adam is scale-free but for ``eps`` and the L2 weight decay, which are scaled
    by ``grad_scale`` to match; the decoupled decay (AdamW) does not depend on it."""

    zero_grad_is_identity = False

    def __init__(
        self,
        *,
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool = False,
        grad_scale: float = 1.0,
    ) -> None:
        self.lr, self.betas, self.eps = lr, betas, eps
        self.weight_decay, self.decoupled = weight_decay, decoupled_weight_decay
        self.grad_scale = grad_scale

    def pack(self, table: Tensor) -> Tensor:
        """``table`` packed with zero moments and step counts, for :meth:`step`."""
        return pack_rows(table, [0.0, 0.0, 0.0])

    @torch.no_grad()
    def step(self, block: Tensor, grad: Tensor) -> None:
        """Lazy Adam in place on gathered packed rows ``block`` (U, 4, D); see
        :meth:`PackedAdagradM.step`."""
        p, m, v, t = block[:, 0], block[:, 1], block[:, 2], block[:, 3]
        b1, b2 = self.betas
        scale = self.grad_scale
        if self.weight_decay:
            if self.decoupled:
                p.mul_(1 - self.lr * self.weight_decay)
            else:
                grad = grad.add(p, alpha=self.weight_decay * scale)
        t.add_(1)
        m.lerp_(grad, 1 - b1)
        v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        c1 = torch.pow(b1, t).neg_().add_(1)
        c2 = torch.pow(b2, t).neg_().add_(1)
        denom = v.div(c2).sqrt_().add_(self.eps * scale)
        p.addcdiv_(m.div(c1), denom, value=-self.lr)


PackedOptimizer = PackedAdagradM | PackedAdam


def packed_optimizer(
    optimizer: str,
    *,
    lr: float,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    grad_scale: float = 1.0,
) -> PackedOptimizer:
    """The packed optimiser of a ``train.optimizer`` name (``adagrad``, ``adam``, ``adamw``)
    with the same defaults as its unpacked twin."""
    if optimizer == "adagrad":
        if weight_decay:
            raise ConfigError("weight_decay is not supported by optimizer 'adagrad'; set 0")
        return PackedAdagradM(lr=lr, momentum=momentum, grad_scale=grad_scale)
    if optimizer in ("adam", "adamw"):
        if momentum:
            raise ConfigError(f"momentum is not supported by optimizer {optimizer!r}; set 0")
        return PackedAdam(
            lr=lr,
            weight_decay=weight_decay,
            decoupled_weight_decay=optimizer == "adamw",
            grad_scale=grad_scale,
        )
    raise ConfigError(f"no packed optimiser {optimizer!r}; use 'adagrad', 'adam' or 'adamw'")
