"""Atomic writes for training code: the generic helpers of `lead_hsr.atomic` plus torch checkpoints and the
options JSON every run writes beside its outputs."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from lead_hsr.atomic import (atomic_copy, atomic_write_bytes, atomic_write_json, atomic_write_text,  # noqa: F401
                             atomic_write_with)
from lead_hsr.errors import InputError


def atomic_save_torch(obj: Any, path: str | os.PathLike) -> Path:
    """torch.save `obj` atomically. Keep `obj` to tensors/containers/primitives so torch.load(weights_only=True) works."""
    return atomic_write_with(path, lambda handle: torch.save(obj, handle))


def load_torch_file(path: str | os.PathLike, expected: str, fix: str) -> Any:
    """`torch.load(path, weights_only=True)` on the CPU; any failure (a truncated or foreign file: pickle, zip and
    weights_only errors differ by torch version, all mean "not ours") becomes the project's InputError naming the
    file, what was `expected` there and how to `fix` it."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - see the docstring
        raise InputError(f"{path}: not a readable torch file ({type(error).__name__}: {str(error)[:200]}); "
                         f"expected {expected}; {fix}") from None


def write_options_json(path: str | os.PathLike, options: dict) -> Path:
    """Write a run's fully resolved options beside its outputs (every number must be traceable to its settings)."""
    if not isinstance(options, dict):
        raise TypeError(f"options must be a dict, got {type(options).__name__}")
    return atomic_write_json(options, path)
