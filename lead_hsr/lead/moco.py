"""MoCo for the ContrastLandmarks (CL) stage-1 baseline (DESIGN §5).

Constants from DESIGN §5 / contrast-landmark `train_moco.py` (`--nce_k 4096 --nce_t 0.07 --alpha 0.999`). The
defaults follow the code that trained CL's published networks (contrast-landmark, built on CMC's MoCo):

- head "linear": one Linear(out_dim, 128) then L2 normalisation (CL's `ResNet.fc` + `Normalize`; MoCo-v1). "mlp" is
  MoCo-v2's Linear-ReLU-Linear (facebookresearch/moco `--mlp`, lightly's `MoCoProjectionHead`).
- queue init "uniform": U(-s, s) with s = 1 / sqrt(dim / 3), rows of unit norm on average but not normalised (CL's
  `MemoryMoCo`). "normal": L2-normalised Gaussian rows (facebookresearch/moco, lightly).
- BatchNorm in groups (`bn_group_size`, CL: 64): CL's README trains batch 256 with `nn.DataParallel` on 4 GPUs, so
  every BatchNorm normalises over 64 images, and the running statistics kept are those of the first GPU's chunk
  (DataParallel's replica 0 shares the module's buffers; the others' updates are lost). With groups, shuffle-BN
  (CL `get_shuffle_ids`, MoCo §3.3) computes the keys of a randomly permuted batch so a query and its key never
  share BatchNorm statistics; with one group (the whole batch) shuffling changes nothing and is skipped.
- key encoder EMA of the parameters only, m = 0.999, updated before each step's keys (facebookresearch/moco); CL
  updates after each optimiser step, the same sequence of key encoders. `ema_bn_stats=True` also EMAs BatchNorm
  statistics (this project's earlier behaviour; BatchNorm trains on batch statistics, so the output is the same).
- queue: a ring buffer (index mod K, as CL's `fmod`); lightly drops the keys that overflow K and restarts at 0
  (the same when K is a multiple of the batch, as 4096 / 256).

Under torchrun the keys of every rank are gathered (in rank order) into the queue; with one BatchNorm group stage 1
uses global-batch BatchNorm, so a DDP run equals one process with the same global batch; with several groups each
rank holds whole groups. Losses run in full precision under bf16/fp16 autocast. `bench/compare_ssl.py` checks all
this against contrast-landmark and lightly.
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
from lead_hsr.train import ddp

QUEUE_SIZE = 4096  # DESIGN §5 / CL `--nce_k 4096`
TEMPERATURE = 0.07  # DESIGN §5 / CL `--nce_t 0.07`
MOMENTUM = 0.999  # DESIGN §5 / CL `--alpha 0.999` (key encoder EMA)
EMBED_DIM = 128  # CL `low_dim=128`, MoCo-v2 head output
WEIGHT_DECAY = 1e-4  # DESIGN §5 / CL `--weight_decay`
BN_GROUP_SIZE = 64  # CL: batch 256 on 4 GPUs under nn.DataParallel (README training command)
HEADS = ("linear", "mlp")
QUEUE_INITS = ("uniform", "normal")


class MoCoHead(nn.Sequential):
    """MoCo-v2 MLP head: Linear -> ReLU -> Linear."""

    def __init__(self, in_dim: int, out_dim: int = EMBED_DIM):
        super().__init__(nn.Linear(in_dim, in_dim), nn.ReLU(inplace=True), nn.Linear(in_dim, out_dim))


def build_head(kind: str, in_dim: int, out_dim: int = EMBED_DIM) -> nn.Sequential:
    if kind == "mlp":
        return MoCoHead(in_dim, out_dim)
    if kind == "linear":
        return nn.Sequential(nn.Linear(in_dim, out_dim))
    raise ValueError(f"MoCo head {kind!r}; expected one of {HEADS}")


def initial_queue(kind: str, size: int, dim: int) -> torch.Tensor:
    """The queue's first contents, drawn from torch's global RNG (see the module docstring)."""
    if kind == "uniform":
        bound = 1.0 / math.sqrt(dim / 3)
        return torch.rand(size, dim).mul_(2 * bound).add_(-bound)
    if kind == "normal":
        return F.normalize(torch.randn(size, dim), dim=1)
    raise ValueError(f"MoCo queue init {kind!r}; expected one of {QUEUE_INITS}")


def info_nce(query: torch.Tensor, key: torch.Tensor, queue: torch.Tensor,
             temperature: float = TEMPERATURE) -> torch.Tensor:
    """Mean InfoNCE: positive = matching key, negatives = queue rows. Inputs are L2-normalised."""
    positive = (query * key).sum(1, keepdim=True)
    negatives = query @ queue.t()
    logits = torch.cat([positive, negatives], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(query), dtype=torch.long, device=query.device))


def _without_buffer_updates(module: nn.Module, x: torch.Tensor):
    """module(x) with the module's parameters (gradients flow to them) but copies of its buffers, so BatchNorm's
    running statistics keep their values: nn.DataParallel's replicas on the other GPUs."""
    buffers = {name: b.clone() for name, b in module.named_buffers()}
    return torch.func.functional_call(module, buffers, (x,))


