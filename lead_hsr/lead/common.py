"""Shared by stage 1 and stage 2: option resolution, step counts, the lr schedule and training batches."""

from __future__ import annotations

import math

import numpy as np
import torch

from lead_hsr.data.geometry import normalize_images
from lead_hsr.data.store import open_store
from lead_hsr.errors import InputError
from lead_hsr.lead.augment import center_crop
from lead_hsr.lead.backbones import recompute_batchnorm_stats
from lead_hsr.train import batch_indices


def resolve_options(given: dict | None, defaults: dict, where: str) -> dict:
    given = dict(given or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise InputError(f"{where}: unknown option(s) {unknown}; expected a subset of {sorted(defaults)}. "
                         "Fix the spelling in the config (config/README.md lists every key).")
    return {**defaults, **given}


@torch.no_grad()
def ema_update(pairs, rate: float, bn_stats: bool) -> None:
    """target <- rate * target + (1 - rate) * online for each (target, online) module pair: the parameters, and
    with `bn_stats` also the floating-point buffers (BatchNorm running statistics). Without it the target's
    BatchNorm statistics are its own running averages (BYOL, MoCo, byol-pytorch, lightly, ContrastLandmarks);
    in training mode BatchNorm normalises with batch statistics, so this changes only the target's buffers."""
    targets, onlines = [], []
    for target_net, online_net in pairs:
        online = dict(online_net.named_parameters())
        for name, value in target_net.named_parameters():
            targets.append(value)
            onlines.append(online[name])
        if bn_stats:
            online_buffers = dict(online_net.named_buffers())
            for name, value in target_net.named_buffers():
                if value.is_floating_point():
                    targets.append(value)
                    onlines.append(online_buffers[name])
    torch._foreach_lerp_(targets, onlines, 1 - rate)


def total_steps(options: dict, n_items: int, where: str) -> int:
    """`steps` when given, else ceil(epochs * n_items / batch)."""
    if options.get("steps") is not None:
        steps = int(options["steps"])
    else:
        steps = math.ceil(float(options["epochs"]) * n_items / int(options["batch"]))
    if steps < 1:
        raise InputError(f"{where}: the run would take {steps} steps; set `steps` or `epochs` > 0.")
    return steps


def cosine_lr(base_lr: float, step: int, total: int) -> float:
    """Cosine decay from base_lr to 0 over `total` steps (thesis §3.3: "learning rate ... cosine decay")."""
    return base_lr * 0.5 * (1 + math.cos(math.pi * step / max(total, 1)))


def set_lr(optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def training_images(store_path, split: str, crop: int, where: str):
    """The store and the row indices of its `split`, checked to be non-empty and at least `crop` pixels."""
    store = open_store(store_path)
    indices = store.split(split)
    if len(indices) == 0:
        raise InputError(f"{store_path}: split {split!r} is empty; expected training images for {where}.")
    height, width = store.images.shape[1:3]
    if crop > min(height, width):
        raise InputError(f"{store_path}: images are {height}x{width}, smaller than the crop {crop}; set `crop` "
                         "to at most the prepared size (paper: 96 of 136, demo: 64 of 88).")
    return store, indices


@torch.no_grad()
def calibrate_batchnorm(model: torch.nn.Module, store, indices: np.ndarray, crop: int, images: int, seed: int,
                        device) -> None:
    """Recompute `model`'s BatchNorm statistics on central crops of `images` of the training images.

    A random-init baseline is only fair with the statistics of the data it is evaluated on (DESIGN §4.4)."""
    rows = np.sort(np.random.default_rng(seed).permutation(indices)[:images])
    recompute_batchnorm_stats(model, (center_crop(normalize_images(store.images[rows[i:i + 64]], device), crop)
                                      for i in range(0, len(rows), 64)))


def load_batch(store, indices: np.ndarray, step: int, batch: int, seed: int, device) -> torch.Tensor:
    """uint8 B x H x W x 3 batch of `step` (deterministic in (seed, step)), on `device`."""
    rows = indices[batch_indices(len(indices), batch, step, seed)]
    return torch.from_numpy(np.ascontiguousarray(store.images[np.sort(rows)])).to(device)
