"""The prepared store: one on-disk format for every prepared dataset (ARCHITECTURE.md, "prepared store").

A store is a directory holding
- `images.npy`     uint8 N x H x W x 3, opened as a memmap (loading never decodes JPEG/PNG);
- `landmarks.npy`  float32 N x K x 2, (x, y) in prepared-image pixels, NaN where absent (no file if K = 0);
- `table.csv`      one row per image: `file` (relative to the raw root), `split`, dataset-specific columns;
- `manifest.json`  name, counts per split, image size, K, sorted source list + sha256, options, skipped files.

Writes are atomic: everything goes into a temporary sibling directory that is renamed into place only
when complete, so a crash mid-write leaves either the old store or none, never a half-written one.
Use `write_store` for arrays that fit in memory, `StoreWriter` to stream large datasets image by image.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from lead_hsr.errors import InputError

SPLITS = ("train", "val", "test")
IMAGES_FILE = "images.npy"
LANDMARKS_FILE = "landmarks.npy"
TABLE_FILE = "table.csv"
MANIFEST_FILE = "manifest.json"


def source_hash(files: Iterable[str | Path], root: str | Path | None = None) -> str:
    """sha256 over the sorted list of source files (path relative to `root`, and size when `root` is given).

    Cheap enough for 200k files; a file added, removed, renamed or changed in size changes the hash.
    Annotation files whose content matters are hashed in full with `lead_hsr.hashing.file_sha256` by the preparers.
    """
    digest = hashlib.sha256()
    for name in sorted(str(f) for f in files):
        size = (Path(root) / name).stat().st_size if root is not None else ""
        digest.update(f"{name}\t{size}\n".encode())
    return digest.hexdigest()


@dataclass
class Store:
    path: Path
    images: np.ndarray  # uint8 memmap N x H x W x 3
    landmarks: np.ndarray  # float32 N x K x 2 (K may be 0)
    table: pd.DataFrame
    manifest: dict

    def __len__(self) -> int:
        return len(self.images)

    def split(self, name: str) -> np.ndarray:
        """Row indices of one split (`train`/`val`/`test`) in store order."""
        if name not in SPLITS:
            raise InputError(f"{self.path}: unknown split {name!r}; expected one of {SPLITS}.")
        return np.flatnonzero(self.table["split"].to_numpy() == name)

    def is_current(self, current_source_hash: str) -> bool:
        """False when the raw source set changed since this store was written."""
        return self.manifest.get("sources_sha256") == current_source_hash


def _check_table(table: pd.DataFrame, n: int) -> None:
    if len(table) != n:
        raise ValueError(f"table has {len(table)} rows but there are {n} images")
    for column in ("file", "split"):
        if column not in table.columns:
            raise ValueError(f"table needs a {column!r} column, has {list(table.columns)}")
    unknown = set(table["split"]) - set(SPLITS)
    if unknown:
        raise ValueError(f"table has unknown split values {sorted(unknown)}; expected {SPLITS}")


def _full_manifest(manifest: dict, table: pd.DataFrame, image_shape: tuple, k: int) -> dict:
    """Add the fields every store has; the caller's manifest supplies name, sources, options, ..."""
    counts = {s: int((table["split"] == s).sum()) for s in SPLITS}
    full = dict(manifest)
    full.update(n=len(table), counts=counts, image_size=[int(image_shape[0]), int(image_shape[1])], K=int(k))
    if "sources" in full:
        full["sources"] = sorted(str(s) for s in full["sources"])
        full.setdefault("sources_sha256", source_hash(full["sources"]))
    full.setdefault("skipped", [])
    return full


def _temp_sibling(path: Path) -> Path:
    return path.parent / f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(path: Path) -> None:
    """Delete temporary siblings left by writers that were killed (SIGKILL, power loss) mid-write.

    A temporary belongs to a dead writer when the pid in its name no longer runs; they can be as large as the
    store itself, so they must not pile up across retries.
    """
    for leftover in path.parent.glob(f".{path.name}.tmp-*"):
        pid = leftover.name.rsplit(".tmp-", 1)[1].split("-")[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)


def _move_into_place(temp: Path, path: Path) -> None:
    """Rename `temp` to `path`, replacing an existing store (rename it aside first, then delete it)."""
    old = None
    if path.exists():
        old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(path, old)
    os.rename(temp, path)
    if old is not None:
        shutil.rmtree(old)


