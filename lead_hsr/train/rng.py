"""Seeding, RNG state capture/restore (checkpoint-safe under weights_only=True) and deterministic batches."""
from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and every CUDA device) global RNGs."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng_state() -> dict:
    """Global RNG states as tensors/ints/lists only, so torch.load(weights_only=True) can read them back."""
    kind, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state((np_state["kind"], np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached_gaussian"]))
    py_state = state["python"]
    random.setstate((py_state["version"], tuple(py_state["internal"]), py_state["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _epoch_permutation(n_items: int, epoch: int, seed: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n_items)


def batch_indices(n_items: int, batch: int, step: int, seed: int) -> np.ndarray:
    """Indices of the `batch` items used at `step`: a stream of epoch-wise permutations seeded by (seed, epoch).

    Depends only on its arguments, so a resumed run sees exactly the batches an uninterrupted run sees.
    Batches run on across epoch boundaries (no item is dropped; every epoch visits every item once).
    """
    if n_items <= 0 or batch <= 0 or step < 0:
        raise ValueError(f"batch_indices needs n_items > 0, batch > 0, step >= 0; got {n_items}, {batch}, {step}")
    start = step * batch
    epoch, offset = divmod(start, n_items)
    parts, needed = [], batch
    while needed > 0:
        chunk = _epoch_permutation(n_items, epoch, seed)[offset:offset + needed]
        parts.append(chunk)
        needed -= len(chunk)
        epoch, offset = epoch + 1, 0
    return np.concatenate(parts).astype(np.int64)


def step_generator(seed: int, step: int, stream: int = 0, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch.Generator seeded by (seed, step, stream): randomness that is resume-safe without global state."""
    mixed = np.random.SeedSequence([seed, step, stream]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator(device=device).manual_seed(int(mixed) & (2**63 - 1))
