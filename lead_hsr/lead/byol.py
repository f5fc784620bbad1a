"""BYOL (Grill et al. 2020) for LEAD stage 1 (thesis §3.2.2, Eq. 3.1; DESIGN §5).

Online network = backbone + projector + predictor; target network = EMA copy of backbone + projector.
Loss per view pair: ||normalize(pred) - normalize(z_target)||^2 = 2 - 2 cos, symmetrised over both views.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from lead_hsr.lead.backbones import ResNetBackbone

TAU_BASE = 0.996  # BYOL §3.2: target EMA rate starts at 0.996 and rises to 1 with a cosine schedule
PROJ_HIDDEN = 4096  # BYOL §3.3: projector / predictor MLP hidden width
PROJ_DIM = 256  # BYOL §3.3: projection output size


class MLPHead(nn.Sequential):
    """Linear -> BatchNorm -> ReLU -> Linear (BYOL projector and predictor)."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int):
        super().__init__(nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, out_dim))


def target_tau(step: int, total_steps: int, base: float = TAU_BASE) -> float:
    """BYOL's EMA rate: 1 - (1 - base) * (cos(pi k / K) + 1) / 2."""
    return 1 - (1 - base) * (math.cos(math.pi * step / max(total_steps, 1)) + 1) / 2


def regression_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample 2 - 2 cos(prediction, target); the target gets no gradient."""
    return 2 - 2 * F.cosine_similarity(prediction, target.detach(), dim=-1)


class BYOL(nn.Module):
    def __init__(self, backbone: ResNetBackbone, proj_hidden: int = PROJ_HIDDEN, proj_dim: int = PROJ_DIM):
        super().__init__()
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
        pred = self.predictor(self._embed(self.backbone, self.projector, both))
        with torch.no_grad():
            z = self._embed(self.target_backbone, self.target_projector, both)
        # view 1's prediction targets view 2's projection and vice versa
        loss = regression_loss(pred[:n], z[n:]) + regression_loss(pred[n:], z[:n])
        return loss.mean()

    @torch.no_grad()
    def update_target(self, tau: float) -> None:
        """target <- tau * target + (1 - tau) * online, for parameters and BatchNorm running statistics."""
        pairs = [(self.target_backbone, self.backbone), (self.target_projector, self.projector)]
        targets, onlines = [], []
        for target_net, online_net in pairs:
            online_state = online_net.state_dict()
            for name, value in target_net.state_dict().items():  # tensors share storage with the modules
                if value.is_floating_point():
                    targets.append(value)
                    onlines.append(online_state[name])
        torch._foreach_lerp_(targets, onlines, 1 - tau)