class StoreWriter:
    """Streaming, atomic store writer.

        with StoreWriter(out, n, (136, 136), k=5) as writer:
            for i, ...: writer.put(i, image, landmarks)
            writer.commit(table, manifest)

    Leaving the block without `commit` (an exception, or a bug) deletes the temporary directory.
    `commit` may receive a table with fewer rows than `n` together with `keep` (row indices to keep),
    which is how preparation drops skipped corrupt images.
    """

    def __init__(self, path: str | Path, n: int, image_size: tuple[int, int], k: int):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(self.path)
        self.temp = _temp_sibling(self.path)
        self.temp.mkdir()
        self.k = int(k)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        shape = (int(n), *self.image_size, 3)
        self.images = np.lib.format.open_memmap(self.temp / IMAGES_FILE, mode="w+", dtype=np.uint8, shape=shape)
        self.landmarks = np.full((int(n), self.k, 2), np.nan, dtype=np.float32)
        self.committed = False

    def __enter__(self) -> "StoreWriter":
        return self

    def __exit__(self, *exc) -> None:
        if not self.committed:
            self.images = None  # release the memmap before deleting its file
            shutil.rmtree(self.temp, ignore_errors=True)

    def put(self, index: int, image: np.ndarray, landmarks: np.ndarray | None = None) -> None:
        if image.shape != (*self.image_size, 3) or image.dtype != np.uint8:
            raise ValueError(f"image {index}: got {image.shape} {image.dtype}, expected {(*self.image_size, 3)} uint8")
        self.images[index] = image
        if self.k:
            self.landmarks[index] = np.asarray(landmarks, dtype=np.float32).reshape(self.k, 2)

    def commit(self, table: pd.DataFrame, manifest: dict, keep: np.ndarray | None = None) -> Store:
        images, landmarks = self.images, self.landmarks
        if keep is not None and len(keep) != len(images):
            images, landmarks = self._compact(np.asarray(keep))
        table = table.reset_index(drop=True)
        _check_table(table, len(images))
        if self.k:
            np.save(self.temp / LANDMARKS_FILE, landmarks)
        table.to_csv(self.temp / TABLE_FILE, index=False)
        full = _full_manifest(manifest, table, self.image_size, self.k)
        (self.temp / MANIFEST_FILE).write_text(json.dumps(full, indent=1, sort_keys=True))
        if isinstance(images, np.memmap):
            images.flush()
        self.images = None
        _move_into_place(self.temp, self.path)
        self.committed = True
        return open_store(self.path)

    def _compact(self, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rewrite images.npy with only the kept rows (rare path: some images were skipped)."""
        compact_file = self.temp / "images.compact.npy"
        shape = (len(keep), *self.image_size, 3)
        compact = np.lib.format.open_memmap(compact_file, mode="w+", dtype=np.uint8, shape=shape)
        for row, index in enumerate(keep):
            compact[row] = self.images[index]
        compact.flush()
        self.images = None
        os.replace(compact_file, self.temp / IMAGES_FILE)
        return compact, self.landmarks[keep]


def write_store(path: str | Path, images: np.ndarray, landmarks: np.ndarray | None, table: pd.DataFrame,
                manifest: dict) -> Store:
    """Write a whole in-memory dataset atomically. `landmarks` is N x K x 2 or None (K = 0)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 N x H x W x 3, got {images.shape} {images.dtype}")
    k = 0 if landmarks is None else np.asarray(landmarks).shape[1]
    if landmarks is not None and np.asarray(landmarks).shape != (len(images), k, 2):
        raise ValueError(f"landmarks must be N x K x 2 with N={len(images)}, got {np.asarray(landmarks).shape}")
    with StoreWriter(path, len(images), images.shape[1:3], k) as writer:
        writer.images[:] = images
        if k:
            writer.landmarks[:] = landmarks
        return writer.commit(table, manifest)


def _missing(path: Path, what: str) -> InputError:
    return InputError(
        f"{path}: prepared store {what} not found; expected a directory with {IMAGES_FILE}, {TABLE_FILE}, "
        f"{MANIFEST_FILE} (and {LANDMARKS_FILE} for landmark datasets). Fix: run the dataset's prepare rule "
        f"(snakemake data/prepared/<name>) to (re)build it."
    )


def _damaged(file: Path, expected: str, error) -> InputError:
    return InputError(f"{file}: damaged prepared store file ({error}); expected {expected}. Fix: delete "
                      f"{file.parent} and rerun the dataset's prepare rule.")


def open_store(path: str | Path) -> Store:
    """Open a prepared store without decoding any image (images are a read-only memmap)."""
    path = Path(path)
    for name in (IMAGES_FILE, TABLE_FILE, MANIFEST_FILE):
        if not (path / name).is_file():
            raise _missing(path, name)
    try:
        manifest = json.loads((path / MANIFEST_FILE).read_text(encoding="utf-8"))
        k = int(manifest.get("K", 0))
    except (ValueError, UnicodeDecodeError, AttributeError, TypeError) as error:  # JSONDecodeError is a ValueError
        raise _damaged(path / MANIFEST_FILE, "a JSON object with the store's manifest", error) from None
    try:
        images = np.load(path / IMAGES_FILE, mmap_mode="r")
    except (ValueError, OSError, EOFError) as error:
        raise _damaged(path / IMAGES_FILE, "a .npy array of uint8 N x H x W x 3 images", error) from None
    if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8:
        raise _damaged(path / IMAGES_FILE, "uint8 N x H x W x 3 images", f"got {images.dtype} {images.shape}")
    if k:
        if not (path / LANDMARKS_FILE).is_file():
            raise _missing(path, LANDMARKS_FILE)
        try:
            landmarks = np.load(path / LANDMARKS_FILE)
        except (ValueError, OSError, EOFError) as error:
            raise _damaged(path / LANDMARKS_FILE, "a .npy array of N x K x 2 landmarks", error) from None
    else:
        landmarks = np.zeros((len(images), 0, 2), dtype=np.float32)
    try:
        table = pd.read_csv(path / TABLE_FILE, dtype={"file": str, "split": str}, keep_default_na=False,
                            na_values=[""], encoding="utf-8")
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise _damaged(path / TABLE_FILE, "a CSV table with one row per image", error) from None
    if len(table) != len(images) or landmarks.shape != (len(images), k, 2):
        raise InputError(
            f"{path}: inconsistent store ({len(images)} images, {len(table)} table rows, landmarks "
            f"{landmarks.shape}, K={k}). Fix: delete the directory and rerun the prepare rule."
        )
    return Store(path=path, images=images, landmarks=landmarks, table=table, manifest=manifest)
