"""ADA ('bgc' pipeline) with an adaptive probability p (Karras et al., "Training Generative Adversarial Networks
with Limited Data", NeurIPS 2020).

Facts from that paper (Sec. 2-3, App. B): 'bgc' = blit (xflip, rotate90, integer translation) + general geometric
(isotropic scale, pre-rotation, anisotropic scale, post-rotation, fractional translation) + colour (brightness,
contrast, luma flip, hue rotation, saturation). Each transform is applied per sample with probability p (the two
rotations with 1 - sqrt(1 - p) so that some rotation happens with ~p). p follows r_t = E[sign(D(real))]: every
`interval` iterations p += sign(r_t - target) * (batch * interval) / (speed_kimg * 1000), target 0.6, speed such that
p can go 0 -> 1 in 500 kimg.

Implementation choice: all geometric transforms are composed into one affine matrix per sample and applied with
F.grid_sample (bilinear, reflection padding). Unlike the official code we do not upsample 2x around the warp (less
anti-aliasing), but grid_sample supports double backward, so R1 through ADA works (tested).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

ADA_TARGET = 0.6        # target for r_t = E[sign(D(real))]
ADA_INTERVAL = 4        # adjust p every 4 iterations
ADA_KIMG = 500          # p can go 0 -> 1 in 500 kimg
# Strengths of the 'bgc' transforms (ADA paper, App. B / official AugmentPipe defaults).
XINT_MAX = 0.125        # integer translation, fraction of image size
SCALE_STD = 0.2         # log2 std of isotropic scaling
ROTATE_MAX = 1.0        # rotation range, fraction of a half-turn
ANISO_STD = 0.2         # log2 std of anisotropic scaling
XFRAC_STD = 0.125       # fractional translation std, fraction of image size
BRIGHTNESS_STD = 0.2
CONTRAST_STD = 0.5      # log2 std
HUE_MAX = 1.0           # fraction of a half-turn
SATURATION_STD = 1.0    # log2 std
LUMA_AXIS = (1.0, 1.0, 1.0)  # hue rotation / luma flip / saturation act around the grey axis


def _eye(n: int, size: int, device) -> torch.Tensor:
    return torch.eye(size, device=device).repeat(n, 1, 1)


def _with_prob(p: float, n: int, device) -> torch.Tensor:
    """Per-sample Bernoulli(p) mask, as float [n]."""
    return (torch.rand(n, device=device) < p).float()


def _translate2d(tx, ty):
    m = _eye(tx.shape[0], 3, tx.device)
    m[:, 0, 2], m[:, 1, 2] = tx, ty
    return m


def _scale2d(sx, sy):
    m = _eye(sx.shape[0], 3, sx.device)
    m[:, 0, 0], m[:, 1, 1] = sx, sy
    return m


def _rotate2d(theta):
    m = _eye(theta.shape[0], 3, theta.device)
    c, s = torch.cos(theta), torch.sin(theta)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = c, -s, s, c
    return m


def geometric_matrix(n: int, p: float, size: int, device) -> torch.Tensor:
    """Per-sample 3x3 forward transforms in normalised [-1, 1] coordinates (image side = 2 units, `size` px)."""
    m = _eye(n, 3, device)
    p_rot = 1 - math.sqrt(1 - min(p, 1.0))
    # xflip
    i = torch.floor(torch.rand(n, device=device) * 2) * _with_prob(p, n, device)
    m = _scale2d(1 - 2 * i, torch.ones_like(i)) @ m
    # rotate90
    i = torch.floor(torch.rand(n, device=device) * 4) * _with_prob(p, n, device)
    m = _rotate2d(-math.pi / 2 * i) @ m
    # integer translation: a fraction of the image size, rounded to whole pixels
    t = (torch.rand(n, 2, device=device) * 2 - 1) * XINT_MAX * _with_prob(p, n, device)[:, None]
    t = torch.round(t * size) / size
    m = _translate2d(2 * t[:, 0], 2 * t[:, 1]) @ m
    # isotropic scale
    s = torch.exp2(torch.randn(n, device=device) * SCALE_STD * _with_prob(p, n, device))
    m = _scale2d(s, s) @ m
    # pre-rotation
    r = (torch.rand(n, device=device) * 2 - 1) * math.pi * ROTATE_MAX * _with_prob(p_rot, n, device)
    m = _rotate2d(r) @ m
    # anisotropic scale
    s = torch.exp2(torch.randn(n, device=device) * ANISO_STD * _with_prob(p, n, device))
    m = _scale2d(s, 1 / s) @ m
    # post-rotation
    r = (torch.rand(n, device=device) * 2 - 1) * math.pi * ROTATE_MAX * _with_prob(p_rot, n, device)
    m = _rotate2d(r) @ m
    # fractional translation
    t = torch.randn(n, 2, device=device) * XFRAC_STD * _with_prob(p, n, device)[:, None]
    return _translate2d(2 * t[:, 0], 2 * t[:, 1]) @ m


def color_matrix(n: int, p: float, device) -> torch.Tensor:
    """Per-sample 4x4 affine colour transforms acting on (r, g, b, 1) with values in [-1, 1]."""
    v = torch.tensor(LUMA_AXIS, device=device) / math.sqrt(3)
    vv = torch.outer(v, v)
    eye3 = torch.eye(3, device=device)
    c = _eye(n, 4, device)

    def lin(a3):  # embed [n,3,3] linear parts into 4x4
        out = _eye(n, 4, device)
        out[:, :3, :3] = a3
        return out

    b = torch.randn(n, device=device) * BRIGHTNESS_STD * _with_prob(p, n, device)
    t = _eye(n, 4, device)
    t[:, :3, 3] = b[:, None]
    c = t @ c
    k = torch.exp2(torch.randn(n, device=device) * CONTRAST_STD * _with_prob(p, n, device))
    c = lin(eye3 * k[:, None, None]) @ c
    i = torch.floor(torch.rand(n, device=device) * 2) * _with_prob(p, n, device)
    c = lin(eye3 - 2 * vv * i[:, None, None]) @ c
    theta = (torch.rand(n, device=device) * 2 - 1) * math.pi * HUE_MAX * _with_prob(p, n, device)
    c = lin(_rotation_about_axis(v, theta)) @ c
    s = torch.exp2(torch.randn(n, device=device) * SATURATION_STD * _with_prob(p, n, device))
    c = lin(vv + (eye3 - vv) * s[:, None, None]) @ c
    return c


def _rotation_about_axis(v: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula: rotation by theta [n] around unit axis v [3]."""
    k = torch.tensor([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]], device=v.device)
    eye3 = torch.eye(3, device=v.device)
    s, c = torch.sin(theta)[:, None, None], torch.cos(theta)[:, None, None]
    return eye3 + s * k + (1 - c) * (k @ k)


