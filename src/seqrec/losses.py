"""Pure losses for next-item (and next-basket) training.

Scores of GRU4Rec-style steps are laid out as a (n, M) matrix whose row ``i`` scores the
``M`` output items ``[targets..., extra negatives...]``, so the target of row ``i`` is column
``i`` and the other targets of the mini-batch act as negatives. Negative samplers live in
:mod:`seqrec.sampling`; GRU4Rec's objective config and its merged sampled columns in
:mod:`seqrec.models.gru4rec.objective`.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor


def logq_correction(log_q: Tensor, n_targets: int, alpha: float) -> Tensor:
    """log Q of the M output columns: in-batch targets are drawn by the data (q = popularity),
    extra negatives by the sampler (q = popularity^alpha), as the official code does.

    log_q : (M,) log of the raw item counts of the output columns (precomputed once per
    training run: this runs every step); returns (M,)
    """
    return torch.cat([log_q[:n_targets], alpha * log_q[n_targets:]])


def sampled_cross_entropy(scores: Tensor, *, reduction: Literal["sum", "mean"] = "sum") -> Tensor:
    """Softmax cross-entropy with row ``i``'s target in column ``i``. scores: (n, M)."""
    n = scores.shape[0]
    return F.cross_entropy(scores, torch.arange(n, device=scores.device), reduction=reduction)


def full_cross_entropy(
    scores: Tensor, targets: Tensor, *, reduction: Literal["sum", "mean"] = "sum"
) -> Tensor:
    """Softmax cross-entropy over all items. scores: (n, N) (padding already masked); targets: (n,)."""
    return F.cross_entropy(scores, targets, reduction=reduction)


def bpr_max(scores: Tensor, *, bpreg: float = 1.0, elu_param: float = 0.5) -> Tensor:
    """BPR-max loss (Hidasi & Karatzoglou 2018), summed over rows, target of row i in column i.

    ``-log sum_j s_j sigmoid(r_i - r_j) + bpreg * sum_j s_j r_j^2`` where ``s`` is the softmax
    over the negatives (target column excluded).
    """
    if elu_param > 0:
        scores = F.elu(scores, elu_param)
    n, m = scores.shape
    eye = torch.zeros(n, m, dtype=torch.bool, device=scores.device)
    eye[torch.arange(n), torch.arange(n)] = True
    neg_soft = torch.softmax(scores.masked_fill(eye, float("-inf")), dim=1)  # (n, M), 0 on target
    target = scores.diagonal().unsqueeze(1)  # (n, 1)
    ranking = torch.log((torch.sigmoid(target - scores) * neg_soft).sum(1) + 1e-24)
    reg = (scores * scores * neg_soft).sum(1)
    return (-ranking + bpreg * reg).sum()


def bpr(pos_scores: Tensor, neg_scores: Tensor, *, valid: Tensor | None = None) -> Tensor:
    """Plain BPR: mean of -log sigmoid(pos - neg). pos: (n,), neg: (n,) or (n, k).

    ``valid`` (same shape as ``neg``, bool): only these pairs count (e.g. leave out sampled
    negatives that are positives too); the mean is over them (0 when there is none)."""
    if neg_scores.dim() == 2:
        pos_scores = pos_scores.unsqueeze(1)
    terms = -F.logsigmoid(pos_scores - neg_scores)
    return _masked_mean(terms, valid)


def _masked_mean(terms: Tensor, valid: Tensor | None) -> Tensor:
    if valid is None:
        return terms.mean()
    return (terms * valid).sum() / valid.sum().clamp_min(1)


# ---------------------------------------------------------------- next-basket losses
def margin_ranking(
    pos_scores: Tensor, neg_scores: Tensor, *, margin: float = 1.0, valid: Tensor | None = None
) -> Tensor:
    """Pairwise hinge (``torch.nn.MarginRankingLoss`` with target 1): mean of
    ``max(0, margin - (pos - neg))``. pos: (n,), neg: (n,) or (n, k); ``valid`` as :func:`bpr`."""
    if neg_scores.dim() == 2:
        pos_scores = pos_scores.unsqueeze(1)
    return _masked_mean(F.relu(margin - (pos_scores - neg_scores)), valid)


def multilabel_bce(logits: Tensor, targets: Tensor, *, pos_weight: float = 1.0) -> Tensor:
    """Multi-label binary cross-entropy over every item (``BCEWithLogitsLoss(pos_weight=w)``),
    the mean over all (row, item) cells:
    ``mean_{r,i} [w * y_ri * softplus(-s_ri) + (1 - y_ri) * softplus(s_ri)]``.

    logits, targets: (B, N) (targets 0/1, any dtype); ``pos_weight`` > 0 up-weights the
    positives (the next-basket reference: 10; a basket holds ~10 of ~50k products)."""
    y = targets.to(logits.dtype)
    return (pos_weight * y * F.softplus(-logits) + (1.0 - y) * F.softplus(logits)).mean()


# ---------------------------------------------------------------- SASRec-family losses
# Shapes: ``pos`` (n,) scores of the true next items, ``neg`` (n, k) scores of sampled
# negatives (one row of negatives per position, or the batch's shared negatives broadcast
# to every row), ``hits`` (n, k) bool marks negatives to leave out (accidental hits: the
# negative is the row's target). Every function returns the *sum* over rows.


def bce_negatives(pos: Tensor, neg: Tensor, *, hits: Tensor | None = None) -> Tensor:
    """Binary cross-entropy of each positive against its sampled negatives (SASRec,
    Kang & McAuley 2018, with one negative per position):
    ``sum_i [-log sigmoid(pos_i) - sum_j log(1 - sigmoid(neg_ij))]``."""
    return gbce(pos, neg, beta=1.0, hits=hits)


