"""SASRec: self-attentive sequential recommendation (Kang & McAuley, ICDM 2018).

Three parts, readable top to bottom:

* :class:`SASRecConfig` — the typed config (architecture and loss);
* :class:`SASRec` — a plain ``nn.Module``: item + learned position embeddings, ``blocks``
  pre-LN causal transformer blocks, a final LayerNorm; scores are dot products with the
  (shared) item embedding table;
* :class:`SASRecStrategy` — how it trains, driven by :class:`~seqrec.train.Trainer`: every
  training sequence cut to its last ``max_len + 1`` items, all positions trained at once,
  losses ``ce`` (full softmax), ``bce`` (the paper's), ``sampled-softmax`` (logQ) or
  ``gbce`` (gSASRec).

Sequences are left-padded and right-aligned: the most recent item always sits at position
``max_len - 1``, as in the original code, so a batch can drop its all-padding columns on
the left without changing any output. ``docs/models/sasrec.md`` lists the formulas and the
deviations from the paper.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import ConfigDict, Field, model_validator
from torch import Tensor, nn

from seqrec._config import ConfigModel
from seqrec.data.batching import padded_last, sliding_windows
from seqrec.data.query import QueryBatch
from seqrec.data.sequences import SequenceData
from seqrec.exceptions import ArtifactError, ConfigError, DataError, DivergenceError
from seqrec.losses import (
    bce_negatives,
    chunked_full_cross_entropy,
    gbce,
    gbce_beta,
    sampled_softmax_logq,
)
from seqrec.models.base import ModelSpec
from seqrec.sampling import PopularitySampler

if TYPE_CHECKING:  # pragma: no cover
    from seqrec.train import TrainConfig

logger = logging.getLogger(__name__)

SASRecLoss = Literal["ce", "bce", "sampled-softmax", "gbce"]

#: Per-loss defaults of ``n_negatives`` and ``sample_alpha`` (used where the config leaves
#: them ``None``): the paper's one uniform negative for BCE, gSASRec's 256 uniform negatives,
#: 256 popularity-sampled negatives for the sampled softmax.
LOSS_DEFAULTS: dict[str, tuple[int | None, float | None]] = {
    "ce": (None, None),
    "bce": (1, 0.0),
    "gbce": (256, 0.0),
    "sampled-softmax": (256, 1.0),
}

_CE_CHUNK_ELEMENTS = 1 << 23
"""Largest (positions x items) logits block of the full softmax held at once (32 MiB)."""


class SASRecConfig(ConfigModel):
    """SASRec's architecture and training objective.

    Parameters
    ----------
    max_len
        ``L``: the model sees the last ``L`` items of a history (and trains on the last
        ``L + 1`` items of each sequence). 50 as the paper for sparse data; the paper uses
        200 for MovieLens-1M (and ML-100K studies often do too).
    hidden
        ``d``: embedding and hidden size (the paper: 50; 64 here).
    blocks
        Number of self-attention blocks (paper: 2).
    heads
        Attention heads (paper: 1); must divide ``hidden``.
    dropout
        Dropout rate on embeddings, attention probabilities and every sub-layer output
        (paper: 0.2 on MovieLens-1M, 0.5 on sparse data).
    loss
        ``"ce"``: softmax cross-entropy over all items (Klenitskiy & Vasilev 2023; the
        default: markedly better than the paper's and exact, no sampling);
        ``"bce"``: the paper's binary cross-entropy with ``n_negatives`` (default 1)
        uniformly sampled negatives per position;
        ``"sampled-softmax"``: softmax over the target and ``n_negatives`` (default 256)
        negatives shared by the batch, drawn proportional to popularity^``sample_alpha``
        (default 1), with the logQ correction;
        ``"gbce"``: gSASRec's generalised BCE (Petrov & Macdonald 2023) with ``n_negatives``
        (default 256) uniform negatives shared by the batch and calibration ``gbce_t``.
    n_negatives
        Negatives per position (``bce``) or per batch (``sampled-softmax``, ``gbce``);
        ``None``: the loss's default. Not used by ``ce`` (setting it is an error).
    sample_alpha
        Negatives are drawn proportional to ``count ** sample_alpha`` over training items
        (0: uniform over the items seen in training); ``None``: the loss's default
        (0 for ``bce``/``gbce``, 1 for ``sampled-softmax``).
    train_windows
        ``"all"`` (default): a training sequence longer than ``max_len + 1`` is cut into
        windows of ``max_len + 1`` items overlapping by one, from its end, so every event is
        a training target once (:func:`seqrec.data.batching.sliding_windows`); ``"last"``:
        only its last ``max_len + 1`` items, as the paper (the rest is dropped and counted).
    gbce_t
        gBCE calibration ``t`` in [0, 1] (0: plain BCE; the gSASRec paper's best: 0.75).

    Training settings (optimiser, learning rate, batch size, gradient clipping, warm-up)
    are ``[train]``'s (:class:`~seqrec.train.TrainConfig`); SASRec's defaults for them are
    :data:`TRAIN_DEFAULTS` and :data:`GRAD_CLIP`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: Literal["sasrec"] = "sasrec"
    max_len: int = Field(50, ge=1)
    hidden: int = Field(64, ge=1)
    blocks: int = Field(2, ge=1)
    heads: int = Field(1, ge=1)
    dropout: float = Field(0.2, ge=0.0, lt=1.0)
    loss: SASRecLoss = "ce"
    n_negatives: int | None = Field(None, ge=1)
    sample_alpha: float | None = Field(None, ge=0.0, le=1.0)
    gbce_t: float = Field(0.75, ge=0.0, le=1.0)
    train_windows: Literal["all", "last"] = "all"

    @model_validator(mode="after")
    def _check(self) -> SASRecConfig:
        if self.hidden % self.heads:
            raise ValueError(f"heads ({self.heads}) must divide hidden ({self.hidden})")
        if self.loss == "ce" and (self.n_negatives is not None or self.sample_alpha is not None):
            raise ValueError(
                "loss='ce' scores every item: n_negatives and sample_alpha do not apply "
                "(use loss='sampled-softmax', 'gbce' or 'bce' for sampled negatives)"
            )
        return self

    @property
    def negatives(self) -> int:
        """``n_negatives`` resolved (0 for ``ce``)."""
        if self.n_negatives is not None:
            return self.n_negatives
        return LOSS_DEFAULTS[self.loss][0] or 0

    @property
    def alpha(self) -> float:
        """``sample_alpha`` resolved."""
        if self.sample_alpha is not None:
            return self.sample_alpha
        return LOSS_DEFAULTS[self.loss][1] or 0.0


# ------------------------------------------------------------------ the module
class _Block(nn.Module):
    """Pre-LN transformer block: ``x + Attn(LN(x))`` then ``x + FFN(LN(x))``."""

    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.ln_attn = nn.LayerNorm(d, eps=1e-8)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln_ffn = nn.LayerNorm(d, eps=1e-8)
        self.ffn_in = nn.Linear(d, d)  # the paper's point-wise FFN: inner size d, ReLU
        self.ffn_out = nn.Linear(d, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x (B, T, D); mask (B, 1, T, T) additive (0 = may attend, -inf = may not).
        Returns (B, T, D)."""
        B, T, D = x.shape
        qkv = self.qkv(self.ln_attn(x)).view(B, T, 3, self.heads, D // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, H, T, D/H)
        p = self.dropout if self.training else 0.0
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)  # (B, H, T, D/H)
        x = x + self.drop(self.proj(a.transpose(1, 2).reshape(B, T, D)))
        h = self.drop(F.relu(self.ffn_in(self.ln_ffn(x))))
        return x + self.drop(self.ffn_out(h))


class SASRec(nn.Module):
    """SASRec as a plain module.

    ``item_emb`` (n_items, d, padding row 0) embeds the inputs (scaled by ``sqrt(d)`` as
    the paper) and scores the outputs (``scores = h @ item_emb.weight.T``); ``pos_emb``
    (L, d) is a learned position embedding, right-aligned (the last item of a window is at
    position ``L - 1``).

    Padding: a position is padding where ``valid`` is False (default: where the item is 0).
    Padded inputs are zeroed, keys at padded positions are masked for every query, each
    query attends causally to itself and earlier valid positions, and the outputs at
    padded positions are zero — so padding never changes a real position's output, and a
    fully padded row (an empty history) gives zeros, hence all-zero (tied) scores.
    """

    def __init__(self, config: SASRecConfig, n_items: int) -> None:
        super().__init__()
        if n_items < 2:
            raise DataError(f"SASRec needs at least one item (n_items >= 2), got {n_items}")
        self.config = config
        self.n_items = n_items
        d, L = config.hidden, config.max_len
        self.item_emb = nn.Embedding(n_items, d, padding_idx=0)
        self.pos_emb = nn.Embedding(L, d)
        self.emb_drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            [_Block(d, config.heads, config.dropout) for _ in range(config.blocks)]
        )
        self.ln_out = nn.LayerNorm(d, eps=1e-8)
        # item rows ~ N(0, 1/d): inputs scaled by sqrt(d) start at unit variance and
        # initial scores (unit-scale LayerNorm output . item row) at about unit scale
        nn.init.normal_(self.item_emb.weight, std=d**-0.5)
        nn.init.normal_(self.pos_emb.weight, std=0.5)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    @property
    def max_len(self) -> int:
        return self.config.max_len

    def forward(self, items: Tensor, valid: Tensor | None = None) -> Tensor:
        """items (B, T) with T <= L, left-padded; valid (B, T) bool (default items != 0).
        Returns the outputs (B, T, D), zero at padded positions."""
        B, T = items.shape
        L = self.config.max_len
        if T > L:
            raise DataError(f"SASRec got windows of {T} items, more than max_len={L}")
        if valid is None:
            valid = items != 0
        keep = valid.unsqueeze(-1)  # (B, T, 1)
        x = self.item_emb(items) * math.sqrt(self.config.hidden) + self.pos_emb.weight[L - T :]
        x = self.emb_drop(x) * keep  # (B, T, D)
        causal = torch.ones(T, T, dtype=torch.bool, device=items.device).tril_()  # (T, T)
        eye = torch.eye(T, dtype=torch.bool, device=items.device)
        # key j visible to query i: j <= i and (j valid or j == i); self-attention of padded
        # queries keeps their softmax defined (no NaN) and their outputs are zeroed anyway
        allowed = causal & (valid.unsqueeze(1) | eye)  # (B, T, T)
        # as an additive float mask, built once for all blocks (SDPA would convert a bool
        # mask in every block, forward and backward)
        mask = torch.zeros(allowed.shape, dtype=x.dtype, device=x.device)
        mask = mask.masked_fill_(~allowed, float("-inf")).unsqueeze(1)  # (B, 1, T, T)
        for block in self.blocks:
            x = block(x, mask)
        return self.ln_out(x) * keep  # (B, T, D)

    def logits(self, h: Tensor) -> Tensor:
        """Scores of every item for representations h (..., D) -> (..., n_items)."""
        return h @ self.item_emb.weight.t()

    @torch.no_grad()
    def encode(self, batch: QueryBatch) -> Tensor:
        """The representation of each query: the output at its most recent item, from its
        last ``L`` items (B, D); zeros for an empty history."""
        items, valid = batch.last(self.config.max_len)  # (B, L) each
        width = int(valid.sum(1).max()) if len(batch) else 0
        width = max(width, 1)  # drop all-padding columns on the left (outputs unchanged)
        h = self.forward(items[:, -width:], valid[:, -width:])  # (B, T, D)
        return h[:, -1]  # (B, D)

    @torch.no_grad()
    def score(self, batch: QueryBatch) -> Tensor:
        """(B, n_items) scores; column 0 and masking are left to the caller."""
        return self.logits(self.encode(batch))


# ------------------------------------------------------------------ training
TRAIN_DEFAULTS: dict[str, Any] = {"optimizer": "adam", "learning_rate": 1e-3, "batch_size": 128}
"""SASRec's values for the ``[train]`` fields left unset (the spec's ``train_defaults``):
Adam with 0.001 as the paper; 128 sequences per batch as the paper."""

GRAD_CLIP = 1.0
"""Gradient-norm clip when ``train.grad_clip`` is unset (the paper has none; it makes the
early steps of the full softmax robust to large learning rates)."""


def _optimizer(model: nn.Module, train: TrainConfig) -> torch.optim.Optimizer:
    """``"adam"``: Adam (``weight_decay`` an L2 penalty on every parameter, as torch's
    Adam); ``"adamw"``: AdamW, decoupled decay on weight matrices and embeddings only (not
    biases, LayerNorm gains). Anything else is a ConfigError naming the option."""
    if train.optimizer not in ("adam", "adamw"):
        raise ConfigError(
            f"SASRec trains with Adam: train.optimizer={train.optimizer!r} is not supported; "
            "use 'adam' or 'adamw' (or leave it unset for SASRec's default, 'adam')"
        )
    if train.momentum > 0:
        raise ConfigError(
            f"train.momentum={train.momentum} does not apply to SASRec's {train.optimizer}; "
            "leave it at 0"
        )
    lr = float(train.learning_rate)  # type: ignore[arg-type]  # resolved: never None
    if train.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=train.weight_decay)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": train.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr)


def _resolved(train: TrainConfig) -> TrainConfig:
    """``train`` with unset fields filled from :data:`TRAIN_DEFAULTS` (a no-op when the
    caller already resolved it with the spec's ``train_defaults``)."""
    return train.resolved(TRAIN_DEFAULTS, "sasrec")


class SASRecStrategy:
    """Trains a :class:`SASRec` in place (the :class:`~seqrec.models.base.TrainingStrategy`
    protocol).

    ``setup`` cuts every training sequence with at least 2 items into windows of ``L + 1``
    items (``train_windows="all"``: all of it, in windows overlapping by one item;
    ``"last"``: its last ``L + 1`` items, left truncation as the paper — ``n_truncated``
    counts the sequences that lost items, ``n_skipped`` those too short to train on) and
    builds the optimiser. Each
    ``run_epoch`` shuffles the sequences with the trainer's generator and, per batch of
    ``train.batch_size`` sequences, feeds ``items[:-1]`` and trains every position on
    ``items[1:]`` at once. ``run_epoch`` returns ``(sum of per-position losses, number of
    positions)``; ``progress`` advances by sequences (``units = "seq"``).

    Randomness: shuffling and negatives come from the ``rng`` given to ``setup``; dropout
    from torch's global RNG (scoped by the trainer). ``state_dict`` holds the optimiser
    state, the generator state and the epoch/step counters, so restoring it (plus the
    model weights and torch's RNG state) continues bit-identically.
    """

    units = "seq"

    def __init__(self, config: SASRecConfig, train: TrainConfig) -> None:
        self.config = config
        self.train = train = _resolved(train)
        self.batch_size = int(train.batch_size)  # type: ignore[arg-type]
        self.grad_clip = GRAD_CLIP if train.grad_clip is None else float(train.grad_clip)
        self.warmup_steps = int(getattr(train, "warmup_steps", 0))
        # refuse unsupported optimiser settings now, before any data is touched
        _optimizer(nn.Linear(1, 1), train)
        self.n_truncated = 0
        self.n_skipped = 0
        self.epoch = 0
        self.step = 0
        self._pending: dict[str, Any] | None = None
        self._model: SASRec | None = None

    # ------------------------------------------------------------------ setup
    def setup(
        self, model: SASRec, data: SequenceData, *, rng: np.random.Generator, device: torch.device
    ) -> None:
        cfg = self.config
        if model.config.max_len != cfg.max_len:
            raise ConfigError("the model and the strategy were built from different configs")
        self._model = model
        self._rng = rng
        self._device = torch.device(device)
        lengths = data.lengths
        keep = np.flatnonzero(lengths >= 2)
        self.n_skipped = int(len(lengths) - len(keep))
        if len(keep) == 0:
            raise DataError("no training sequence has 2 or more items: nothing to predict")
        long = int((lengths[keep] > cfg.max_len + 1).sum())
        self.n_truncated = long if cfg.train_windows == "last" else 0
        if long and cfg.train_windows == "all":
            logger.info(
                "SASRec: %d of %d training sequences are longer than max_len + 1 = %d and "
                "were cut into windows overlapping by one item",
                long,
                len(keep),
                cfg.max_len + 1,
            )
        if self.n_truncated:
            logger.info(
                "SASRec: %d of %d training sequences are longer than max_len + 1 = %d and "
                "were cut to their last %d items",
                self.n_truncated,
                len(keep),
                cfg.max_len + 1,
                cfg.max_len + 1,
            )
        if self.n_skipped:
            logger.info("SASRec: %d training sequence(s) with < 2 items skipped", self.n_skipped)
        seqs = data.select(keep)
        if cfg.train_windows == "all":
            seqs = sliding_windows(seqs, cfg.max_len + 1)
        window, window_len = padded_last(seqs, cfg.max_len + 1)
        self._window = window  # (S, L + 1) int64, left-padded
        self._window_len = window_len  # (S,)
        counts = data.item_counts()
        if cfg.loss != "ce":
            # draws one at a time from ``rng`` (no cache: the generator's state is the
            # sampler's whole state, which keeps resuming exact)
            self._sampler = PopularitySampler(counts, 1, cfg.alpha, rng=rng, cache_size=1)
        if cfg.loss == "sampled-softmax":
            with np.errstate(divide="ignore"):  # never-drawn items: log q = -inf, unused
                log_q = np.log(self._sampler.probs).astype(np.float32)
            self._log_q = torch.from_numpy(log_q).to(self._device)  # (N,)
        if cfg.loss == "gbce":
            n_neg, n_real = cfg.negatives, int((counts > 0).sum())
            if n_neg > n_real - 1:
                raise ConfigError(
                    f"gbce: n_negatives={n_neg} exceeds the {n_real - 1} possible negatives "
                    f"of the {n_real} training items; lower n_negatives"
                )
            self._beta = gbce_beta(n_neg, n_real, cfg.gbce_t)
        self._opt = _optimizer(model, self.train)
        if self._pending is not None:
            state, self._pending = self._pending, None
            self.load_state_dict(state)

    def epoch_units(self) -> int:
        return len(self._window)

    # ------------------------------------------------------------------ one epoch
    def _negatives(self, shape: tuple[int, ...]) -> np.ndarray:
        return self._sampler.draw(shape)

    def _batch_loss(self, rows: np.ndarray) -> tuple[Tensor, int]:
        """Summed loss over the valid positions of a batch of windows (b, T + 1) and their
        number."""
        model = self._model
        assert model is not None
        dev = self._device
        rows_t = torch.from_numpy(rows).to(dev, non_blocking=True)
        inputs, targets = rows_t[:, :-1], rows_t[:, 1:]  # (b, T) each
        valid = inputs != 0  # left padding: a valid input always has a valid target
        out = model(inputs, valid)  # (b, T, D)
        h = out[valid]  # (n, D)
        tgt = targets[valid]  # (n,)
        n = int(tgt.shape[0])
        emb = model.item_emb.weight  # (N, D)
        loss = self.config.loss
        if loss == "ce":
            return chunked_full_cross_entropy(h, emb, tgt, chunk_elements=_CE_CHUNK_ELEMENTS), n
        pos = (h * emb[tgt]).sum(-1)  # (n,)
        if loss == "bce":
            # per position, resampling negatives that are items of the same window
            # (the paper avoids the user's items) a few times
            k = self.config.negatives
            r, _ = np.nonzero(rows[:, :-1] != 0)  # window of each valid position
            neg = self._negatives((n, k))
            win = rows[r]  # (n, T + 1)
            for _ in range(4):
                bad = (neg[:, :, None] == win[:, None, :]).any(-1)  # (n, k)
                n_bad = int(bad.sum())
                if not n_bad:
                    break
                neg[bad] = self._negatives((n_bad,))
            neg_t = torch.from_numpy(neg).to(dev)
            neg_s = torch.einsum("nd,nkd->nk", h, emb[neg_t])  # (n, k)
            return bce_negatives(pos, neg_s, hits=neg_t == tgt.unsqueeze(1)), n
        k = self.config.negatives
        if loss == "gbce":
            # k negatives per sequence, shared by its positions
            neg_t = torch.from_numpy(self._negatives((len(rows), k))).to(dev)  # (b, k)
            neg_s = torch.einsum("btd,bkd->btk", out, emb[neg_t])[valid]  # (n, k)
            r = torch.nonzero(valid)[:, 0]  # sequence of each position
            hits = neg_t[r] == tgt.unsqueeze(1)
            return gbce(pos, neg_s, beta=self._beta, hits=hits), n
        shared = torch.from_numpy(self._negatives((k,))).to(dev)  # (k,)
        neg_s = h @ emb[shared].t()  # (n, k)
        hits = shared.unsqueeze(0) == tgt.unsqueeze(1)  # (n, k)
        return sampled_softmax_logq(pos, neg_s, self._log_q[shared], hits=hits), n

    def run_epoch(self, progress: Callable[[int], None] | None = None) -> tuple[float, int]:
        model = self._model
        if model is None:
            raise RuntimeError("SASRecStrategy.run_epoch called before setup")
        self.epoch += 1
        order = self._rng.permutation(len(self._window))
        params = [p for p in model.parameters() if p.requires_grad]
        clip = self.grad_clip
        base_lr = float(self.train.learning_rate)  # type: ignore[arg-type]
        loss_sum, n_sum = 0.0, 0
        for step, a in enumerate(range(0, len(order), self.batch_size), start=1):
            idx = order[a : a + self.batch_size]
            width = int(self._window_len[idx].max())  # drop all-padding columns (exact)
            rows = self._window[idx, -width:]  # (b, T + 1)
            loss, n = self._batch_loss(rows)
            value = loss.item()
            if not math.isfinite(value):
                raise DivergenceError(
                    f"SASRec: the loss became {value} at epoch {self.epoch}, step {step} "
                    f"(global step {self.step + 1}); lower train.learning_rate, or set "
                    "train.grad_clip / train.warmup_steps"
                )
            if self.warmup_steps:  # linear warm-up, a function of the global step only
                lr = base_lr * min(1.0, (self.step + 1) / self.warmup_steps)
                for group in self._opt.param_groups:
                    group["lr"] = lr
            self._opt.zero_grad(set_to_none=True)
            (loss / n).backward()  # mean over the batch's positions
            if clip > 0:
                torch.nn.utils.clip_grad_norm_(params, clip)
            self._opt.step()
            self.step += 1
            loss_sum += value
            n_sum += n
            if progress is not None:
                progress(len(idx))
        return loss_sum, n_sum

    def finish(self) -> None:
        """Nothing to do: the weights are trained in place."""

    def info(self) -> dict[str, Any]:
        """Facts about the training data for the run's report (``fit_info_["training"]``)."""
        return {
            "windows": int(len(self._window)) if self._model is not None else 0,
            "train_windows": self.config.train_windows,
            "truncated_sequences": self.n_truncated,
            "skipped_sequences": self.n_skipped,
            "max_len": self.config.max_len,
        }

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """A deep copy of what resuming needs beyond the model weights: ``optimizer``
        (``torch.optim`` state dict), ``rng`` (the generator's bit-generator state),
        ``epoch`` and ``step`` counters, ``n_truncated``."""
        if self._model is None:
            raise RuntimeError("SASRecStrategy.state_dict called before setup")
        opt = self._opt.state_dict()
        # parameter ids as strings: the state must survive a JSON round trip unchanged
        opt = {
            "state": {str(k): v for k, v in opt["state"].items()},
            "param_groups": opt["param_groups"],
        }
        return copy.deepcopy(
            {
                "optimizer": opt,
                "rng": self._rng.bit_generator.state,
                "epoch": self.epoch,
                "step": self.step,
                "n_truncated": self.n_truncated,
            }
        )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; before ``setup`` it is kept and applied by ``setup``."""
        if self._model is None:
            self._pending = copy.deepcopy(state)
            return
        try:
            opt = copy.deepcopy(state["optimizer"])
            opt["state"] = {int(k): v for k, v in opt["state"].items()}
            self._opt.load_state_dict(opt)
            self._rng.bit_generator.state = copy.deepcopy(state["rng"])
            self.epoch = int(state["epoch"])
            self.step = int(state["step"])
        except (KeyError, ValueError, TypeError) as e:
            raise ArtifactError(f"SASRec training state does not fit this run ({e})") from e


SPEC = ModelSpec(
    name="sasrec",
    config=SASRecConfig,
    task="next-item",
    build=SASRec,
    strategy=lambda model_cfg, objective, train_cfg: SASRecStrategy(model_cfg, train_cfg),
    train_defaults=TRAIN_DEFAULTS,
    example={
        "model": {"max_len": 20, "hidden": 32, "blocks": 1},
        "train": {"epochs": 3, "batch_size": 64, "learning_rate": 0.003},
    },
    planted_recall=(0.8, 1.0),
    summary="SASRec: causal self-attention over the last max_len items (Kang & McAuley 2018)",
)
