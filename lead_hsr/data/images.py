"""Safe image decoding: every missing, corrupt or truncated image becomes an `InputError` naming the file.

PIL refuses truncated files at `load()` time ("image file is truncated") as long as the global
`PIL.ImageFile.LOAD_TRUNCATED_IMAGES` is False; we check that flag on every call because a silently
half-grey training image is exactly the "silent wrong number" the project forbids.

Preparation code that wants to survive a few broken files uses `ImageLoader(skip_corrupt=True)`,
which records every skipped file (and why) so it ends up in the store manifest instead of vanishing.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile

from lead_hsr.errors import InputError

_FIX_HINT = "re-download or re-extract the file from the dataset's official source"


def _refuse_truncated_images() -> None:
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True somewhere in this process; truncated images "
            "would be decoded silently. Unset it before preparing data."
        )


def decode_rgb(data: bytes, name: str | Path) -> np.ndarray:
    """Decode encoded image bytes (JPEG/PNG/WebP/...) to uint8 HxWx3; `name` is used in error messages."""
    _refuse_truncated_images()
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # forces the full decode: truncated data raises here
            rgb = image.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise InputError(
            f"{name}: cannot decode image ({error}); expected a complete JPEG/PNG/WebP file. Fix: {_FIX_HINT}."
        ) from error
    array = np.asarray(rgb, dtype=np.uint8)
    if array.ndim != 3 or array.shape[2] != 3 or array.shape[0] == 0 or array.shape[1] == 0:
        raise InputError(f"{name}: decoded to shape {array.shape}, expected H x W x 3. Fix: {_FIX_HINT}.")
    return array


def load_rgb(path) -> np.ndarray:
    """Load an image file as uint8 HxWx3, raising `InputError` naming the file if missing/corrupt/truncated.

    `path` is a str / os.PathLike, or any path-like with `is_file()` and `read_bytes()` (a `zipfile.Path`)."""
    path = Path(path) if isinstance(path, (str, os.PathLike)) else path
    if not path.is_file():
        raise InputError(f"{path}: image file not found. Fix: check the dataset root, or {_FIX_HINT}.")
    return decode_rgb(path.read_bytes(), path)


@dataclass
class ImageLoader:
    """Loads images for a preparation run; with `skip_corrupt=True` broken files are recorded, not raised.

    `load` returns None for a skipped file; the caller drops that item and `skipped` lists
    `{"file": ..., "reason": ...}` entries for the manifest.
    """

    skip_corrupt: bool = False
    skipped: list[dict[str, str]] = field(default_factory=list)

    def load(self, path, label: str | None = None) -> np.ndarray | None:
        try:
            return load_rgb(path)
        except InputError as error:
            if not self.skip_corrupt:
                raise
            self.skipped.append({"file": str(label if label is not None else path), "reason": str(error)})
            return None
