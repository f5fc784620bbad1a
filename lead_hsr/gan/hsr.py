"""Hierarchical Semantic Regularizer (thesis Eq. 4.2, section 4.3.1; DESIGN section 6).

Heads q_i = 1x1 conv (C -> 4096) + activation + 1x1 conv (4096 -> D_feat) on the G block outputs at resolutions
r/32, r/16, r/8, r/4 (8, 16, 32, 64 at 256 px), applied *before* resizing to the target grid (14x14 at 224 px input).
Loss = sum over the active levels of MSE(q_i(G_i), F_i(G(z))), weight 1, added to the main G loss only.

Defaults are what the official code (val-iisc/HSR) computes, wherever it and the thesis text differ:
- `head_activation`: "relu_eqlr" = its `Head` (training/networks.py): Conv2dLayer(activation='relu') -> Conv2dLayer,
  equalized lr, biases, gain sqrt(2); the thesis says LeakyReLU ("leaky_relu").
- `resize_to`: "target" = its loss (training/loss.py, `accumulate_gradients`): each head's output, computed at the G
  block's resolution, is resized to *its target's* spatial size (14 for ViTs; 7/14/28/56 for ResNets) by area
  interpolation when upsampling or equal, adaptive average pooling otherwise (the same operation in torch), and the
  target is left as it is. "patch_grid": prediction and target both at input_size / 16 (the thesis's "resize to
  14x14", read for every extractor). Both are the same for ViTs.
- `head_precision`: "float32" = its `get_feats`: the G block output is cast to float32 and the heads run in float32
  whatever the G blocks' precision; "autocast": the heads run in the caller's autocast dtype.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from lead_hsr.errors import InputError
from lead_hsr.gan.layers import EqualConv2d
from lead_hsr.train.device import full_precision, outside_autocast

HEAD_HIDDEN = 4096                       # thesis 4.3.1: hidden width of the predictors
LEVEL_DIVISORS = (32, 16, 8, 4)          # G levels r/32, r/16, r/8, r/4 (thesis 4.2.3)
LEVEL_GROUPS = {                         # Table 4.2 level ablation, as indices into LEVEL_DIVISORS
    "high": (0, 1),
    "mid": (1, 2),
    "low": (2, 3),
    "all": (0, 1, 2, 3),
}
HEAD_ACTIVATIONS = ("relu_eqlr", "leaky_relu")   # official code / thesis text
PATCH_SIZE = 16                          # target grid = input_size / 16 (14x14 at 224, the ViT-B/16 token grid)
HSR_WEIGHT = 1.0                         # thesis: loss weight 1
RESIZE_TARGETS = ("target", "patch_grid")       # official loss.py / thesis text read for every extractor
HEAD_PRECISIONS = ("float32", "autocast")       # official get_feats (x.to(float32)) / the caller's autocast


@dataclass
class HSRSpec:
    levels: str = "all"
    head_activation: str = "relu_eqlr"
    weight: float = HSR_WEIGHT
    level_resolutions: list | None = None   # explicit G resolutions for the 4 levels (default r/32 .. r/4)
    target_stop_grad: bool = True           # targets are fixed (BYOL-style); the extractor is frozen anyway
    head_hidden: int = HEAD_HIDDEN          # paper 4096; demo smaller (the heads run at G resolution, costly)
    resize_to: str = "target"               # see the module docstring
    head_precision: str = "float32"         # see the module docstring

    def __post_init__(self):
        if self.levels not in LEVEL_GROUPS:
            raise InputError(f"unknown HSR level group {self.levels!r}; expected one of {sorted(LEVEL_GROUPS)}")
        if self.head_activation not in HEAD_ACTIVATIONS:
            raise InputError(f"unknown HSR head activation {self.head_activation!r}; "
                             f"expected one of {HEAD_ACTIVATIONS}")
        if self.resize_to not in RESIZE_TARGETS:
            raise InputError(f"unknown HSR resize_to {self.resize_to!r}; expected one of {RESIZE_TARGETS}")
        if self.head_precision not in HEAD_PRECISIONS:
            raise InputError(f"unknown HSR head_precision {self.head_precision!r}; expected one of {HEAD_PRECISIONS}")

    def resolutions(self, g_resolution: int) -> list[int]:
        res = self.level_resolutions or [g_resolution // d for d in LEVEL_DIVISORS]
        if len(res) != 4 or any(r < 4 or r > g_resolution or r & (r - 1) for r in res):
            raise InputError(f"HSR level resolutions {res} are not 4 G block resolutions in [4, {g_resolution}]; "
                             "set 'level_resolutions' explicitly for small generators (e.g. [4, 8, 16, 32])")
        return [int(r) for r in res]

    def to_dict(self) -> dict:
        return asdict(self)


class HSRHead(nn.Module):
    """1x1 conv (C -> hidden) + activation + 1x1 conv (hidden -> D_feat), equalized-lr layers.

    'relu_eqlr': ReLU with gain sqrt(2) inside the equalized-lr layer (official code).
    'leaky_relu': leaky ReLU (slope 0.2, gain sqrt(2)) as the thesis text says."""

    def __init__(self, in_channels: int, out_channels: int, activation: str = "relu_eqlr",
                 hidden: int = HEAD_HIDDEN):
        super().__init__()
        act = "relu" if activation == "relu_eqlr" else "lrelu"
        self.hidden = EqualConv2d(in_channels, hidden, 1, activation=act)
        self.out = EqualConv2d(hidden, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.hidden(x))


def resize_to_grid(x: torch.Tensor, size) -> torch.Tensor:
    """Area resampling (= adaptive average pooling; for upsampling 8 -> 14 each output takes its source cell).

    `size`: an int (square) or (H, W). torch's F.interpolate(mode='area'), which the official loss uses when
    upsampling, *is* adaptive_avg_pool2d, so both of its branches are this one function."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(x.shape[-2:]) == size:
        return x
    return F.adaptive_avg_pool2d(x, size)


