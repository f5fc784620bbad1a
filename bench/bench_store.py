"""Benchmark: reading prepared images from the store vs decoding the same images from JPEG files.

Both sides read the same N images (136 x 136, the paper's prepared size) in the same shuffled order, from files
just written (so in the page cache for both): the ratio isolates decoding. Two passes are timed, as two training
epochs: the first includes the memmap's page faults in a fresh mapping, the second is steady state.
Goal: store >= 20x faster.

    .venv/bin/python bench/bench_store.py [--n 2000] [--size 136] [--batch 64]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from lead_hsr.data.images import load_rgb
from lead_hsr.data.store import open_store, write_store


def make_images(n: int, size: int, seed: int = 0) -> np.ndarray:
    """Smooth random images (JPEG-friendly, like photos) rather than white noise."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (n, size // 8, size // 8, 3), dtype=np.uint8)
    return np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR)) for im in small])


def bench_jpeg(paths: list[Path], order: np.ndarray) -> float:
    start = time.perf_counter()
    for index in order:
        load_rgb(paths[index])
    return len(order) / (time.perf_counter() - start)


def bench_store(path: Path, order: np.ndarray, batch: int, passes: int = 2) -> list[float]:
    """images/s of each pass over the store (opened once, as a training run does)."""
    images = open_store(path).images
    rates = []
    for _ in range(passes):
        start = time.perf_counter()
        for first in range(0, len(order), batch):
            np.ascontiguousarray(images[np.sort(order[first:first + batch])])  # a training batch, copied out
        rates.append(len(order) / (time.perf_counter() - start))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--size", type=int, default=136)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    images = make_images(args.n, args.size)
    order = np.random.default_rng(1).permutation(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = []
        for i, image in enumerate(images):
            paths.append(tmp / "jpg" / f"{i:06d}.jpg")
            paths[-1].parent.mkdir(exist_ok=True)
            Image.fromarray(image).save(paths[-1], "JPEG", quality=95)
        table = pd.DataFrame({"file": [p.name for p in paths], "split": "train"})
        write_store(tmp / "store", images, None, table, {"name": "bench"})
        jpeg_rate = max(bench_jpeg(paths, order) for _ in range(2))
        first_pass, steady = bench_store(tmp / "store", order, args.batch)
    print(f"images: {args.n} x {args.size}x{args.size}x3, batch {args.batch}")
    print(f"JPEG decode (load_rgb), best of 2 passes: {jpeg_rate:10.0f} images/s")
    print(f"prepared store, first pass (page faults): {first_pass:10.0f} images/s")
    print(f"prepared store, second pass (steady):     {steady:10.0f} images/s")
    print(f"ratio store / JPEG: first pass {first_pass / jpeg_rate:.1f}x, steady {steady / jpeg_rate:.1f}x "
          "(goal >= 20x)")


if __name__ == "__main__":
    main()
