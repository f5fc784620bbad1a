"""Batched image augmentations for stage 1 / stage 2 (torch ops, run on the batch's device).

All randomness comes from an explicit `torch.Generator` (CPU), so a step's augmentations are a function of
(seed, step) and resume is bitwise identical. Parameters are drawn on the CPU and moved to the device.
Defaults follow BYOL (Grill et al. 2020, Table 6): colour jitter p=0.8 (brightness 0.4, contrast 0.4,
saturation 0.2, hue 0.1), grayscale p=0.2, Gaussian blur sigma in [0.1, 2.0] px at 224 px with p=1.0 / 0.1
for the two views, horizontal flip p=0.5. Blur sigma and kernel scale with the image size (BYOL's blur is
relative to 224-px images; sigma 2 px on a 64-px face would erase the parts landmarks are made of). Crops are plain random crops of the prepared image (DESIGN §5: 96x96 of 136x136).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lead_hsr.data.geometry import NORM_MEAN as DEFAULT_MEAN, NORM_STD as DEFAULT_STD  # DESIGN §4.1

BLUR_REFERENCE_SIZE = 224  # BYOL's image size, for which blur_sigma is given
BYOL_BLUR_P = (1.0, 0.1)  # BYOL Table 6: blur probability of view 1 / view 2
# ITU-R 601 luma weights (as torchvision's rgb_to_grayscale).
LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class AugmentConfig:
    crop: int = 96
    flip_p: float = 0.5
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.2
    hue: float = 0.1
    gray_p: float = 0.2
    blur_p: float = 1.0
    blur_sigma: tuple[float, float] = (0.1, 2.0)  # in pixels of a BLUR_REFERENCE_SIZE image
    # BYOL blurs with a 23-px kernel on 224-px images (~10% of the side); we keep that ratio.
    blur_kernel_frac: float = 0.1


def to_float_nchw(images: torch.Tensor) -> torch.Tensor:
    """uint8 N x H x W x 3 -> N x 3 x H x W in [0, 1], of torch's default float dtype (float32; float64 in tests)."""
    return images.permute(0, 3, 1, 2).to(torch.get_default_dtype()).div_(255.0)


def normalize(x: torch.Tensor, mean=DEFAULT_MEAN, std=DEFAULT_STD) -> torch.Tensor:
    mean_t = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std_t = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean_t) / std_t


def _uniform(n: int, low: float, high: float, gen: torch.Generator, device) -> torch.Tensor:
    return (torch.rand(n, generator=gen) * (high - low) + low).to(device)


def _coin(n: int, p: float, gen: torch.Generator, device) -> torch.Tensor:
    return (torch.rand(n, generator=gen) < p).to(device)


def random_crop(x: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """Per-sample random crops (N x 3 x H x W -> N x 3 x size x size) by gathering row/column indices."""
    n, _, h, w = x.shape
    top = torch.randint(0, h - size + 1, (n,), generator=gen).to(x.device)
    left = torch.randint(0, w - size + 1, (n,), generator=gen).to(x.device)
    offs = torch.arange(size, device=x.device)
    rows = (top[:, None] + offs)[:, None, :, None].expand(n, 3, size, w)
    x = torch.gather(x, 2, rows)
    cols = (left[:, None] + offs)[:, None, None, :].expand(n, 3, size, size)
    return torch.gather(x, 3, cols)


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top:top + size, left:left + size]


def _gray(x: torch.Tensor) -> torch.Tensor:
    luma = torch.as_tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * luma).sum(1, keepdim=True)


