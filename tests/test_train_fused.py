import pytest
import torch

from seqrec.losses import full_cross_entropy, sampled_cross_entropy
from seqrec.models import GRU4Rec, GRU4RecConfig
from seqrec.train import fused_gru_ce_step


@pytest.mark.parametrize("constrained", [True, False])
@pytest.mark.parametrize("full", [False, True])
def test_fused_step_matches_autograd(constrained, full):
    torch.manual_seed(0)
    cfg = GRU4RecConfig(
        layers=[8], constrained_embedding=constrained, embedding_dim=0 if constrained else 5
    )
    m = GRU4Rec(cfg, 20)
    n, M = 4, 20 if full else 11
    xe = torch.randn(n, 8 if constrained else 5, requires_grad=True)
    h = torch.randn(n, 8)
    O = torch.randn(M, 8, requires_grad=True)
    b = torch.randn(M, requires_grad=True)
    corr = None if full else torch.rand(M)
    tgt = torch.randint(0, M, (n,)) if full else None
    # autograd reference
    hid = [h.clone()]
    out = m.step(xe, hid)
    R = torch.addmm(b, out, O.t())
    if corr is not None:
        R = R - corr
    loss = (full_cross_entropy(R, tgt) if full else sampled_cross_entropy(R)) / 7.0
    loss.backward()
    ref = {k: p.grad.clone() for k, p in m.cells[0].named_parameters()}
    for p in m.parameters():
        p.grad = None
    got_loss, d_x, d_o, d_b, new_h = fused_gru_ce_step(
        m, xe.detach(), h, O.detach(), b.detach(), corr, tgt, 7.0
    )
    assert torch.allclose(got_loss, loss.detach(), atol=1e-6)
    assert torch.allclose(d_x, xe.grad, atol=1e-6)
    assert torch.allclose(d_o, O.grad, atol=1e-6)
    assert torch.allclose(d_b, b.grad, atol=1e-6)
    assert torch.allclose(new_h, out.detach(), atol=1e-6)
    for k, p in m.cells[0].named_parameters():
        assert torch.allclose(p.grad, ref[k], atol=1e-6), k


def test_fused_dropout_scales_like_inverted_dropout():
    torch.manual_seed(0)
    m = GRU4Rec(GRU4RecConfig(layers=[6], dropout_hidden=0.5), 70)
    h = torch.zeros(64, 6)
    _, _, _, _, out = fused_gru_ce_step(
        m, torch.randn(64, 6), h, torch.randn(70, 6), torch.zeros(70), None, None, 1.0
    )
    zero_frac = (out == 0).float().mean().item()
    assert 0.35 < zero_frac < 0.65
