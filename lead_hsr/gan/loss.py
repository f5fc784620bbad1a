"""StyleGAN2-ADA losses: non-saturating logistic loss, R1 penalty, path-length regularization, style mixing.

Facts (StyleGAN2-ADA paper/code, DESIGN section 6): G loss softplus(-D(G(z))); D loss softplus(D(G(z))) +
softplus(-D(x)); R1 = gamma/2 * ||grad_x D(x)||^2 on (augmented) reals; path length = ||J_w^T y||, y ~ N(0, I)/
sqrt(H*W), penalty (length - running mean)^2 with the mean decayed by `pl_decay`; style mixing with probability 0.9.

Every function follows StyleGAN2-ADA's training/loss.py to the order of its random draws and operations (checked
step for step against it: bench/compare_stylegan2_step.py), so the same seed gives the same step on both sides.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def g_nonsaturating_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake_logits).mean()


def d_logistic_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()


def r1_penalty(real_img: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
    """Per-sample ||d sum(D) / d x||^2, with a graph so the penalty can be minimised (double backward).

    `real_img` must have requires_grad=True and `real_logits` must be computed from it."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real_img, create_graph=True)
    return grad.square().sum(dim=[1, 2, 3])


def path_length(img: torch.Tensor, ws: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Per-sample ||J_w^T y||: y = noise / sqrt(H*W), summed over w_dim and averaged over the num_ws copies."""
    h, w = img.shape[2], img.shape[3]
    (grad,) = torch.autograd.grad((img * (noise / math.sqrt(h * w))).sum(), ws, create_graph=True)
    return grad.square().sum(dim=2).mean(dim=1).sqrt()


class PathLengthState(torch.nn.Module):
    """The running mean of path lengths (a buffer, so it is checkpointed with state_dict)."""

    def __init__(self, decay: float):
        super().__init__()
        self.decay = decay
        self.register_buffer("pl_mean", torch.zeros([]))

    def penalty(self, lengths: torch.Tensor) -> torch.Tensor:
        """(length - mean)^2 with the updated running mean. As in the official loss, the new mean is not detached:
        its `decay` share of this batch's mean length carries gradient too."""
        mean = self.pl_mean.lerp(lengths.mean(), self.decay)
        self.pl_mean.copy_(mean.detach())
        return (lengths - mean).square()


def mix_styles(G, z: torch.Tensor, prob: float) -> torch.Tensor:
    """ws for z; with probability `prob` the layers from a random cutoff on use the ws of a second z.

    The draws are the official run_G's, in its order (a cutoff in [1, num_ws), then the coin, then the second z;
    all three on every call with prob > 0): the same seed mixes the same way on both sides."""
    ws = G.mapping(z, update_w_avg=G.training)
    if prob > 0:
        cutoff = torch.empty([], dtype=torch.int64, device=ws.device).random_(1, ws.shape[1])
        mixing = bool(torch.rand([], device=ws.device) < prob)
        z2 = torch.randn_like(z)
        if mixing:
            ws2 = G.mapping(z2, update_w_avg=False)
            ws = torch.cat([ws[:, :int(cutoff)], ws2[:, int(cutoff):]], dim=1)
    return ws
