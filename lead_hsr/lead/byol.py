"""BYOL (Grill et al. 2020) for LEAD stage 1 (thesis §3.2.2, Eq. 3.1; DESIGN §5).

Online network = backbone + projector + predictor; target network = EMA copy of backbone + projector.
Loss per view pair: ||normalize(pred) - normalize(z_target)||^2 = 2 - 2 cos, symmetrised over both views (the sum of
both directions, mean over the batch: BYOL Eq. 2 and byol-pytorch; lightly's example halves a -cos loss, a 4x smaller
gradient). Under bf16/fp16 autocast the networks run in low precision and the loss in full precision.
`bench/compare_ssl.py` checks loss, gradients and the EMA against byol-pytorch.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from lead_hsr.lead.backbones import ResNetBackbone
from lead_hsr.lead.common import ema_update
from lead_hsr.train import full_precision, outside_autocast

TAU_BASE = 0.996  # BYOL §3.2: target EMA rate starts at 0.996 and rises to 1 with a cosine schedule
# "cosine": BYOL §3.2 (byol-pytorch's default is "constant" at 0.99; lightly's cosine reaches 1 at step K - 1)
TAU_SCHEDULES = ("cosine", "constant")
PROJ_HIDDEN = 4096  # BYOL §3.3: projector / predictor MLP hidden width
PROJ_DIM = 256  # BYOL §3.3: projection output size


class MLPHead(nn.Sequential):
    """Linear -> BatchNorm -> ReLU -> Linear (BYOL projector and predictor)."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int):
        super().__init__(nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, out_dim))


def target_tau(step: int, total_steps: int, base: float = TAU_BASE, schedule: str = "cosine") -> float:
    """BYOL's EMA rate: 1 - (1 - base) * (cos(pi k / K) + 1) / 2 ("cosine"), or `base` throughout ("constant")."""
    if schedule == "constant":
        return base
    if schedule != "cosine":
        raise ValueError(f"tau schedule {schedule!r}; expected one of {TAU_SCHEDULES}")
    return 1 - (1 - base) * (math.cos(math.pi * step / max(total_steps, 1)) + 1) / 2


def regression_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample 2 - 2 cos(prediction, target); the target gets no gradient."""
    return 2 - 2 * F.cosine_similarity(prediction, target.detach(), dim=-1)


class BYOL(nn.Module):
    """`ema_bn_stats`: the target's BatchNorm running statistics are EMA'd from the online network's (True) or are
    the target's own running averages (False: BYOL, byol-pytorch). Training output is the same either way."""

    def __init__(self, backbone: ResNetBackbone, proj_hidden: int = PROJ_HIDDEN, proj_dim: int = PROJ_DIM,
                 ema_bn_stats: bool = False):
        super().__init__()
        self.ema_bn_stats = ema_bn_stats
        self.backbone = backbone
        self.projector = MLPHead(backbone.out_dim, proj_hidden, proj_dim)
        self.predictor = MLPHead(proj_dim, proj_hidden, proj_dim)
        self.target_backbone = copy.deepcopy(backbone)
        self.target_projector = copy.deepcopy(self.projector)
        for p in self.target_parameters():
            p.requires_grad_(False)

    def online_parameters(self):
        return [*self.backbone.parameters(), *self.projector.parameters(), *self.predictor.parameters()]

    def target_parameters(self):
        return [*self.target_backbone.parameters(), *self.target_projector.parameters()]

    @staticmethod
    def _embed(backbone: nn.Module, projector: nn.Module, x: torch.Tensor) -> torch.Tensor:
        pooled = backbone(x)[-1].mean((2, 3))  # global average pool of layer4
        return projector(pooled)

    def forward(self, view1: torch.Tensor, view2: torch.Tensor) -> torch.Tensor:
        """Mean symmetric BYOL loss over the batch. Both views go through each network in one batch."""
        n = len(view1)
        both = torch.cat([view1, view2])
        pred = full_precision(self.predictor(self._embed(self.backbone, self.projector, both)))
        with torch.no_grad():
            z = full_precision(self._embed(self.target_backbone, self.target_projector, both))
        with outside_autocast(pred.device.type):
            # view 1's prediction targets view 2's projection and vice versa
            loss = regression_loss(pred[:n], z[n:]) + regression_loss(pred[n:], z[:n])
            return loss.mean()

    def update_target(self, tau: float) -> None:
        """target <- tau * target + (1 - tau) * online (parameters; BatchNorm statistics too with `ema_bn_stats`)."""
        ema_update([(self.target_backbone, self.backbone), (self.target_projector, self.projector)], tau,
                   self.ema_bn_stats)
