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


# What a meta tensor's Python scalar reads as: meta tensors hold no values, the trainers' step code reads a few.
META_SCALARS = {
    "item": 0.0,        # logged scalars (losses, ADA p, path-length mean)
    "__float__": 0.0,
    "__int__": 1,       # StyleGAN2-ADA's style-mixing cutoff: drawn in [1, num_ws)
    "__bool__": True,   # coins (style mixing, p = 0.9): the costlier side, a second mapping pass
}


@contextlib.contextmanager
def _meta_scalars():
    """Let `.item()`, `float()`, `int()` and `bool()` of a meta tensor return `META_SCALARS` (trainers log and
    branch on scalars, meta tensors hold none) and boolean masks select every element (the regressor drops absent
    landmarks; none are absent here)."""
    from torch.fx.experimental import _config as fx_config
    originals = {name: getattr(torch.Tensor, name) for name in META_SCALARS}

    def stand_in(name):
        original, value = originals[name], META_SCALARS[name]
        return lambda self: value if self.is_meta else original(self)

    for name in META_SCALARS:
        setattr(torch.Tensor, name, stand_in(name))
    try:
        with fx_config.patch(meta_nonzero_assume_all_nonzero=True):
            yield
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


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
