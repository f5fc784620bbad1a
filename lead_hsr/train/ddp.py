"""Multi-process data parallel training launched by `torchrun` (gloo on CPU, nccl on CUDA).

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; without them (a plain `python` run)
everything here degrades to a single process, so trainers call the same functions either way.
Only rank 0 writes checkpoints, logs and outputs (`is_main_process`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from lead_hsr.train.rng import batch_indices


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    return rank() == 0


def init_from_env(device: torch.device | str = "cpu") -> DistInfo:
    """Join the process group described by torchrun's environment variables; single process when absent."""
    env_world = int(os.environ.get("WORLD_SIZE", "1"))
    if env_world > 1 and not is_distributed():
        device = torch.device(device)
        backend = "nccl" if device.type == "cuda" else "gloo"
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if device.type == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend, init_method="env://")
    return DistInfo(rank=rank(), world_size=world_size(), local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def shutdown() -> None:
    if is_distributed():
        dist.destroy_process_group()


def wrap_model(model: torch.nn.Module, device: torch.device | str) -> torch.nn.Module:
    """DistributedDataParallel when running under torchrun, the model itself otherwise."""
    if not is_distributed():
        return model
    device = torch.device(device)
    device_ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def average_gradients(module: torch.nn.Module) -> None:
    """All-reduce-mean the gradients of a module that is not wrapped in DistributedDataParallel."""
    if not is_distributed():
        return
    for param in module.parameters():
        if param.grad is not None:
            dist.all_reduce(param.grad)
            param.grad /= world_size()


def rank_batch_indices(n_items: int, global_batch: int, step: int, seed: int) -> np.ndarray:
    """This rank's contiguous share of `batch_indices(n_items, global_batch, step, seed)` (DistributedSampler-like).

    The global batch is the same for any world size, so averaged DDP gradients equal single-process gradients.
    """
    ranks = world_size()
    if global_batch % ranks:
        raise ValueError(f"global batch {global_batch} must be divisible by the world size {ranks}")
    share = global_batch // ranks
    indices = batch_indices(n_items, global_batch, step, seed)
    return indices[rank() * share:(rank() + 1) * share]


def any_rank(flag: bool) -> bool:
    """True on every rank if `flag` is True on any rank (so all ranks stop at the same step)."""
    if not is_distributed():
        return flag
    tensor = torch.tensor([1.0 if flag else 0.0])
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item() > 0)


def barrier() -> None:
    if is_distributed():
        dist.barrier()
