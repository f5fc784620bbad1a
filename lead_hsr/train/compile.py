"""Compiled training steps (the trainers' option `compile`): how a module or a loss is put through torch.compile.

One home for the choices every trainer shares:
- backend `inductor` (C++ on a CPU, Triton on CUDA), static shapes (every trainer's batch is fixed), and
  inductor's `fallback_random`: random ops inside a compiled graph (G's noise, dropout) call torch's own generator
  in eager order, so a compiled step draws the same numbers as an eager one and leaves the same RNG state;
- the trainers keep the eager module for checkpoints and saved weights (`state_dict` keys without
  torch.compile's `_orig_mod.` prefix) and call the compiled handle, which shares its parameters and buffers;
- double backward (R1, path length: `autograd.grad(create_graph=True)`) does not run through a compiled graph in
  torch 2.14.1 ("torch.compile with aot_autograd does not currently support double backward", or an error about
  donated buffers: AOTAutograd's compiled backward has no graph of its own to differentiate), so the GAN's
  regularisation phases call the eager modules (`GanTrainer.g_reg`, `d_reg`; tests/train/test_compile.py pins it);
- random draws inside a compiled graph should be drawn by shape (`torch.randn(shape)`, as the GAN's noise): a
  `randn_like(y)` follows y's memory layout, which inductor may pick otherwise than eager (channels-last convs).
Compiling changes no option that a step's numbers depend on beyond float rounding (fused kernels sum in another
order), so `compile` is not part of a run's identity: an eager run resumes compiled and back.
DDP: the trainers average gradients themselves (`ddp.average_gradients`, outside the compiled graphs), so compiled
modules run under torchrun unchanged, `ddp.GlobalBatchNorm`'s differentiable all-reduce inside the compiled forward
included (tests/lead/test_stage_ddp.py: two compiled gloo processes end where one eager process ends).
"""
from __future__ import annotations

import os
from typing import Callable

import torch

from lead_hsr.errors import InputError

COMPILE_BACKEND = "inductor"   # torch's default backend: generated C++ (CPU) / Triton (CUDA) kernels
# Another torch.compile backend for a run, e.g. "aot_eager": the same captured graphs (forward and backward) run by
# eager kernels, no code generation (the tests: inductor costs tens of CPU-seconds per graph); "eager": dynamo only
BACKEND_ENV = "LEAD_HSR_COMPILE_BACKEND"
INDUCTOR_OPTIONS = {"fallback_random": True}   # random ops through torch's generator: eager's draws, eager's order


def check_compile_option(value, where: str) -> bool:
    """The `compile` option must be a boolean (a string such as "false" would read as true)."""
    if not isinstance(value, bool):
        raise InputError(f"{where}: compile={value!r}; expected true or false (torch.compile of the training step)")
    return value


def compiled(fn: torch.nn.Module | Callable, enabled: bool = True):
    """`fn` (a module or a function of modules) through torch.compile when `enabled`, else `fn` itself.

    A compiled module shares the parameters and buffers of `fn`: keep using `fn` for state_dict, optimizers
    and anything that differentiates twice."""
    if not enabled:
        return fn
    backend = compile_backend()
    options = INDUCTOR_OPTIONS if backend == "inductor" else None
    return torch.compile(fn, backend=backend, dynamic=False, options=options)


def compile_backend() -> str:
    """`$LEAD_HSR_COMPILE_BACKEND` if set, else COMPILE_BACKEND."""
    return os.environ.get(BACKEND_ENV) or COMPILE_BACKEND