def _rotate_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Hue rotation by `shift` (fraction of a turn) as a rotation of the chroma plane in YIQ space.

    A linear, fully batched approximation of HSV hue shifting (exact for the luma, close for chroma).
    """
    rgb2yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
                           dtype=x.dtype, device=x.device)
    yiq2rgb = torch.linalg.inv(rgb2yiq)
    angle = shift * 2 * math.pi
    cos, sin = torch.cos(angle), torch.sin(angle)
    rot = torch.zeros(len(x), 3, 3, dtype=x.dtype, device=x.device)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = cos, -sin, sin, cos
    mat = yiq2rgb @ rot @ rgb2yiq  # N x 3 x 3
    return torch.einsum("nij,njhw->nihw", mat, x)


def color_jitter(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Brightness, contrast, saturation, hue (fixed order, for speed) on a random subset (p = jitter_p)."""
    n, dev = len(x), x.device
    apply = _coin(n, cfg.jitter_p, gen, dev).view(n, 1, 1, 1)
    b = _uniform(n, 1 - cfg.brightness, 1 + cfg.brightness, gen, dev).view(n, 1, 1, 1)
    c = _uniform(n, 1 - cfg.contrast, 1 + cfg.contrast, gen, dev).view(n, 1, 1, 1)
    s = _uniform(n, 1 - cfg.saturation, 1 + cfg.saturation, gen, dev).view(n, 1, 1, 1)
    h = _uniform(n, -cfg.hue, cfg.hue, gen, dev)
    y = (x * b).clamp(0, 1)
    y = ((y - _gray(y).mean((2, 3), keepdim=True)) * c + _gray(y).mean((2, 3), keepdim=True)).clamp(0, 1)
    y = ((y - _gray(y)) * s + _gray(y)).clamp(0, 1)
    y = _rotate_hue(y, h).clamp(0, 1)
    return torch.where(apply, y, x)


def random_grayscale(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    apply = _coin(len(x), p, gen, x.device).view(-1, 1, 1, 1)
    return torch.where(apply, _gray(x).expand_as(x), x)


def gaussian_blur(x: torch.Tensor, cfg: AugmentConfig, p: float, gen: torch.Generator) -> torch.Tensor:
    """Separable per-sample Gaussian blur (grouped conv); sigma ~ U(blur_sigma) * h / 224, applied with prob p."""
    n, _, h, w = x.shape
    radius = max(1, int(round(cfg.blur_kernel_frac * h / 2)))
    sigma = _uniform(n, *cfg.blur_sigma, gen, x.device) * (h / BLUR_REFERENCE_SIZE)
    apply = _coin(n, p, gen, x.device)
    taps = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-taps[None] ** 2 / (2 * sigma[:, None] ** 2))
    kernel = kernel / kernel.sum(1, keepdim=True)  # n x k
    kernel = kernel.repeat_interleave(3, 0)  # one kernel per (sample, channel)
    flat = x.reshape(1, n * 3, h, w)
    flat = F.pad(flat, (radius, radius, radius, radius), mode="reflect")
    flat = F.conv2d(flat, kernel[:, None, None, :], groups=n * 3)
    flat = F.conv2d(flat, kernel[:, None, :, None], groups=n * 3)
    blurred = flat.reshape(n, 3, h, w)
    return torch.where(apply.view(n, 1, 1, 1), blurred, x)


def random_flip(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    apply = _coin(len(x), p, gen, x.device).view(-1, 1, 1, 1)
    return torch.where(apply, x.flip(-1), x)


def augment_view(images: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator, blur_p: float | None = None,
                 mean=DEFAULT_MEAN, std=DEFAULT_STD) -> torch.Tensor:
    """One augmented, normalised view of a uint8 N x H x W x 3 batch (already on the target device).

    `gen` is a CPU generator, e.g. `lead_hsr.train.step_generator(seed, step)`."""
    x = random_crop(to_float_nchw(images), cfg.crop, gen)
    x = random_flip(x, cfg.flip_p, gen)
    x = color_jitter(x, cfg, gen)
    x = random_grayscale(x, cfg.gray_p, gen)
    x = gaussian_blur(x, cfg, cfg.blur_p if blur_p is None else blur_p, gen)
    return normalize(x, mean, std)


def byol_views(images: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator, mean=DEFAULT_MEAN,
               std=DEFAULT_STD) -> tuple[torch.Tensor, torch.Tensor]:
    """The two BYOL views: blur with p = 1.0 for the first, 0.1 for the second (BYOL Table 6)."""
    return (augment_view(images, cfg, gen, BYOL_BLUR_P[0], mean, std),
            augment_view(images, cfg, gen, BYOL_BLUR_P[1], mean, std))


