"""ADA: the 'bgc' augmentation pipeline with an adaptive probability p (Karras et al., "Training Generative
Adversarial Networks with Limited Data", NeurIPS 2020), behaving as the official StyleGAN2-ADA `AugmentPipe`
(training/augment.py) and its p heuristic (training/training_loop.py).

Facts from that paper (Sec. 2-3, App. B) and the official code:
- 'bgc' = blit (xflip, rotate90, integer translation) + general geometric (isotropic scale, pre-rotation,
  anisotropic scale, post-rotation, fractional translation) + colour (brightness, contrast, luma flip, hue rotation,
  saturation). Each transform is applied per sample with probability p (times its multiplier, 1 in 'bgc'); the two
  rotations with 1 - sqrt(1 - p) each, so that some rotation happens with probability p.
- Random draws: per transform, first the values, then the Bernoulli(p) mask, for all geometric transforms in the
  order above, then all colour transforms. The draws are made even at p = 0 (a pipe that is on always draws).
  Ours draws the same tensors with the same shapes in the same order and dtype (the default dtype), so with the
  same torch RNG state both pipes get identical parameters (`bench/compare_ada.py` checks it); `draw_geometry` /
  `draw_color` + `apply_geometry` / `apply_color` also let a caller inject parameters.
- Geometry: inverse homogeneous 3x3 matrices in pixel coordinates centred on the image (x right, y down), composed
  as the official code does; executed by reflect-padding the image to cover the transformed corners (plus the
  filter's support), upsampling 2x with the sym6 wavelet low-pass, one bilinear `grid_sample` (zeros padding,
  align_corners=False) with the inverse matrix, downsampling 2x with the same filter (correlation) and cropping.
  The up/down pair is an orthogonal wavelet's synthesis/analysis pair, so the identity transform and whole-pixel
  shifts reproduce the pixels exactly up to float rounding (with reflection at the borders). Flips and quarter
  turns do not: sym6 is not linear-phase, so a mirrored image goes through the pair with the filter's phase
  reversed (about 0.04 off on a smooth image in [-1, 1], up to ~0.5 on white noise) - a property of the official
  pipe that ours reproduces.
- Colour: a 4x4 matrix on homogeneous RGB (values in [-1, 1]), luma axis (1, 1, 1) / sqrt(3).
- p: every `interval` iterations, p += sign(r_t - target) * batch * interval / (speed_kimg * 1000), r_t = mean of
  sign(D(real)) over every D evaluation on reals since the last adjustment (the official loss reports it in both
  the D main and the R1 phase); p is clamped at 0 and NOT at 1 (training_loop.py: `max(p + adjust, 0)`); a p above 1
  applies every transform (the rotations included: their probability is clamped).

R1 through ADA works: every op here (reflect pad, transposed/strided convs, grid_sample) has a double backward
(tested with gradgradcheck in float64). Geometry and colour run in float32 (float64 for float64 input) with
autocast off, and the result is cast back to the input's dtype.
"""
from __future__ import annotations

import contextlib
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from lead_hsr.gan.layers import fir, upsample2x

ADA_TARGET = 0.6        # target for r_t = E[sign(D(real))]
ADA_INTERVAL = 4        # adjust p every 4 iterations
ADA_KIMG = 500          # p can go 0 -> 1 in 500 kimg
# Strengths of the 'bgc' transforms (ADA paper, App. B / official AugmentPipe defaults).
XINT_MAX = 0.125        # integer translation range, fraction of image size
SCALE_STD = 0.2         # log2 std of isotropic scaling
ROTATE_MAX = 1.0        # rotation range, fraction of a half-turn (theta uniform in [-pi, pi])
ANISO_STD = 0.2         # log2 std of anisotropic scaling
XFRAC_STD = 0.125       # fractional translation std, fraction of image size
BRIGHTNESS_STD = 0.2
CONTRAST_STD = 0.5      # log2 std
HUE_MAX = 1.0           # fraction of a half-turn
SATURATION_STD = 1.0    # log2 std
LUMA_AXIS = (1.0, 1.0, 1.0, 0.0)  # hue rotation / luma flip / saturation act around the grey axis (homogeneous)

# Symlet-6 ("sym6", Daubechies' least-asymmetric orthogonal wavelet with 6 vanishing moments) low-pass
# decomposition filter, as tabulated by PyWavelets (`pywt.Wavelet('sym6').dec_lo`) and used by the official
# AugmentPipe for its geometric resampling. Published constant; tests check its defining properties (sum sqrt(2),
# orthonormal to its even shifts, 6 vanishing moments of the matching high-pass).
SYM6_TAPS = (0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
             0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
             -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148)

