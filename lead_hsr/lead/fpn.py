"""LEAD stage-2 dense network Phi^D: ResNet encoder + FPN decoder + projection head g^D (thesis §3.3).

Decoder: FPN (Lin et al. 2017) lateral 1x1 convs and a top-down pathway over the 1/4..1/32 stages, then
Panoptic-FPN-style upsampling blocks (3x3 conv, GroupNorm, ReLU, 2x bilinear upsampling, repeated until 1/4)
whose outputs are summed and mapped to C channels at 1/4 resolution. Head: two 1x1 convs with BatchNorm+ReLU
between them (hidden width 64 or 256), or none (ablation, DESIGN §5).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lead_hsr.errors import InputError
from lead_hsr.lead.backbones import ResNetBackbone

OUTPUT_DIMS = (64, 128, 256)  # DESIGN §5: C at 1/4 resolution (other values are allowed for experiments)
HEAD_VARIANTS = ("none", "64", "256")  # projection-head ablation: no head / hidden width 64 / 256
FPN_DIM = 128  # channels inside the decoder (Panoptic FPN's semantic branch uses 128)


def _upsampling_block(in_dim: int, out_dim: int, upsample: bool) -> nn.Sequential:
    layers = [nn.Conv2d(in_dim, out_dim, 3, padding=1, bias=False), nn.GroupNorm(min(32, out_dim), out_dim),
              nn.ReLU(inplace=True)]
    if upsample:
        layers.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
    return nn.Sequential(*layers)


class FPNDecoder(nn.Module):
    """[layer1..layer4] (strides 4..32) -> B x out_dim x H/4 x W/4."""

    def __init__(self, stage_dims, out_dim: int, fpn_dim: int = FPN_DIM):
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(d, fpn_dim, 1) for d in stage_dims)
        # level i (stride 4 * 2^i) needs i upsamplings to reach stride 4; level 0 gets one plain block
        self.branches = nn.ModuleList(
            nn.Sequential(*[_upsampling_block(fpn_dim, fpn_dim, upsample=True) for _ in range(i)])
            if i > 0 else _upsampling_block(fpn_dim, fpn_dim, upsample=False)
            for i in range(len(stage_dims)))
        self.out = nn.Conv2d(fpn_dim, out_dim, 1)

    def forward(self, stages: list[torch.Tensor]) -> torch.Tensor:
        laterals = [conv(s) for conv, s in zip(self.lateral, stages)]
        pyramid = [laterals[-1]]
        for lat in reversed(laterals[:-1]):  # top-down pathway
            pyramid.insert(0, lat + F.interpolate(pyramid[0], size=lat.shape[-2:], mode="nearest"))
        size = pyramid[0].shape[-2:]
        outs = [branch(level) for branch, level in zip(self.branches, pyramid)]
        # sizes already agree for inputs divisible by 32; resize otherwise (odd intermediate sizes)
        outs = [o if o.shape[-2:] == size else F.interpolate(o, size=size, mode="bilinear", align_corners=False)
                for o in outs]
        return self.out(sum(outs))


class ProjectionHead(nn.Sequential):
    """1x1 conv (C -> hidden) -> BatchNorm -> ReLU -> 1x1 conv (hidden -> C)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__(nn.Conv2d(dim, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True),
                         nn.Conv2d(hidden, dim, 1))


def build_head(variant: str, dim: int) -> nn.Module:
    if str(variant) not in HEAD_VARIANTS:
        raise InputError(f"unknown projection head {variant!r}; expected one of {HEAD_VARIANTS} "
                         "(option `proj_head` of the LEAD stage-2 config).")
    return nn.Identity() if str(variant) == "none" else ProjectionHead(dim, int(variant))


class DenseNet(nn.Module):
    """Phi^D followed by g^D: image -> B x C x H/4 x W/4 compact features (F_i of thesis Eq. 3.2)."""

    def __init__(self, encoder: ResNetBackbone, dim: int, head: str = "256", fpn_dim: int = FPN_DIM):
        super().__init__()
        self.encoder = encoder
        self.decoder = FPNDecoder(encoder.stage_dims, dim, fpn_dim)
        self.head = build_head(head, dim)
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.decoder(self.encoder(x)))
