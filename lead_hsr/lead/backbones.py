"""ResNet backbones (torchvision, BatchNorm) that return the four stage outputs used for hypercolumns.

The paper uses ResNet50 (DESIGN §5); resnet18/34 are selectable by name for the CPU demo.
"""

from __future__ import annotations

from typing import Mapping

import torch
import torchvision
from torch import nn

from lead_hsr.errors import InputError
from lead_hsr.lead.arch import STAGE_DIMS, check_arch  # noqa: F401 (STAGE_DIMS: re-exported)

# Strides of layer1..layer4 relative to the input (1/4 .. 1/32): the FPN and hypercolumns rely on them.
STAGE_STRIDES = (4, 8, 16, 32)


class ResNetBackbone(nn.Module):
    """torchvision ResNet without avgpool/fc; forward returns [layer1, layer2, layer3, layer4].

    Parameter names equal torchvision's (conv1, bn1, layer1..layer4), so torchvision state dicts
    (minus `fc.*`) load directly.
    """

    def __init__(self, arch: str):
        super().__init__()
        check_arch(arch)
        net = getattr(torchvision.models, arch)(weights=None)
        self.arch = arch
        self.stage_dims = STAGE_DIMS[arch]
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4

    @property
    def out_dim(self) -> int:
        return self.stage_dims[-1]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        stages = []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            stages.append(x)
        return stages


def build_backbone(arch: str, state_dict: Mapping[str, torch.Tensor] | None = None) -> ResNetBackbone:
    """A backbone with random (torchvision default) init, or loaded from `state_dict` (strict)."""
    backbone = ResNetBackbone(arch)
    if state_dict is not None:
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith("fc.")}
        try:
            backbone.load_state_dict(state_dict, strict=True)
        except RuntimeError as err:
            raise InputError(f"backbone weights do not match arch {arch!r}: {err}. "
                             "Check that `arch` matches the stage-1 run that wrote the weights.") from err
    return backbone


@torch.no_grad()
def recompute_batchnorm_stats(model: nn.Module, batches) -> None:
    """Replace every BatchNorm's running mean/var by the exact average over `batches` (iterable of inputs).

    A random-init baseline is only fair with statistics of the data it is evaluated on (DESIGN §4.4).
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average = exact mean over batches
    was_training = model.training
    model.train()
    for x in batches:
        model(x)
    model.train(was_training)
    for bn in bns:
        bn.momentum = 0.1
