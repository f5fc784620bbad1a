"""sha256 of a file's contents, read in 1 MiB blocks: the one implementation (annotation files of the prepared
stores, pretrained weights, imported checkpoints). Light on purpose: the Snakefile imports its users."""
from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
