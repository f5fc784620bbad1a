"""MAFL split lists (as used by DVE's MAFLAligned): `training.txt` (19,000) and `testing.txt` (1,000),
one CelebA image name per line; landmarks come from CelebA's list_landmarks_align_celeba.txt."""

from __future__ import annotations

import re

from lead_hsr.data.layouts import MAFL_SPLIT_FILES
from lead_hsr.data.readers.common import check_unique, malformed, read_lines, require_file, require_root

DATASET = "mafl"
LAYOUT = "training.txt and testing.txt, one CelebA file name (e.g. 000001.jpg) per line"
SPLIT_FILES = MAFL_SPLIT_FILES
_IMAGE_NAME = re.compile(r"^[\w.-]+\.(jpg|png)$", re.IGNORECASE)


def read_split(root, split: str) -> list[str]:
    """CelebA image names of a MAFL split, in file order (DVE reads the first column of each line)."""
    path = require_file(require_root(root, DATASET, LAYOUT) / SPLIT_FILES[split], DATASET, LAYOUT)
    names, where = [], []
    for number, text in read_lines(path):
        name = text.split()[0]
        if not _IMAGE_NAME.match(name):
            raise malformed(path, number, "a CelebA image file name such as 000001.jpg", text)
        names.append(name)
        where.append(f"{path}:{number}")
    check_unique(names, where, "image")
    return names
