"""Tiny prepared stores and random-init stage-1 weights for LEAD tests (one place to build them)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lead_hsr.data.store import write_store
from lead_hsr.lead import stage1


def tiny_store(path: Path, n_train: int, size: int, n_test: int = 0, n_landmarks: int = 0, seed: int = 0) -> Path:
    """Random uint8 images (train rows first, then test); landmarks uniform in the central half when asked."""
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    points = rng.uniform(size / 4, 3 * size / 4, (n, n_landmarks, 2)).astype(np.float32) if n_landmarks else None
    table = pd.DataFrame({"file": [f"{i:03d}.png" for i in range(n)], "split": ["train"] * n_train + ["test"] * n_test})
    write_store(path, images, points, table, {"name": "tiny"})
    return path


def random_teacher(store: Path, out: Path, crop: int, bn_images: int = 8) -> Path:
    """Random-init resnet18 stage-1 weights (BatchNorm statistics from the store): a stage-2 teacher."""
    torch.set_num_threads(1)
    stage1.write_random_init(store, out, {"arch": "resnet18", "crop": crop, "device": "cpu"}, bn_images=bn_images)
    return out
