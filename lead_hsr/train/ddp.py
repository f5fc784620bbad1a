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


# Two processes vs one with the same global batch, both in float64: the largest per-tensor relative difference
# measured on CPU/gloo was 7e-14 (BYOL), 3e-14 (MoCo), 1.6e-9 (LEAD: Adam on a near-zero-gradient bias); deliberately
# broken runs (per-process BatchNorm statistics, summed instead of averaged gradients, no all-reduce) gave 1.9e-3
# to 2.8 (tests/lead/test_stage_ddp.py). The tolerance sits between, with margins >= 60x both ways.
EQUIVALENCE_TOLERANCE = 1e-7


def relative_difference(reference: torch.Tensor, other: torch.Tensor) -> float:
    """||other - reference|| / ||reference|| in float64 (a floor of 1e-12 on the norm); for integer tensors
    (BatchNorm's num_batches_tracked) 0 when equal, inf otherwise. How process counts are compared."""
    if not reference.is_floating_point():
        return 0.0 if torch.equal(reference, other) else float("inf")
    reference, other = reference.detach().double().cpu(), other.detach().double().cpu()
    return float((other - reference).norm() / reference.norm().clamp_min(1e-12))


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def rank_slice(global_batch: int) -> slice:
    """The rows of a global batch this rank owns (contiguous shares, as `rank_batch_indices`)."""
    ranks = world_size()
    if global_batch % ranks:
        raise ValueError(f"global batch {global_batch} must be divisible by the world size {ranks}")
    share = global_batch // ranks
    return slice(rank() * share, (rank() + 1) * share)


def all_gather_cat(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate (dim 0, rank order) a tensor of the same shape from every rank; no gradient. Identity alone."""
    if not is_distributed():
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


def mean_over_ranks(value: float) -> float:
    """The mean of a Python scalar over ranks (for logging world-size independent losses)."""
    if not is_distributed():
        return value
    tensor = torch.tensor([float(value)], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor)
    return float(tensor.item()) / world_size()


class GlobalBatchNorm(torch.nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are those of the global batch (all ranks), on any device.

    torch.nn.SyncBatchNorm only runs on GPUs; this is the same computation for gloo/CPU runs: per-channel sums
    (then sums of squared deviations from the global mean) are all-reduced with a differentiable all-reduce, so
    forward and backward equal one process seeing the whole batch (up to float summation order). Single
    process or eval mode: plain BatchNorm.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_distributed()):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce  # differentiable: backward all-reduces grads

        channels = x.shape[1]
        dims = [0, *range(2, x.dim())]
        shape = [1, channels] + [1] * (x.dim() - 2)
        # two passes (mean, then squared deviations) as BatchNorm itself: E[x^2] - mean^2 loses the variance of
        # nearly constant channels to cancellation, and BatchNorm divides by it
        stats = all_reduce(torch.cat([x.sum(dims), x.new_full((1,), float(x.numel() // channels))]))
        count = stats[-1]
        mean = stats[:channels] / count
        centred = x - mean.view(shape)
        var = all_reduce((centred * centred).sum(dims)) / count
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                unbiased = var * (count / (count - 1).clamp_min(1))
                self.running_mean.lerp_(mean.detach(), momentum)
                self.running_var.lerp_(unbiased.detach(), momentum)
        y = centred * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def sync_batchnorm(module: torch.nn.Module, device: torch.device | str) -> torch.nn.Module:
    """Under torchrun, BatchNorm layers normalise with global-batch statistics (torch.nn.SyncBatchNorm on CUDA,
    `GlobalBatchNorm` elsewhere), so DDP training equals one process with the same global batch. Parameter and
    buffer names are unchanged (checkpoints and saved weights load into plain BatchNorm). No-op alone."""
    if not is_distributed():
        return module
    if torch.device(device).type == "cuda":
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _convert(module)


def _convert(module: torch.nn.Module) -> torch.nn.Module:
    if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and not isinstance(module, GlobalBatchNorm):
        new = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                              module.track_running_stats).to(next(iter(module.state_dict().values())).device)
        with torch.no_grad():
            if module.affine:
                new.weight, new.bias = module.weight, module.bias  # the same Parameter objects
            if module.track_running_stats:
                new.running_mean, new.running_var = module.running_mean, module.running_var
                new.num_batches_tracked = module.num_batches_tracked
        new.train(module.training)
        return new
    for name, child in module.named_children():
        module.add_module(name, _convert(child))
    return module


# ---------------------------------------------------------------- launching from a workflow job

def processes_for(gpus_requested: int) -> int:
    """Processes a job should run: one per GPU it was given (Slurm `--gpus=N` sets CUDA_VISIBLE_DEVICES), at
    least one; a CPU-only machine always runs a single process."""
    if not torch.cuda.is_available():
        return 1
    return max(1, min(int(gpus_requested), torch.cuda.device_count()))


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _spawned(local_rank: int, nprocs: int, port: int, fn, args: tuple) -> None:
    os.environ.update(RANK=str(local_rank), LOCAL_RANK=str(local_rank), WORLD_SIZE=str(nprocs),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    try:
        fn(*args)
    finally:
        shutdown()


def launch(fn, nprocs: int, *args) -> None:
    """Run `fn(*args)` in `nprocs` processes wired as torchrun would (single node), or in this process if 1.

    What a Snakemake `script:` job uses instead of torchrun, so a rule that asks for 2 GPUs trains on both.
    `fn` must be importable (a module-level function): it is pickled into the worker processes. A worker
    that stops itself with a non-zero code (e.g. 75, the time-budget/SIGTERM stop with a checkpoint) makes
    this process exit with the same code, so Snakemake's retry logic sees it unchanged.
    """
    if nprocs <= 1:
        fn(*args)
        return
    import torch.multiprocessing as mp

    try:
        mp.spawn(_spawned, args=(nprocs, _free_port(), fn, args), nprocs=nprocs, join=True)
    except mp.ProcessExitedException as err:
        raise SystemExit(err.exit_code) from err
