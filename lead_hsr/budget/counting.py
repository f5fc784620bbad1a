"""FLOPs and memory of one call of a function, counted by PyTorch on any device (meta is cheapest).

- FLOPs: what `FlopCounterMode` counts (2 x multiply-adds of matmul/conv/attention, forward and backward);
  elementwise ops, optimizer updates, data loading and augmentation are not counted.
- Memory per call: bytes of the tensors autograd saves for backward (`saved_tensors_hooks`, parameters
  excluded), at the precision of the measured dtype (float32 here; bf16 autocast halves most of it).
  Fixed memory (`state_bytes`): parameters + buffers + gradients + optimizer state (Adam: 2 moments, SGD: 1),
  float32. Peak per GPU ~= fixed + per-GPU batch x per-sample (temporaries of the backward pass are not counted).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode


class _Global:
    """Stands in for FlopCounterMode's module tracker: its backward hooks break autograd.grad on leaf inputs
    (R1 and path-length penalties), and only the global count is needed."""
    parents = ("Global",)

    def __enter__(self):
        return self

    def __exit__(self, *args):
        return False


class GlobalFlopCounter(FlopCounterMode):
    """`FlopCounterMode` (same FLOP formulas) without per-module attribution."""

    def __init__(self):
        super().__init__(display=False)
        self.mod_tracker = _Global()


@contextlib.contextmanager
def _meta_scalars():
    """Let `.item()` / `float()` of a meta tensor return 0.0 (trainers log scalars, meta tensors hold none) and
    boolean masks select every element (the regressor drops absent landmarks; none are absent here)."""
    from torch.fx.experimental import _config as fx_config
    item, to_float = torch.Tensor.item, torch.Tensor.__float__
    torch.Tensor.item = lambda self: 0.0 if self.is_meta else item(self)
    torch.Tensor.__float__ = lambda self: 0.0 if self.is_meta else to_float(self)
    try:
        with fx_config.patch(meta_nonzero_assume_all_nonzero=True):
            yield
    finally:
        torch.Tensor.item, torch.Tensor.__float__ = item, to_float


@dataclass(frozen=True)
class Measure:
    flops: float        # per call of the measured function
    saved_bytes: float  # activations saved for backward per call (parameters excluded)


def measure(fn, parameters=()) -> Measure:
    """FLOPs and saved-for-backward bytes of one call of `fn` (any device; meta is cheapest)."""
    param_ids = {id(p) for p in parameters}
    saved = [0]

    def pack(t):
        base = t._base if t._base is not None else t
        if id(t) not in param_ids and id(base) not in param_ids:
            saved[0] += t.numel() * t.element_size()
        return t

    with _meta_scalars(), GlobalFlopCounter() as counter, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return Measure(float(counter.get_total_flops()), float(saved[0]))


def state_bytes(modules, optimizer_moments: int) -> float:
    """float32 parameters + buffers of `modules`, plus gradients and optimizer moments of trainable ones."""
    total = 0
    for module in modules:
        for p in module.parameters():
            total += p.numel() * 4 * (1 + (1 + optimizer_moments) * p.requires_grad)
        total += sum(b.numel() * 4 for b in module.buffers())
    return float(total)
