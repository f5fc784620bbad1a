"""FFHQ raw layout (`images1024x1024/NNNNN/NNNNN.png`) and the StyleGAN2-ADA limited-data subsets.

Subset choice (how ADA's `train.py --subset=N` picks its images, which is what "FFHQ-1k/2k/10k" mean in the
ADA and HSR papers): take the image indices 0..69,999 in file order, shuffle them with
`numpy.random.RandomState(seed)` (ADA's default seed is 0), keep the first N and sort them again.
"140k" is all 70k images; the doubling by horizontal flips happens at training time (the store records the
flag as `options.xflip`). The thesis (Sec. 4.3.1) x-flips every GAN training set; that is the trainer's
mirror setting, not a property of the prepared store.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from lead_hsr.data.layouts import FFHQ_IMAGE_DIR, raw_root_fix
from lead_hsr.errors import InputError

FFHQ_COUNT = 70_000  # NVlabs/ffhq-dataset README: 70,000 images
# subset name -> (images kept, x-flip doubling at training time): the ADA paper's limited-data FFHQ subsets
# and the thesis's FFHQ-1k/2k/10k (Table 4.5) and FFHQ-140k = 70k + x-flips (Table 4.3)
FFHQ_SUBSETS = {
    "1k": (1_000, False),
    "2k": (2_000, False),
    "10k": (10_000, False),
    "70k": (None, False),  # None: every image found (checked against FFHQ_COUNT)
    "140k": (None, True),
}
_IMAGE_NAME = re.compile(r"^(\d{5})\.png$")


def list_ffhq_images(root: Path) -> list[str]:
    """Relative paths of every `images1024x1024/*/NNNNN.png` under `root`, sorted by image number."""
    image_dir = Path(root) / FFHQ_IMAGE_DIR
    if not image_dir.is_dir():
        raise InputError(
            f"{image_dir}: folder not found; expected the FFHQ layout {FFHQ_IMAGE_DIR}/NNNNN/NNNNN.png. "
            f"{raw_root_fix('ffhq')}"
        )
    numbered = []
    for path in image_dir.glob("*/*.png"):
        match = _IMAGE_NAME.match(path.name)
        if match is None:
            raise InputError(
                f"{path}: unexpected file name; expected NNNNN.png (5 digits) as in the official FFHQ layout. "
                "Fix: remove stray files from the image folder."
            )
        numbered.append((int(match.group(1)), path.relative_to(root).as_posix()))
    return [relative for _, relative in sorted(numbered)]


def subset_indices(total: int, size: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of a `size`-image subset of `total` images, chosen as ADA's `--subset` does."""
    if not 0 < size <= total:
        raise InputError(f"FFHQ subset of {size} images requested from {total} images found; expected 0 < size <= total.")
    order = np.arange(total, dtype=np.int64)
    np.random.RandomState(seed).shuffle(order)
    return np.sort(order[:size])


def parse_subset(subset: str | int) -> tuple[int | None, bool]:
    """(images kept or None for all, x-flip flag) for a subset name ('1k', ..., '140k') or an image count
    (a demo-scale config gives counts, e.g. 100, for its small synthetic FFHQ tree; no x-flip flag)."""
    if isinstance(subset, int) and not isinstance(subset, bool) and subset > 0:
        return subset, False
    if subset not in FFHQ_SUBSETS:
        raise InputError(
            f"FFHQ subset {subset!r} is not known; expected one of {sorted(FFHQ_SUBSETS)} or a positive image "
            "count. Fix: set the dataset option 'subset' in the config."
        )
    return FFHQ_SUBSETS[subset]
