"""Hypercolumns: ResNet stage outputs layer4..layer1, bilinearly upsampled to one size and concatenated.

DESIGN §5: ResNet50 gives 2048+1024+512+256 = 3840 channels (resnet18/34: 960). Matching normalises each
layer's block separately (contrast-landmark `layer_wise_normalize`); DESIGN §4.4 found per-layer unit
length mattered most for regression at demo scale.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from lead_hsr.errors import InputError

NORMALIZATIONS = ("none", "layer", "vector", "layer+vector")


def hypercolumn_dims(stage_dims: Sequence[int]) -> list[int]:
    """Block sizes in hypercolumn order (deepest layer first)."""
    return list(reversed(stage_dims))


def normalize_blocks(feat: torch.Tensor, block_dims: Sequence[int], eps: float = 1e-12) -> torch.Tensor:
    """L2-normalise each channel block of B x C x H x W features separately (per location)."""
    if sum(block_dims) != feat.shape[1]:
        raise ValueError(f"block dims {list(block_dims)} do not sum to {feat.shape[1]} channels")
    blocks = torch.split(feat, list(block_dims), dim=1)
    return torch.cat([F.normalize(b, dim=1, eps=eps) for b in blocks], dim=1)


def hypercolumns(stages: Sequence[torch.Tensor], size: int | tuple[int, int],
                 normalize: str = "none") -> torch.Tensor:
    """Concatenate `stages` (layer1..layer4 outputs) as layer4, layer3, layer2, layer1 at `size`.

    normalize: "none"; "layer" (each block to unit length); "vector" (whole hypercolumn to unit length);
    "layer+vector" (both: blocks then whole, i.e. cosine = mean of per-layer cosines).
    The result is in channels-last memory (same values and shape as the default layout).
    """
    if normalize not in NORMALIZATIONS:
        raise InputError(f"unknown hypercolumn normalisation {normalize!r}; expected one of {NORMALIZATIONS}.")
    size = (size, size) if isinstance(size, int) else tuple(size)
    ordered = list(reversed(stages))
    # channels-last: the upsampling, the per-location norms and the concatenation run ~2.8x faster on CPU
    # (bench/bench_hypercolumns.py), and every consumer reads whole per-location vectors anyway.
    ups = [F.interpolate(s.contiguous(memory_format=torch.channels_last), size=size, mode="bilinear",
                         align_corners=False) for s in ordered]
    if "layer" in normalize:  # = normalize_blocks of the concatenation, without splitting it again
        ups = [F.normalize(u, dim=1) for u in ups]
    feat = torch.cat(ups, dim=1)
    if "vector" in normalize:
        feat = F.normalize(feat, dim=1)
    return feat
