"""Shared helpers of the synthetic writers: seeding, image encoding, atomic output, count checks."""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

from lead_hsr.errors import InputError

JPEG_QUALITY = 95  # close to the quality of the real datasets' JPEGs; keeps compression artefacts small
WEBP_QUALITY = 90  # LSUN stores WebP bytes in its LMDB
PNG_COMPRESS_LEVEL = 3  # lossless either way; a low level keeps writing fast
MANIFEST_NAME = "_synthetic.json"  # written into every synthetic root; readers ignore it


def image_rng(seed: int, tag: str, index: int) -> np.random.Generator:
    """The rng for one item: depends only on (seed, tag, index), so an image never depends on counts or order."""
    return np.random.default_rng([int(seed), zlib.crc32(tag.encode()), int(index)])


def save_jpeg(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, format="JPEG", quality=JPEG_QUALITY)


def save_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, format="PNG", compress_level=PNG_COMPRESS_LEVEL)


def encode_webp(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="WEBP", quality=WEBP_QUALITY)
    return buffer.getvalue()


def write_text(path: Path, lines: list[str], newline: str = "\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        handle.write("".join(line + newline for line in lines))


def savemat_deterministic(path: Path, variables: dict) -> None:
    """scipy.io.savemat, with the header's creation timestamp replaced by fixed text (same seed -> same bytes)."""
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, variables, do_compression=False, oned_as="row")
    data = bytearray(buffer.getvalue())
    data[:116] = b"MATLAB 5.0 MAT-file, written by lead_hsr.data.synthetic".ljust(116, b" ")  # 116-byte text field
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(data))


def check_counts(name: str, counts: dict, allowed: tuple[str, ...]) -> dict[str, int]:
    """Validate a `counts` mapping (keys from `allowed`, non-negative ints); missing keys count as 0."""
    unknown = sorted(set(counts) - set(allowed))
    if unknown:
        raise InputError(f"synthetic dataset {name!r}: unknown count keys {unknown}; expected keys among {list(allowed)}. "
                         f"Fix the `counts` of {name!r} in the synthetic data config.")
    checked = {}
    for key in allowed:
        value = counts.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise InputError(f"synthetic dataset {name!r}: count {key!r} = {value!r}; expected a non-negative integer. "
                             f"Fix the `counts` of {name!r} in the synthetic data config.")
        checked[key] = int(value)
    return checked


def allocate(total: int, weights: list[float]) -> list[int]:
    """Split `total` into parts proportional to `weights` (largest remainder), summing exactly to `total`."""
    weights = np.asarray(weights, float)
    exact = total * weights / weights.sum()
    parts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - parts), kind="stable")[: total - parts.sum()]:
        parts[i] += 1
    return [int(p) for p in parts]


@contextmanager
def atomic_directory(root: Path):
    """Yield a fresh temporary sibling of `root`; on success it replaces `root`, on failure it is deleted.

    A killed run leaves only a hidden `.<name>.partial-*` directory, never a half-written `root`."""
    root = Path(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{root.name}.partial-", dir=root.parent))
    try:
        yield temporary
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    os.chmod(temporary, 0o755)  # mkdtemp creates 0700
    if root.exists():
        old = root.with_name(f".{root.name}.old-{os.getpid()}")
        os.rename(root, old)
        os.rename(temporary, root)
        shutil.rmtree(old)
    else:
        os.rename(temporary, root)


def write_manifest(directory: Path, name: str, seed: int, image_size, counts: dict) -> None:
    manifest = dict(dataset=name, seed=int(seed), image_size=image_size, counts=counts,
                    generator="lead_hsr.data.synthetic")
    (directory / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")