class MoCo(nn.Module):
    def __init__(self, backbone: ResNetBackbone, queue_size: int = QUEUE_SIZE, dim: int = EMBED_DIM,
                 temperature: float = TEMPERATURE, momentum: float = MOMENTUM, head: str = "linear",
                 queue_init: str = "uniform", bn_group_size: int = 0, shuffle_bn: bool = True,
                 ema_bn_stats: bool = False):
        super().__init__()
        self.backbone = backbone
        self.head = build_head(head, backbone.out_dim, dim)
        self.key_backbone = copy.deepcopy(backbone)
        self.key_head = copy.deepcopy(self.head)
        for p in [*self.key_backbone.parameters(), *self.key_head.parameters()]:
            p.requires_grad_(False)
        self.temperature, self.momentum = temperature, momentum
        self.bn_group_size, self.shuffle_bn, self.ema_bn_stats = int(bn_group_size), shuffle_bn, ema_bn_stats
        # The queue is a buffer so it is checkpointed with the model.
        self.register_buffer("queue", initial_queue(queue_init, queue_size, dim))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    def online_parameters(self):
        return [*self.backbone.parameters(), *self.head.parameters()]

    def bn_groups(self, batch: int) -> int:
        """How many BatchNorm groups a batch of `batch` images (this process's share) splits into."""
        return 1 if self.bn_group_size <= 0 else math.ceil(batch / self.bn_group_size)

    def shuffles(self, global_batch: int) -> bool:
        """Whether the keys of a global batch are computed in shuffled order (shuffle-BN with several groups)."""
        return self.shuffle_bn and self.bn_group_size > 0 and global_batch > self.bn_group_size

    def _embed(self, backbone, head, x):
        """L2-normalised embeddings in full precision; BatchNorm over groups of `bn_group_size` images, the running
        statistics from the first group only (see the module docstring)."""
        def embed(net, chunk):
            return head(net(chunk)[-1].mean((2, 3)))

        if self.bn_groups(len(x)) == 1:
            out = embed(backbone, x)
        else:
            chunks = x.split(self.bn_group_size)
            out = torch.cat([embed(backbone, chunks[0]),
                             *(embed(lambda c: _without_buffer_updates(backbone, c), c) for c in chunks[1:])])
        out = full_precision(out)
        with outside_autocast(out.device.type):
            return F.normalize(out, dim=1)

    def forward(self, query_view: torch.Tensor, key_view: torch.Tensor,
                unshuffle: torch.Tensor | None = None) -> torch.Tensor:
        """InfoNCE loss of the batch against the current queue, then enqueue the global batch's keys.

        `query_view`, `key_view`: this process's rows of the global batch; with `unshuffle` (shuffle-BN), the key
        rows are those of the randomly permuted global key batch and `unshuffle` is the inverse permutation.
        Call `momentum_update()` before each step (MoCo updates the key encoder before computing keys).
        """
        loss, keys = self.loss_and_keys(query_view, key_view, unshuffle)
        self.enqueue(keys)
        return loss

    def loss_and_keys(self, query_view: torch.Tensor, key_view: torch.Tensor,
                      unshuffle: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """`forward` without the queue update: the loss and the global batch's keys, for the caller to `enqueue`
        once the loss is differentiated. The compiled step (`compile`) needs this split: with the in-place queue
        update inside its graph, inductor's backward read the updated queue (gradients 2e-3 to 9e-2 off,
        bench/README.md); the loss only reads a copy of the queue, so when the update runs changes nothing else."""
        query = self._embed(self.backbone, self.head, query_view)
        with torch.no_grad():
            keys = ddp.all_gather_cat(self._embed(self.key_backbone, self.key_head, key_view))  # rank order
            if unshuffle is not None:
                keys = keys[unshuffle.to(keys.device)]
            key = keys[ddp.rank_slice(len(keys))]
        with outside_autocast(query.device.type):
            loss = info_nce(query, key, self.queue.clone(), self.temperature)
        return loss, keys

    def momentum_update(self) -> None:
        ema_update([(self.key_backbone, self.backbone), (self.key_head, self.head)], self.momentum,
                   self.ema_bn_stats)

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Overwrite the oldest queue rows with `keys` (ring buffer)."""
        size = len(self.queue)
        idx = (self.queue_ptr + torch.arange(len(keys), device=keys.device)) % size
        self.queue[idx] = keys.to(self.queue.dtype)
        self.queue_ptr.copy_((self.queue_ptr + len(keys)) % size)