class HSRHeads(nn.Module):
    """One head per active level; `loss(features, targets)` = sum of per-level MSE."""

    def __init__(self, spec: HSRSpec, g_channels: dict[int, int], g_resolution: int, feature_dims: list[int],
                 grid: int):
        super().__init__()
        self.spec, self.grid = spec, grid
        all_res = spec.resolutions(g_resolution)
        self.active = list(LEVEL_GROUPS[spec.levels])
        self.level_res = [all_res[i] for i in self.active]
        self.heads = nn.ModuleList(HSRHead(g_channels[r], feature_dims[i], spec.head_activation, spec.head_hidden)
                                   for r, i in zip(self.level_res, self.active))

    def native(self, g_features: dict[int, torch.Tensor]) -> list[torch.Tensor]:
        """Each active head's output at its G block's resolution (before any resizing)."""
        out = []
        for head, r in zip(self.heads, self.level_res):
            x = g_features[r]
            if self.spec.head_precision == "float32":
                with outside_autocast(x.device.type):
                    out.append(head(full_precision(x)))
            else:
                out.append(head(x))
        return out

    def predictions(self, g_features: dict[int, torch.Tensor], sizes: list | None = None) -> list[torch.Tensor]:
        """Head outputs resized to `sizes` (one per active level; default: the patch grid)."""
        sizes = sizes or [self.grid] * len(self.heads)
        return [resize_to_grid(p, s) for p, s in zip(self.native(g_features), sizes)]

    def target_sizes(self, targets: list[torch.Tensor]) -> list:
        """Where each active level is compared: its target's own size ('target') or the patch grid."""
        if self.spec.resize_to == "patch_grid":
            return [self.grid] * len(self.active)
        return [tuple(targets[i].shape[-2:]) for i in self.active]

    def loss(self, g_features: dict[int, torch.Tensor], targets: list[torch.Tensor]) -> torch.Tensor:
        """`targets` in level order r/32 .. r/4 (all four, as the extractor returns them)."""
        total = 0.0
        sizes = self.target_sizes(targets)
        for pred, i, size in zip(self.predictions(g_features, sizes), self.active, sizes):
            t = resize_to_grid(full_precision(targets[i]), size)
            if self.spec.target_stop_grad:
                t = t.detach()
            total = total + F.mse_loss(full_precision(pred), t)
        return self.spec.weight * total


def build_hsr_heads(spec: HSRSpec, synthesis, feature_dims: list[int], input_size: int) -> HSRHeads:
    return HSRHeads(spec, synthesis.channels, max(synthesis.resolutions), feature_dims, input_size // PATCH_SIZE)