def augment(img: torch.Tensor, p: float) -> torch.Tensor:
    """Apply the 'bgc' pipeline with probability p per transform; differentiable (twice) w.r.t. img."""
    if p <= 0:
        return img
    n, _, h, w = img.shape
    geo = geometric_matrix(n, p, w, img.device)
    # grid_sample looks up, for each output pixel, where it came from: use the inverse transform.
    theta = torch.linalg.inv(geo)[:, :2, :].to(img.dtype)
    grid = F.affine_grid(theta, list(img.shape), align_corners=False)
    img = F.grid_sample(img, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    col = color_matrix(n, p, img.device).to(img.dtype)
    flat = img.reshape(n, 3, h * w)
    flat = col[:, :3, :3] @ flat + col[:, :3, 3:]
    return flat.reshape(n, 3, h, w)


class AdaptiveAugment(nn.Module):
    """Holds p (a buffer, checkpointed) and the sign statistics of D on reals; adjusts p every `interval` steps."""

    def __init__(self, enabled: bool = True, target: float = ADA_TARGET, interval: int = ADA_INTERVAL,
                 speed_kimg: float = ADA_KIMG, initial_p: float = 0.0):
        super().__init__()
        self.enabled, self.target, self.interval, self.speed_kimg = enabled, target, interval, speed_kimg
        self.register_buffer("p", torch.tensor(float(initial_p) if enabled else 0.0))
        self.register_buffer("sign_sum", torch.zeros([]))
        self.register_buffer("sign_count", torch.zeros([]))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return augment(img, float(self.p)) if self.enabled else img

    def accumulate(self, real_logits: torch.Tensor) -> None:
        self.sign_sum += torch.sign(real_logits.detach()).sum().to(self.sign_sum.device)
        self.sign_count += real_logits.numel()

    def maybe_adjust(self, step: int, batch_size: int) -> None:
        """Every `interval` steps: move p toward keeping E[sign(D(real))] at the target."""
        if not self.enabled or (step + 1) % self.interval:
            return
        stats = torch.stack([self.sign_sum, self.sign_count])
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            stats = stats.to(self.p.device)
            torch.distributed.all_reduce(stats)       # every process sees the global r_t
        if stats[1] == 0:
            return
        rt = stats[0] / stats[1]
        adjust = torch.sign(rt - self.target) * (batch_size * self.interval) / (self.speed_kimg * 1000)
        self.p.copy_((self.p + adjust).clamp(0.0, 1.0))
        self.sign_sum.zero_()
        self.sign_count.zero_()
