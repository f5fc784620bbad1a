"""MoCo-v2 (Chen et al. 2020) for the ContrastLandmarks (CL) stage-1 baseline (DESIGN §5).

Constants from DESIGN §5 / contrast-landmark `train_moco.py` (nce_k 4096) and the MoCo-v2 paper.
Shuffle-BN (MoCo's multi-GPU trick against BatchNorm leakage across GPUs) is not implemented: in one process
BatchNorm sees the whole batch, where shuffling has no effect; under torchrun stage 1 uses global-batch
BatchNorm and enqueues every rank's keys, so a DDP run equals one process with the same global batch.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from lead_hsr.lead.backbones import ResNetBackbone
from lead_hsr.train import ddp

QUEUE_SIZE = 4096  # DESIGN §5 / CL `--nce_k 4096`
TEMPERATURE = 0.07  # DESIGN §5 (MoCo-v2 tau)
MOMENTUM = 0.999  # DESIGN §5 (key encoder EMA)
EMBED_DIM = 128  # MoCo-v2: MLP head output
WEIGHT_DECAY = 1e-4  # DESIGN §5


class MoCoHead(nn.Sequential):
    """MoCo-v2 MLP head: Linear -> ReLU -> Linear."""

    def __init__(self, in_dim: int, out_dim: int = EMBED_DIM):
        super().__init__(nn.Linear(in_dim, in_dim), nn.ReLU(inplace=True), nn.Linear(in_dim, out_dim))


def info_nce(query: torch.Tensor, key: torch.Tensor, queue: torch.Tensor,
             temperature: float = TEMPERATURE) -> torch.Tensor:
    """Mean InfoNCE: positive = matching key, negatives = queue rows. Inputs are L2-normalised."""
    positive = (query * key).sum(1, keepdim=True)
    negatives = query @ queue.t()
    logits = torch.cat([positive, negatives], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(query), dtype=torch.long, device=query.device))


class MoCo(nn.Module):
    def __init__(self, backbone: ResNetBackbone, queue_size: int = QUEUE_SIZE, dim: int = EMBED_DIM,
                 temperature: float = TEMPERATURE, momentum: float = MOMENTUM):
        super().__init__()
        self.backbone = backbone
        self.head = MoCoHead(backbone.out_dim, dim)
        self.key_backbone = copy.deepcopy(backbone)
        self.key_head = copy.deepcopy(self.head)
        for p in [*self.key_backbone.parameters(), *self.key_head.parameters()]:
            p.requires_grad_(False)
        self.temperature, self.momentum = temperature, momentum
        # The queue is a buffer so it is checkpointed with the model; initialised with random unit vectors.
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, dim), dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    def online_parameters(self):
        return [*self.backbone.parameters(), *self.head.parameters()]

    @staticmethod
    def _embed(backbone, head, x):
        return F.normalize(head(backbone(x)[-1].mean((2, 3))), dim=1)

    def forward(self, query_view: torch.Tensor, key_view: torch.Tensor) -> torch.Tensor:
        """InfoNCE loss of the batch against the current queue, then enqueue this batch's keys.

        Call `momentum_update()` before each step (MoCo updates the key encoder before computing keys).
        """
        query = self._embed(self.backbone, self.head, query_view)
        with torch.no_grad():
            key = self._embed(self.key_backbone, self.key_head, key_view)
        loss = info_nce(query, key, self.queue.clone(), self.temperature)
        self.enqueue(ddp.all_gather_cat(key))  # the global batch's keys, in rank order (alone: this batch's)
        return loss

    @torch.no_grad()
    def momentum_update(self) -> None:
        targets, onlines = [], []
        for key_net, net in [(self.key_backbone, self.backbone), (self.key_head, self.head)]:
            online_state = net.state_dict()
            for name, value in key_net.state_dict().items():
                if value.is_floating_point():
                    targets.append(value)
                    onlines.append(online_state[name])
        torch._foreach_lerp_(targets, onlines, 1 - self.momentum)

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Overwrite the oldest queue rows with `keys` (ring buffer)."""
        size = len(self.queue)
        idx = (self.queue_ptr + torch.arange(len(keys), device=keys.device)) % size
        self.queue[idx] = keys
        self.queue_ptr.copy_((self.queue_ptr + len(keys)) % size)
