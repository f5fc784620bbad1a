"""Atomic writes for training code: the generic helpers of `lead_hsr.atomic` plus torch checkpoints and the
options JSON every run writes beside its outputs."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from lead_hsr.atomic import (atomic_copy, atomic_write_bytes, atomic_write_json, atomic_write_text,  # noqa: F401
                             atomic_write_with)


def atomic_save_torch(obj: Any, path: str | os.PathLike) -> Path:
    """torch.save `obj` atomically. Keep `obj` to tensors/containers/primitives so torch.load(weights_only=True) works."""
    return atomic_write_with(path, lambda handle: torch.save(obj, handle))


def write_options_json(path: str | os.PathLike, options: dict) -> Path:
    """Write a run's fully resolved options beside its outputs (every number must be traceable to its settings)."""
    if not isinstance(options, dict):
        raise TypeError(f"options must be a dict, got {type(options).__name__}")
    return atomic_write_json(options, path)
