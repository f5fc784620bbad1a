"""Losses and regularizers against independent computations (finite differences, explicit Jacobians)."""
import math

import numpy as np
import torch

from lead_hsr.gan import loss as L
from lead_hsr.gan.ada import augment
from lead_hsr.gan.training import ADAM_BETAS, ema_beta, make_adam, update_ema


class TinyD(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(3 * 4 * 4, 5).double()
        self.b = torch.nn.Linear(5, 1).double()

    def forward(self, x):
        return self.b(torch.tanh(self.a(x.flatten(1))))


def _finite_difference_grad(fn, x, eps=1e-6):
    g = torch.zeros_like(x)
    flat, gflat = x.view(-1), g.view(-1)
    for i in range(flat.numel()):
        old = flat[i].item()
        flat[i] = old + eps
        hi = fn(x).item()
        flat[i] = old - eps
        lo = fn(x).item()
        flat[i] = old
        gflat[i] = (hi - lo) / (2 * eps)
    return g


def test_nonsaturating_and_logistic_losses_match_formulas():
    fake, real = torch.tensor([[-1.0], [2.0]]), torch.tensor([[0.5], [-3.0]])
    sig = torch.sigmoid
    expected_g = -torch.log(sig(fake)).mean()
    expected_d = -torch.log(1 - sig(fake)).mean() - torch.log(sig(real)).mean()
    torch.testing.assert_close(L.g_nonsaturating_loss(fake), expected_g)
    torch.testing.assert_close(L.d_logistic_loss(real, fake), expected_d)


def test_r1_penalty_matches_finite_differences_and_has_param_gradients():
    torch.manual_seed(0)
    D = TinyD()
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    r1 = L.r1_penalty(x, D(x))
    for n in range(2):
        xn = x[n:n + 1].detach().clone()
        g = _finite_difference_grad(lambda t: D(t).sum(), xn)
        np.testing.assert_allclose(r1[n].item(), g.square().sum().item(), rtol=1e-6)
    r1.sum().backward()
    assert D.a.weight.grad is not None and D.a.weight.grad.abs().sum() > 0


def test_r1_through_ada_double_backward_matches_finite_differences():
    torch.manual_seed(1)
    D = TinyD()
    x = torch.randn(1, 3, 4, 4, dtype=torch.float64, requires_grad=True)

    def d_of_aug(t):
        torch.manual_seed(123)           # the same augmentation for every evaluation
        return D(augment(t, p=1.0)).sum()

    torch.manual_seed(123)
    r1 = L.r1_penalty(x, D(augment(x, p=1.0)))
    g = _finite_difference_grad(d_of_aug, x.detach().clone())
    np.testing.assert_allclose(r1.item(), g.square().sum().item(), rtol=1e-5)
    r1.sum().backward()                  # grid_sample double backward
    assert torch.isfinite(D.a.weight.grad).all() and D.a.weight.grad.abs().sum() > 0


def test_path_length_matches_explicit_jacobian():
    torch.manual_seed(2)
    n, num_ws, w_dim, h = 2, 3, 4, 4
    A = torch.randn(num_ws * w_dim, 3 * h * h, dtype=torch.float64)

    def synth(ws):
        return torch.tanh(ws.flatten(1) @ A).view(-1, 3, h, h)

    ws = torch.randn(n, num_ws, w_dim, dtype=torch.float64, requires_grad=True)
    img = synth(ws)
    noise = torch.randn_like(img)
    ours = L.path_length(img, ws, noise)
    for i in range(n):
        J = torch.autograd.functional.jacobian(lambda w: synth(w[None])[0], ws[i].detach())  # [3,h,h,num_ws,w]
        y = noise[i] / math.sqrt(h * h)
        jty = torch.einsum("chw,chwnd->nd", y, J)
        expected = jty.square().sum(dim=1).mean().sqrt()
        torch.testing.assert_close(ours[i], expected)


def test_path_length_penalty_uses_decayed_running_mean():
    state = L.PathLengthState(decay=0.01)
    lengths = torch.tensor([1.0, 3.0])
    penalty = state.penalty(lengths)
    torch.testing.assert_close(state.pl_mean, torch.tensor(0.02))
    torch.testing.assert_close(penalty, (lengths - 0.02) ** 2)


def test_ema_half_life_is_ema_kimg():
    batch, ema_kimg = 8, 0.4
    steps = int(ema_kimg * 1000 / batch)
    beta = ema_beta(batch, cur_nimg=10 ** 9, ema_kimg=ema_kimg, ema_rampup=None)
    assert math.isclose(beta ** steps, 0.5, rel_tol=1e-9)
    G, G_ema = torch.nn.Linear(1, 1, bias=False), torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        G.weight.fill_(1.0)
        G_ema.weight.fill_(0.0)
    for _ in range(steps):
        update_ema(G_ema, G, beta)
    assert math.isclose(G_ema.weight.item(), 0.5, rel_tol=1e-5)  # old value (0) keeps weight 0.5


def test_ema_rampup_limits_half_life_early():
    early = ema_beta(16, cur_nimg=160, ema_kimg=10, ema_rampup=0.05)
    assert math.isclose(early, 0.5 ** (16 / 8.0))
    assert ema_beta(16, 10 ** 9, 10, 0.05) == ema_beta(16, 10 ** 9, 10, None)


def test_lazy_regularization_scales_adam():
    p = [torch.nn.Parameter(torch.zeros(1))]
    opt = make_adam(p, lr=0.002, reg_interval=16)
    group = opt.param_groups[0]
    assert math.isclose(group["lr"], 0.002 * 16 / 17)
    assert group["betas"] == (0.0, ADAM_BETAS[1] ** (16 / 17)) and group["eps"] == 1e-8


def test_style_mixing_switches_ws_after_a_cutoff():
    from lead_hsr.gan.networks import build_networks
    torch.manual_seed(3)
    G, _ = build_networks("demo")
    G.eval()
    z = torch.randn(2, G.z_dim)
    unmixed = G.mapping(z)
    torch.manual_seed(4)
    mixed = L.mix_styles(G, z, prob=1.0)
    same = [torch.allclose(mixed[:, i], unmixed[:, i]) for i in range(G.num_ws)]
    cutoff = same.index(False)
    assert cutoff >= 1 and all(same[:cutoff]) and not any(same[cutoff:])
    torch.testing.assert_close(L.mix_styles(G, z, prob=0.0), unmixed)