# How the geometric transforms are executed. "official": the AugmentPipe's 2x sym6 path (default). "single_warp":
# one bilinear warp of the image with reflection padding (what this module did before; same parameters and colour):
# a measured CPU speed option, not the official behaviour (bench/compare_ada.py, 1 CPU thread: the official path's
# ADA calls cost ~5x the single warp's per step at 8x3x32x32, a demo GAN step is ~1.2x slower with it, and ~30x at
# 16x3x256x256, where padding + 2x upsampling handle up to 3x the image side).
GEOMETRY = ("official", "single_warp")

# The transforms of each group, in draw order, and the probability multipliers of the 'bgc' pipe.
GROUPS = {"b": ("xflip", "rotate90", "xint"),
          "g": ("scale", "rotate", "aniso", "xfrac"),
          "c": ("brightness", "contrast", "lumaflip", "hue", "saturation")}
GEOMETRIC = GROUPS["b"] + GROUPS["g"]
COLOR = GROUPS["c"]


def pipe_multipliers(groups: str = "bgc", **overrides: float) -> dict[str, float]:
    """Probability multipliers of every transform: 1 for those in `groups` ('b', 'g', 'c'), 0 otherwise, then
    `overrides` (e.g. pipe_multipliers("", xflip=1) = an x-flip-only pipe)."""
    unknown = set(groups) - set(GROUPS) | set(overrides) - set(GEOMETRIC + COLOR)
    if unknown:
        raise ValueError(f"unknown ADA groups/transforms {sorted(unknown)}; expected groups from 'bgc' and "
                         f"transforms from {GEOMETRIC + COLOR}")
    probs = {name: float(g in groups) for g, names in GROUPS.items() for name in names}
    probs.update({k: float(v) for k, v in overrides.items()})
    return probs


BGC = pipe_multipliers("bgc")


def sym6_filter(device=None, dtype=torch.float64) -> torch.Tensor:
    """The 1-D (separable) sym6 low-pass normalised to sum 1, for `layers.upsample2x` / `layers.fir`."""
    f = torch.tensor(SYM6_TAPS, dtype=torch.float64)
    return (f / f.sum()).to(device=device, dtype=dtype)


# ---------------------------------------------------------------------------------------------- matrices
def _matrix(rows, like: torch.Tensor | None) -> torch.Tensor:
    """Homogeneous matrix from nested rows of scalars / [n] (or [n,1,1]) tensors: [n, k, k], or [k, k] when `like`
    is None (all scalars). Default dtype, as every draw."""
    if like is None:
        return torch.tensor(rows, dtype=torch.get_default_dtype())
    like = like.reshape(-1)
    elems = [e.reshape(-1) if torch.is_tensor(e) else torch.full_like(like, e) for row in rows for e in row]
    return torch.stack(elems, dim=-1).reshape(like.shape[0], len(rows), len(rows))


def _translate2d(tx, ty):
    t = tx if torch.is_tensor(tx) else None
    return _matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]], t)


def _scale2d(sx, sy):
    t = sx if torch.is_tensor(sx) else None
    return _matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], t)


def _rotate2d(theta):
    return _matrix([[torch.cos(theta), torch.sin(-theta), 0], [torch.sin(theta), torch.cos(theta), 0], [0, 0, 1]],
                   theta)


def _translate3d(t):
    return _matrix([[1, 0, 0, t], [0, 1, 0, t], [0, 0, 1, t], [0, 0, 0, 1]], t)


def _scale3d(s):
    return _matrix([[s, 0, 0, 0], [0, s, 0, 0], [0, 0, s, 0], [0, 0, 0, 1]], s)


