"""Device and mixed-precision selection: the same code runs on CPU (tests, demo) and CUDA (cluster)."""
from __future__ import annotations

import contextlib
import os

import torch

from lead_hsr.errors import InputError

DEVICE_CHOICES = ("auto", "cpu", "cuda")
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "none": None}


def pick_device(choice: str = "auto") -> torch.device:
    """"auto" -> CUDA when available else CPU; "cuda" fails clearly when there is no GPU."""
    if choice not in DEVICE_CHOICES:
        raise InputError(f"device setting: expected one of {DEVICE_CHOICES}, got {choice!r}; fix the config value")
    if choice == "cuda" and not torch.cuda.is_available():
        raise InputError('device setting "cuda": no CUDA device is visible; use "auto" or "cpu", '
                         "or run on a GPU node")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda":  # under torchrun each process drives the GPU of its LOCAL_RANK
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
    return torch.device("cpu")


def _check_dtype(dtype: str) -> None:
    if dtype not in AUTOCAST_DTYPES:
        raise InputError(f"precision setting: expected one of {tuple(AUTOCAST_DTYPES)}, got {dtype!r}; "
                         "fix the config value")


def autocast_for(device: torch.device | str, dtype: str = "none"):
    """Autocast context in bf16/fp16 on the device's type; a no-op for "none".

    The precision is honoured on every device, CPU included (slowly: CPU autocast runs the matmuls and convs in
    bf16/fp16), so the paper's precision path runs in the tests and on any machine; the CPU configurations that
    must stay exact (demo, tests) say "none"."""
    _check_dtype(dtype)
    device = torch.device(device)
    if AUTOCAST_DTYPES[dtype] is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=AUTOCAST_DTYPES[dtype])


def full_precision(x: torch.Tensor) -> torch.Tensor:
    """Undo autocast's (or a float16 block's) reduced precision before a loss: half and bfloat16 -> float32;
    float32 and float64 (tests compare implementations in float64) unchanged."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def outside_autocast(device_type: str):
    """A context in which autocast is off, so a loss computed from `full_precision` inputs stays in full precision
    (CPU autocast runs matmul and returns cross-entropy in bf16/fp16). A no-op where autocast is off or unsupported
    (meta)."""
    if device_type in ("cpu", "cuda") and torch.is_autocast_enabled(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


def grad_scaler_for(device: torch.device | str, dtype: str = "none") -> torch.amp.GradScaler:
    """GradScaler that is active only where it is needed (fp16 autocast, on any device: float16 gradients
    underflow without loss scaling); disabled scalers pass gradients through."""
    _check_dtype(dtype)
    device = torch.device(device)
    return torch.amp.GradScaler(device.type, enabled=dtype == "fp16")


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype):
    """torch's default float dtype inside the block (networks built and tensors drawn in it), restored after even
    on error: the float64 comparisons of tests and benches (DESIGN §9) build whole trainers inside one."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)
