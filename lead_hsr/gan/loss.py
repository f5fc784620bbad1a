"""StyleGAN2-ADA losses: non-saturating logistic loss, R1 penalty, path-length regularization, style mixing.

Facts (StyleGAN2-ADA paper/code, DESIGN section 6): G loss softplus(-D(G(z))); D loss softplus(D(G(z))) +
softplus(-D(x)); R1 = gamma/2 * ||grad_x D(x)||^2 on (augmented) reals; path length = ||J_w^T y||, y ~ N(0, I)/
sqrt(H*W), penalty (length - running mean)^2 with the mean decayed by `pl_decay`; style mixing with probability 0.9.
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
    (grad,) = torch.autograd.grad((img * noise / math.sqrt(h * w)).sum(), ws, create_graph=True)
    return grad.square().sum(dim=2).mean(dim=1).sqrt()


class PathLengthState(torch.nn.Module):
    """The running mean of path lengths (a buffer, so it is checkpointed with state_dict)."""

    def __init__(self, decay: float):
        super().__init__()
        self.decay = decay
        self.register_buffer("pl_mean", torch.zeros([]))

    def penalty(self, lengths: torch.Tensor) -> torch.Tensor:
        mean = self.pl_mean.lerp(lengths.mean().detach(), self.decay)
        self.pl_mean.copy_(mean.detach())
        return (lengths - mean).square()


def mix_styles(G, z: torch.Tensor, prob: float, generator_fn=torch.randn) -> torch.Tensor:
    """ws for z; with probability `prob` the layers from a random cutoff on use the ws of a second z."""
    ws = G.mapping(z, update_w_avg=G.training)
    if prob > 0 and torch.rand([]).item() < prob:
        cutoff = int(torch.randint(1, ws.shape[1], []).item())
        ws2 = G.mapping(generator_fn(z.shape, device=z.device), update_w_avg=False)
        ws = torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)
    return ws