def gbce_beta(n_negatives: int, n_items: int, t: float) -> float:
    """The positive-score exponent of gBCE (Petrov & Macdonald 2023, gSASRec, eq. 9):
    ``beta = alpha * (t * (1 - 1/alpha) + 1/alpha)`` with the sampling rate
    ``alpha = n_negatives / (n_items - 1)`` (``n_items``: real items, padding excluded).
    ``t = 0`` gives ``beta = 1`` (plain BCE), ``t = 1`` gives ``beta = alpha``."""
    if n_items < 2:
        raise ValueError(f"gBCE needs at least 2 items, got {n_items}")
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"gBCE calibration t must be in [0, 1], got {t}")
    alpha = n_negatives / (n_items - 1)
    return alpha * (t * (1.0 - 1.0 / alpha) + 1.0 / alpha)


def gbce(pos: Tensor, neg: Tensor, *, beta: float, hits: Tensor | None = None) -> Tensor:
    """Generalised binary cross-entropy (gSASRec, Petrov & Macdonald 2023):
    ``sum_i [-log sigmoid(pos_i)^beta - sum_j log(1 - sigmoid(neg_ij))]``
    ``= sum_i [beta * softplus(-pos_i) + sum_j softplus(neg_ij)]`` (see :func:`gbce_beta`)."""
    neg_term = F.softplus(neg)
    if hits is not None:
        neg_term = neg_term.masked_fill(hits, 0.0)
    return beta * F.softplus(-pos).sum() + neg_term.sum()


def sampled_softmax_logq(
    pos: Tensor, neg: Tensor, log_q: Tensor, *, hits: Tensor | None = None
) -> Tensor:
    """Sampled softmax cross-entropy with the logQ correction (Bengio & Senecal 2008;
    Jean et al. 2015; Yi et al. 2019), summed over rows.

    The ``k`` negatives (columns of ``neg``) are drawn with replacement from a proposal
    ``q``; ``log_q`` (k,) or (n, k) holds ``log q_j``. Each negative's logit becomes
    ``neg_ij - log(k q_j)``, so its expected contribution to the softmax denominator is
    that of the full softmax over the non-target items; the positive is always in the
    candidate set and stays uncorrected (Khrylchenko et al. 2025). Loss of row ``i``:
    ``-pos_i + log(exp(pos_i) + sum_j exp(neg_ij - log(k q_j)))``, accidental hits left out.
    """
    import math  # (appended section: imports stay local)

    k = neg.shape[-1]
    corrected = neg - (log_q + math.log(k))
    if hits is not None:
        corrected = corrected.masked_fill(hits, float("-inf"))
    logits = torch.cat([pos.unsqueeze(-1), corrected], dim=-1)  # (n, 1 + k)
    return (torch.logsumexp(logits, dim=-1) - pos).sum()


class _ChunkedFullCE(torch.autograd.Function):
    """Full-softmax cross-entropy of ``hidden @ weight.T`` whose gradients are computed in
    the forward pass, chunk by chunk, so no (n, N) logits matrix outlives its chunk."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        hidden: Tensor,
        weight: Tensor,
        targets: Tensor,
        chunk: int,
        mask_padding: bool,
    ) -> Tensor:
        n = hidden.shape[0]
        grad_h = torch.empty_like(hidden)  # (n, D)
        grad_w = torch.zeros_like(weight)  # (N, D)
        total = torch.zeros((), dtype=torch.float64, device=hidden.device)
        for a in range(0, n, chunk):
            h = hidden[a : a + chunk]  # (c, D)
            t = targets[a : a + chunk]  # (c,)
            logits = h @ weight.t()  # (c, N)
            if mask_padding:
                logits[:, 0] = float("-inf")
            lse = torch.logsumexp(logits, dim=1)  # (c,)
            total += (lse - logits.gather(1, t.unsqueeze(1)).squeeze(1)).sum().double()
            p = logits.sub_(lse.unsqueeze(1)).exp_()  # softmax, in place
            p[torch.arange(len(t), device=p.device), t] -= 1.0  # d loss / d logits
            torch.mm(p, weight, out=grad_h[a : a + chunk])
            grad_w.addmm_(p.t(), h)
        ctx.save_for_backward(grad_h, grad_w)
        return total.to(hidden.dtype)

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx, grad_out: Tensor
    ) -> tuple[Tensor | None, ...]:
        grad_h, grad_w = ctx.saved_tensors  # type: ignore[attr-defined]
        return grad_h * grad_out, grad_w * grad_out, None, None, None


def chunked_full_cross_entropy(
    hidden: Tensor,
    weight: Tensor,
    targets: Tensor,
    *,
    chunk_elements: int = 1 << 23,
    mask_padding: bool = True,
) -> Tensor:
    """Full-softmax cross-entropy over all items, summed over rows, without materialising
    the (n, N) logits at once (Klenitskiy & Vasilev 2023 train SASRec with this loss).

    ``hidden`` (n, D) representations, ``weight`` (N, D) output item table (scores =
    ``hidden @ weight.T``), ``targets`` (n,). Rows are processed in chunks of at most
    ``chunk_elements`` logits; the gradients are computed in the same pass (softmax minus
    one-hot), so peak memory is one chunk plus the gradients of the inputs. Column 0
    (padding) is excluded when ``mask_padding``. Differentiable once (no double backward).
    """
    n_items = weight.shape[0]
    chunk = max(1, chunk_elements // max(n_items, 1))
    return _ChunkedFullCE.apply(hidden, weight, targets, chunk, mask_padding)