def _rotate3d(v: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Rotation by theta [n] around the unit axis v (homogeneous [4], v[3] = 0): (1 - cos) v v^T + cos I + sin [v]x,
    with [3, 3] = 1."""
    vx, vy, vz = v[0], v[1], v[2]
    zero = torch.zeros_like(vx)
    cross = torch.stack([torch.stack(r) for r in [[zero, -vz, vy, zero], [vz, zero, -vx, zero], [-vy, vx, zero, zero],
                                                  [zero, zero, zero, zero]]])
    diag = torch.diag(torch.tensor([1, 1, 1, 0], dtype=v.dtype, device=v.device))
    s, c = torch.sin(theta)[:, None, None], torch.cos(theta)[:, None, None]
    m = torch.outer(v, v) * (1 - c) + c * diag + s * cross
    m[:, 3, 3] = 1
    return m


def _draw(shape, value: torch.Tensor, prob: float, p: float, default: float) -> torch.Tensor:
    """`value` where a uniform draw is below prob * p (drawn after the value, as the official pipe), else default."""
    keep = torch.rand(shape, device=value.device) < prob * p
    return torch.where(keep, value, torch.full_like(value, default))


def draw_geometry(n: int, height: int, width: int, p: float, probs: dict = BGC, device=None) -> torch.Tensor | None:
    """Per-sample inverse transforms G_inv [n, 3, 3] (default dtype) in pixel coordinates centred on the image:
    G_inv @ (output pixel, 1) = the input pixel it samples. None when no geometric transform is enabled (no draws).
    Draw order, distributions and composition are the official AugmentPipe's."""
    if not any(probs[k] > 0 for k in GEOMETRIC):
        return None
    g = torch.eye(3, device=device)
    if probs["xflip"] > 0:
        i = _draw([n], torch.floor(torch.rand([n], device=device) * 2), probs["xflip"], p, 0)
        g = g @ _scale2d(1 / (1 - 2 * i), 1.0)
    if probs["rotate90"] > 0:
        i = _draw([n], torch.floor(torch.rand([n], device=device) * 4), probs["rotate90"], p, 0)
        g = g @ _rotate2d(-(-math.pi / 2 * i))
    if probs["xint"] > 0:
        t = _draw([n, 1], (torch.rand([n, 2], device=device) * 2 - 1) * XINT_MAX, probs["xint"], p, 0)
        g = g @ _translate2d(-torch.round(t[:, 0] * width), -torch.round(t[:, 1] * height))
    if probs["scale"] > 0:
        s = _draw([n], torch.exp2(torch.randn([n], device=device) * SCALE_STD), probs["scale"], p, 1)
        g = g @ _scale2d(1 / s, 1 / s)
    # P(pre or post rotation) = rotate * p; computed as a default-dtype tensor like the official (p may exceed 1).
    p_rot = 1 - torch.sqrt(torch.as_tensor(1 - probs["rotate"] * p, dtype=torch.get_default_dtype()).clamp(0, 1))
    if probs["rotate"] > 0:
        theta = _draw([n], (torch.rand([n], device=device) * 2 - 1) * math.pi * ROTATE_MAX, 1.0, p_rot, 0)
        g = g @ _rotate2d(theta)          # before the anisotropic scaling
    if probs["aniso"] > 0:
        s = _draw([n], torch.exp2(torch.randn([n], device=device) * ANISO_STD), probs["aniso"], p, 1)
        g = g @ _scale2d(1 / s, 1 / (1 / s))   # the inverse of scale(s, 1/s), rounded as the official code does
    if probs["rotate"] > 0:
        theta = _draw([n], (torch.rand([n], device=device) * 2 - 1) * math.pi * ROTATE_MAX, 1.0, p_rot, 0)
        g = g @ _rotate2d(theta)          # after the anisotropic scaling
    if probs["xfrac"] > 0:
        t = _draw([n, 1], torch.randn([n, 2], device=device) * XFRAC_STD, probs["xfrac"], p, 0)
        g = g @ _translate2d(-(t[:, 0] * width), -(t[:, 1] * height))
    return g


def draw_color(n: int, p: float, probs: dict = BGC, channels: int = 3, device=None) -> torch.Tensor | None:
    """Per-sample 4x4 colour transforms C (default dtype) acting on (r, g, b, 1): C @ colour_in = colour_out. None
    when no colour transform is enabled. Hue and saturation are not drawn for 1-channel images (official)."""
    enabled = [k for k in COLOR if probs[k] > 0 and (channels > 1 or k not in ("hue", "saturation"))]
    if not enabled:
        return None
    eye4 = torch.eye(4, device=device)
    c = eye4
    if probs["brightness"] > 0:
        b = _draw([n], torch.randn([n], device=device) * BRIGHTNESS_STD, probs["brightness"], p, 0)
        c = _translate3d(b) @ c
    if probs["contrast"] > 0:
        k = _draw([n], torch.exp2(torch.randn([n], device=device) * CONTRAST_STD), probs["contrast"], p, 1)
        c = _scale3d(k) @ c
    v = (torch.tensor(LUMA_AXIS, dtype=torch.float64) / math.sqrt(3)).to(torch.get_default_dtype()).to(device)
    vv = torch.outer(v, v)
    if probs["lumaflip"] > 0:
        i = _draw([n, 1, 1], torch.floor(torch.rand([n, 1, 1], device=device) * 2), probs["lumaflip"], p, 0)
        c = (eye4 - 2 * vv * i) @ c       # Householder reflection of the luma axis
    if "hue" in enabled:
        theta = _draw([n], (torch.rand([n], device=device) * 2 - 1) * math.pi * HUE_MAX, probs["hue"], p, 0)
        c = _rotate3d(v, theta) @ c
    if "saturation" in enabled:
        s = _draw([n, 1, 1], torch.exp2(torch.randn([n, 1, 1], device=device) * SATURATION_STD),
                  probs["saturation"], p, 1)
        c = (vv + (eye4 - vv) * s) @ c
    return c


# ---------------------------------------------------------------------------------------------- execution
def apply_geometry(img: torch.Tensor, g_inv: torch.Tensor, filt: torch.Tensor | None = None) -> torch.Tensor:
    """Warp `img` [n, C, H, W] by the inverse pixel transforms `g_inv` [n, 3, 3]: reflect-pad to cover the
    transformed corners, 2x sym6 upsampling, bilinear grid_sample, 2x sym6 downsampling, crop (official path).
    `filt` overrides the 1-D filter (default: `sym6_filter`)."""
    n, c, h, w = img.shape
    f = sym6_filter(img.device, img.dtype) if filt is None else filt.to(img.device, img.dtype)
    pad = f.shape[0] // 4                  # the official margin: filter taps / 4 pixels (3 for sym6), doubled
    g_inv = g_inv.to(img.device)
    dtype = g_inv.dtype
    # Margins that hold the transformed image corners plus the filter's support, at most one image size (reflect).
    cx, cy = (w - 1) / 2, (h - 1) / 2
    corners = torch.tensor([[-cx, -cy, 1], [cx, -cy, 1], [cx, cy, 1], [-cx, cy, 1]], dtype=dtype,
                           device=img.device).t()
    cp = (g_inv @ corners)[:, :2, :].permute(1, 0, 2).flatten(1)            # [xy, n * corner]
    margin = torch.cat([-cp, cp]).amax(dim=1)                                # [x0, y0, x1, y1]
    margin = margin + torch.tensor([pad * 2 - cx, pad * 2 - cy] * 2, dtype=dtype, device=img.device)
    margin = margin.clamp(min=0).minimum(torch.tensor([w - 1, h - 1] * 2, dtype=dtype, device=img.device))
    mx0, my0, mx1, my1 = (int(m) for m in margin.ceil().tolist())
    x = F.pad(img, [mx0, mx1, my0, my1], mode="reflect")
    g_inv = _translate2d((mx0 - mx1) / 2, (my0 - my1) / 2).to(img.device) @ g_inv
    # 2x upsampling: pixel coordinates double, pixel centres move by half a (new) pixel.
    x = upsample2x(x, f)
    g_inv = _scale2d(2.0, 2.0).to(img.device) @ g_inv @ _scale2d(0.5, 0.5).to(img.device)
    g_inv = _translate2d(-0.5, -0.5).to(img.device) @ g_inv @ _translate2d(0.5, 0.5).to(img.device)
    # Output: (size + 2 pad) * 2 per axis; grid_sample's normalised coordinates (align_corners=False).
    shape = [n, c, (h + pad * 2) * 2, (w + pad * 2) * 2]
    g_inv = (_scale2d(2 / x.shape[3], 2 / x.shape[2]).to(img.device) @ g_inv
             @ _scale2d(1 / (2 / shape[3]), 1 / (2 / shape[2])).to(img.device))
    grid = F.affine_grid(g_inv[:, :2, :].to(img.dtype), shape, align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # 2x downsampling by correlation with the same filter, cropping the 2 * pad margin (padding (5, 5) - 6 for sym6).
    ft = f.shape[0]
    return fir(x, f.flip([0]), pad=((ft - 1) // 2 - 2 * pad, (ft - 2) // 2 - 2 * pad), stride=2)


def apply_geometry_single_warp(img: torch.Tensor, g_inv: torch.Tensor) -> torch.Tensor:
    """The cheap alternative (GEOMETRY "single_warp"): one bilinear grid_sample of the image itself with the same
    inverse transforms, reflection padding at the image edge, no 2x resampling (more aliasing, different borders)."""
    n, c, h, w = img.shape
    # pixel coordinates centred on the image -> grid_sample's normalised ones (align_corners=False): x_n = x * 2 / w
    theta = _scale2d(2 / w, 2 / h).to(img.device) @ g_inv.to(img.device) @ _scale2d(w / 2, h / 2).to(img.device)
    grid = F.affine_grid(theta[:, :2, :].to(img.dtype), [n, c, h, w], align_corners=False)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def apply_color(img: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Apply 4x4 colour transforms `c` [n, 4, 4] to RGB (or L: the mean of the RGB rows, official) images."""
    n, ch, h, w = img.shape
    c = c.to(img.device, img.dtype)
    flat = img.reshape(n, ch, h * w)
    if ch == 3:
        flat = c[:, :3, :3] @ flat + c[:, :3, 3:]
    elif ch == 1:
        c = c[:, :3, :].mean(dim=1, keepdim=True)
        flat = flat * c[:, :, :3].sum(dim=2, keepdim=True) + c[:, :, 3:]
    else:
        raise ValueError(f"ADA colour transforms need RGB (3 channels) or L (1 channel) images, got {ch} channels")
    return flat.reshape(n, ch, h, w)


def _no_autocast(device: torch.device):
    if device.type in ("cpu", "cuda"):
        return torch.autocast(device.type, enabled=False)
    return contextlib.nullcontext()


def augment(img: torch.Tensor, p: float, probs: dict = BGC, filt: torch.Tensor | None = None,
            geometry: str = "official") -> torch.Tensor:
    """The official AugmentPipe's forward with probability multiplier p; differentiable (twice) w.r.t. img.

    The parameters are always drawn (same RNG use as the official pipe); at p = 0 the image is returned unchanged
    (the official pipe still runs its resampling there, which reproduces the image up to float rounding).
    `geometry`: "official" (2x sym6 path) or "single_warp" (same parameters, one warp: see GEOMETRY)."""
    if geometry not in GEOMETRY:
        raise ValueError(f"ADA geometry {geometry!r}: expected one of {sorted(GEOMETRY)}")
    n, ch, h, w = img.shape
    p = float(p)
    with _no_autocast(img.device):        # matrices and resampling in float32 (float64 input: float64), any autocast
        g_inv = draw_geometry(n, h, w, p, probs, img.device)
        out = img.to(torch.promote_types(img.dtype, torch.float32))
        if g_inv is not None and p > 0:
            out = (apply_geometry(out, g_inv, filt) if geometry == "official"
                   else apply_geometry_single_warp(out, g_inv))
        col = draw_color(n, p, probs, ch, img.device)     # drawn after the geometry, as the official pipe
        if col is not None and p > 0:
            out = apply_color(out, col)
    return img if p <= 0 else out.to(img.dtype)


class AdaptiveAugment(nn.Module):
    """Holds p (a buffer, checkpointed) and the sign statistics of D on reals; adjusts p every `interval` steps.

    Call `accumulate` on every D evaluation of (augmented) reals, the R1 phase's included: the official loss
    reports 'Loss/signs/real' in both. `groups`: transform groups ('bgc'); `geometry`: a GEOMETRY name."""

    def __init__(self, enabled: bool = True, target: float = ADA_TARGET, interval: int = ADA_INTERVAL,
                 speed_kimg: float = ADA_KIMG, initial_p: float = 0.0, groups: str = "bgc",
                 geometry: str = "official"):
        super().__init__()
        if geometry not in GEOMETRY:
            raise ValueError(f"ADA geometry {geometry!r}: expected one of {sorted(GEOMETRY)}")
        self.enabled, self.target, self.interval, self.speed_kimg = enabled, target, interval, speed_kimg
        self.geometry = geometry
        self.probs = pipe_multipliers(groups)
        self.register_buffer("p", torch.tensor(float(initial_p) if enabled else 0.0))
        self.register_buffer("sign_sum", torch.zeros([]))
        self.register_buffer("sign_count", torch.zeros([]))
        self.register_buffer("filt", sym6_filter(), persistent=False)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return augment(img, float(self.p), self.probs, self.filt, self.geometry) if self.enabled else img

    def accumulate(self, real_logits: torch.Tensor) -> None:
        self.sign_sum += torch.sign(real_logits.detach()).sum().to(self.sign_sum.device)
        self.sign_count += real_logits.numel()

    def maybe_adjust(self, step: int, batch_size: int) -> None:
        """After every `interval`-th step (0-based `step`): p += sign(r_t - target) * batch * interval / speed,
        then p = max(p, 0) (no upper clamp, as the official loop)."""
        if not self.enabled or (step + 1) % self.interval:
            return
        stats = torch.stack([self.sign_sum, self.sign_count]).double()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            stats = stats.to(self.p.device)
            torch.distributed.all_reduce(stats)       # every process sees the global r_t
        total, count = float(stats[0]), float(stats[1])
        if count == 0:
            return
        rt = total / count
        sign = float((rt > self.target) - (rt < self.target))
        adjust = sign * (batch_size * self.interval) / (self.speed_kimg * 1000)
        self.p.copy_((self.p + adjust).clamp_min(0.0))
        self.sign_sum.zero_()
        self.sign_count.zero_()
