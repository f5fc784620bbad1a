"""A look at a prepared store before anything trains on it: sample images with their landmarks drawn."""
from pathlib import Path

import numpy as np

from lead_hsr.data.store import open_store
from lead_hsr.report.figures import landmark_grid

PREVIEW_IMAGES = 16


def store_preview(store_path: Path, out_png: Path, count: int = PREVIEW_IMAGES, seed: int = 0) -> Path:
    """Evenly spread (seeded) sample of the store, ground-truth landmarks in red, split in the title."""
    store = open_store(store_path)
    n = len(store.images)
    pick = np.sort(np.random.default_rng(seed).choice(n, size=min(count, n), replace=False))
    landmarks = store.landmarks[pick] if store.landmarks.shape[1] else None
    titles = [f"{store.table['split'].iloc[i]} #{i}" for i in pick]
    return landmark_grid(np.asarray(store.images[pick]), landmarks, out_png, titles=titles)
