"""Basket encoders: the items of one order -> one vector per order.

Both take ``emb (m, S, E)`` (the embedded items of ``m`` baskets, ``S`` slots each) and
``valid (m, S)`` bool (False at padded slots; every basket has at least one valid slot) and
return ``(m, D)``. Padded slots never reach the output: their embeddings are zeroed before
anything else, they are left out of the pooling, and the attention encoder masks them as keys.
So the output of a basket does not depend on the values at its padded slots, nor on how many
padded slots the batch adds (the test suite changes both and compares).

* :class:`CNNBasketEncoder` — a 1-D convolution over the items in cart order (``channels``
  filters of width ``kernel``, ``"same"`` zero padding), ReLU, masked max or mean pooling.
* :class:`AttentionBasketEncoder` — items projected to ``dim``, one pre-norm multi-head
  self-attention block (key-padding mask) with a feed-forward sub-layer, then attention
  pooling (a learned query scores each slot; softmax over the valid slots).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def masked_max(x: Tensor, valid: Tensor) -> Tensor:
    """Max over dim 1 of ``x (m, S, D)`` at the ``valid (m, S)`` slots -> (m, D)."""
    return x.masked_fill(~valid.unsqueeze(-1), float("-inf")).amax(1)


def masked_mean(x: Tensor, valid: Tensor) -> Tensor:
    """Mean over dim 1 of ``x (m, S, D)`` at the ``valid (m, S)`` slots -> (m, D)."""
    w = valid.unsqueeze(-1).to(x.dtype)  # (m, S, 1)
    return (x * w).sum(1) / w.sum(1).clamp_min(1.0)


class CNNBasketEncoder(nn.Module):
    """1-D CNN over the items of an order, masked pooling. ``(m, S, E) -> (m, channels)``."""

    def __init__(
        self,
        embedding_dim: int,
        channels: int = 128,
        kernel: int = 4,
        pooling: Literal["max", "mean"] = "max",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.out_dim = channels
        self.pooling = pooling
        # "same": output slot i sees input slots i - (k-1)//2 .. i + k//2; beyond the basket
        # those are zeros, whether they come from batch padding or from the conv's padding
        self.pad = ((kernel - 1) // 2, kernel // 2)
        self.conv = nn.Conv1d(embedding_dim, channels, kernel)
        self.drop = nn.Dropout(dropout)

    def forward(self, emb: Tensor, valid: Tensor) -> Tensor:
        x = emb * valid.unsqueeze(-1)  # (m, S, E), padded slots zero
        h = F.relu(self.conv(F.pad(x.transpose(1, 2), self.pad))).transpose(1, 2)  # (m, S, C)
        h = self.drop(h)
        return masked_max(h, valid) if self.pooling == "max" else masked_mean(h, valid)


class AttentionBasketEncoder(nn.Module):
    """Multi-head self-attention over the items of an order with attention pooling.
    ``(m, S, E) -> (m, dim)``."""

    def __init__(
        self, embedding_dim: int, dim: int = 128, heads: int = 4, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.out_dim = dim
        self.inp = nn.Linear(embedding_dim, dim)
        self.ln_attn = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.ln_ffn = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Linear(2 * dim, dim))
        self.ln_out = nn.LayerNorm(dim)
        self.pool_proj = nn.Linear(dim, dim)
        self.pool_query = nn.Parameter(torch.randn(dim) * dim**-0.5)
        self.drop = nn.Dropout(dropout)

    def forward(self, emb: Tensor, valid: Tensor) -> Tensor:
        keep = valid.unsqueeze(-1)  # (m, S, 1)
        x = self.inp(emb * keep) * keep  # (m, S, D), padded slots zero
        q = self.ln_attn(x)
        a, _ = self.attn(q, q, q, key_padding_mask=~valid, need_weights=False)  # (m, S, D)
        x = (x + self.drop(a)) * keep
        x = (x + self.drop(self.ffn(self.ln_ffn(x)))) * keep
        h = self.ln_out(x)  # (m, S, D)
        # attention pooling: one learned query scores every slot, softmax over valid slots
        logit = torch.tanh(self.pool_proj(h)) @ self.pool_query  # (m, S)
        w = torch.softmax(logit.masked_fill(~valid, float("-inf")), dim=1)  # (m, S)
        return (w.unsqueeze(-1) * h).sum(1)  # (m, D)
