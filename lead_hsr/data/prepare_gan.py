"""Preparation of the GAN datasets (DESIGN §4.1) into the prepared store (`lead_hsr.data.store`).

Every preparer has the signature of the landmark preparers:

    prepare(name, raw_roots, out, geometry, expected_counts=None, skip_corrupt=False, seed=0, **options)

- `raw_roots` maps raw dataset names (`lead_hsr.data.registry.PREPARER_INPUTS[name]`) to their root folders;
- `geometry["resolution"]` is the square output size (256 paper, 32 demo);
- `expected_counts` ({split: count}) overrides the paper counts of the RAW set (checked before decoding,
  before any subset is taken, so an incomplete download is caught); None means the paper counts below;
- `skip_corrupt=True` drops undecodable images and lists them in the manifest instead of failing;
- `seed` drives random choices (the FFHQ subset).
The only option is FFHQ's `subset`: "1k", "2k", "10k", "70k", "140k" (ADA's subsets) or an image count.

All GAN images go to the `train` split (GAN training uses the whole set); `celeba_attributes` keeps CelebA's
train/val/test partition because its attribute classifiers need a held-out split.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from PIL import Image

from lead_hsr.data import geometry
from lead_hsr.data.geometry import CELEBA_ALIGNED_CROP
from lead_hsr.data.images import ImageLoader, decode_rgb
from lead_hsr.data.readers import celeba, gan_animalface, gan_cub, gan_ffhq, gan_lsun
from lead_hsr.data.layouts import raw_root_fix
from lead_hsr.data.layouts import OFFICIAL_SOURCES
from lead_hsr.data.store import StoreWriter, source_hash
from lead_hsr.hashing import file_sha256
from lead_hsr.errors import InputError

log = logging.getLogger(__name__)

# FFHQ is downsampled with a box filter (DESIGN §4.1: Lanczos would move FID by ~1 point). The official
# 256x256 FFHQ comes from StyleGAN's TFRecord exporter: repeated float 2x2 averaging = the exact mean of each
# 4x4 block, rounded half-to-even (np.rint) once. `box_downsample` does exactly that for integer factors;
# PIL's BOX filter (which rounds after each 1-D pass, up to ~1 grey level off) is only the fallback.
FFHQ_RESAMPLE = Image.Resampling.BOX
# Other sets: StyleGAN2-ADA's dataset_tool.py resizes its centre crops with PIL's Lanczos filter.
DEFAULT_RESAMPLE = Image.Resampling.LANCZOS
# CelebA list_eval_partition.txt: 162,770 train / 19,867 val / 19,962 test (CelebA README).
CELEBA_PARTITION_COUNTS = {"train": 162_770, "val": 19_867, "test": 19_962}


# ---------------------------------------------------------------- image geometry


def resize_square(image: np.ndarray, resolution: int, resample: Image.Resampling) -> np.ndarray:
    """Resize HxWx3 uint8 to resolution x resolution (aspect ratio is not kept)."""
    if image.shape[:2] == (resolution, resolution):
        return image
    return geometry.resize(image, np.empty((0, 2)), resolution, resolution, resample)[0]


def box_downsample(image: np.ndarray, resolution: int) -> np.ndarray:
    """Square image -> resolution x resolution by exact block averaging (integer factor), else PIL BOX."""
    height, width = image.shape[:2]
    if height != width or height % resolution:
        return resize_square(image, resolution, FFHQ_RESAMPLE)
    factor = height // resolution
    blocks = image.reshape(resolution, factor, resolution, factor, 3).astype(np.float64)
    return np.rint(blocks.mean(axis=(1, 3))).clip(0, 255).astype(np.uint8)


def centre_crop_square(image: np.ndarray) -> np.ndarray:
    """Largest centred square (side = the shorter image side)."""
    return geometry.centre_square(image, np.empty((0, 2)))[0]


def crop_box(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """Crop (x0, y0, x1, y1), rounded to whole pixels; parts outside the image are black (zero-padded)."""
    x0, y0, x1, y1 = (int(round(value)) for value in box)
    return geometry.crop(image, np.empty((0, 2)), y0, x0, y1 - y0, x1 - x0)[0]


# ---------------------------------------------------------------- shared checks and writing


def check_counts(name: str, raw: str, root: Path, found: dict[str, int], expected: dict[str, int]) -> None:
    """Raise InputError when a split's raw image count differs from the dataset definition."""
    for split, count in expected.items():
        if found.get(split, 0) != count:
            raise InputError(
                f"{root}: found {found.get(split, 0)} {split} images for {name}, expected {count}. Fix: complete "
                f"or re-extract the raw data under `raw.{raw}.root` ({OFFICIAL_SOURCES.get(raw, raw)}), or, for a deliberately "
                "different set (synthetic/partial), set its expected counts in the config (expected_counts)."
            )


def _raw_root(raw: str, raw_roots: dict[str, Path], name: str) -> Path:
    if raw_roots.get(raw) in (None, ""):
        raise InputError(
            f"no raw root configured for {raw!r} (needed to prepare {name!r}); got {sorted(raw_roots)}. "
            f"{raw_root_fix(raw)}"
        )
    return Path(raw_roots[raw])


def _resolution(geometry: dict) -> int:
    resolution = geometry.get("resolution") if isinstance(geometry, dict) else None
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution <= 0:
        raise InputError(f"geometry {geometry!r}: expected a positive integer 'resolution' (256 paper, 32 demo).")
    return resolution


@dataclass
class RawSet:
    """What a preparer read: the raw dataset key, its root, the counts it must have, annotation files."""

    name: str  # preparer name (store manifest `name`)
    raw: str  # key of raw_roots / OFFICIAL_SOURCES
    root: Path
    expected: dict[str, int]  # per split, of the raw set (before any subset)
    annotation_files: list[Path] = field(default_factory=list)

    def check(self, table: pd.DataFrame) -> None:
        found = {split: int((table["split"] == split).sum()) for split in ("train", "val", "test")}
        check_counts(self.name, self.raw, self.root, found, self.expected)

    def sources(self, table: pd.DataFrame, files_on_disk: bool = True) -> dict:
        """Manifest fields recording the raw set (as the landmark preparers do): every source, its size
        (files), and the annotation files' contents, so a changed raw set changes `sources_sha256`."""
        files = table["file"].tolist()
        annotations = {str(path): file_sha256(path) for path in self.annotation_files}
        parts = [source_hash(files, self.root if files_on_disk else None)]
        parts += [f"{path}\t{digest}" for path, digest in annotations.items()]
        return {"sources": [f"{self.raw}/{file}" for file in files], "annotation_sha256": annotations,
                "sources_sha256": hashlib.sha256("\n".join(parts).encode()).hexdigest()}


def write_prepared(raw_set: RawSet, out: Path, table: pd.DataFrame, load: Callable, resolution: int,
                   skip_corrupt: bool, options: dict, files_on_disk: bool = True):
    """Decode row i of `table` with `load(i, loader)` (cropped and resized) into the store, atomically."""
    loader = ImageLoader(skip_corrupt=skip_corrupt)
    keep = []
    with StoreWriter(out, len(table), (resolution, resolution), k=0) as writer:
        for index in range(len(table)):
            image = load(index, loader)
            if image is None:
                continue
            writer.put(index, image)
            keep.append(index)
        if not keep:
            raise InputError(f"{raw_set.root}: every one of the {len(table)} images of {raw_set.name} was skipped "
                             f"as corrupt (first: {loader.skipped[0] if loader.skipped else None}).")
        for entry in loader.skipped:
            log.warning("%s: skipped corrupt image %s", raw_set.name, entry["file"])
        manifest = {"name": raw_set.name, "preparer": raw_set.name, "expected_counts": raw_set.expected,
                    "options": options, "skipped": loader.skipped, **raw_set.sources(table, files_on_disk)}
        return writer.commit(table.iloc[keep], manifest, keep=np.array(keep))


def _load_file(root: Path, table: pd.DataFrame, transform: Callable[[np.ndarray], np.ndarray]):
    def load(index: int, loader: ImageLoader) -> np.ndarray | None:
        image = loader.load(root / table["file"].iat[index], label=table["file"].iat[index])
        return None if image is None else transform(image)
    return load


def _train_table(files: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"file": files, "split": "train"})


def _expected(expected_counts: dict | None, paper: dict[str, int]) -> dict[str, int]:
    return dict(paper) if expected_counts is None else dict(expected_counts)


# ---------------------------------------------------------------- preparers


def prepare_ffhq(name, raw_roots, out, geometry, expected_counts=None, skip_corrupt=False, seed=0, subset="70k"):
    """FFHQ 1024 PNGs -> box-downsampled squares; `subset` picks ADA's limited-data subset (see gan_ffhq):
    a name ("1k", "2k", "10k", "70k", "140k") or an image count (demo scale).

    `expected_counts` are those of the whole raw set (paper: 70,000), checked before the subset is taken.
    """
    root, resolution = _raw_root("ffhq", raw_roots, name), _resolution(geometry)
    files = gan_ffhq.list_ffhq_images(root)
    raw_set = RawSet(name, "ffhq", root, _expected(expected_counts, {"train": gan_ffhq.FFHQ_COUNT}))
    raw_set.check(_train_table(files))
    size, xflip = gan_ffhq.parse_subset(subset)
    size = len(files) if size is None else size
    table = _train_table([files[i] for i in gan_ffhq.subset_indices(len(files), size, seed)])
    options = {"resolution": resolution, "resample": "box", "subset": subset, "subset_size": size,
               "subset_seed": seed, "xflip": xflip}
    load = _load_file(root, table, lambda image: box_downsample(image, resolution))
    return write_prepared(raw_set, out, table, load, resolution, skip_corrupt, options)


def prepare_lsun_church(name, raw_roots, out, geometry, expected_counts=None, skip_corrupt=False, seed=0):
    """LSUN LMDB -> centre square crop -> Lanczos resize; table `file` is the LMDB key."""
    root, resolution = gan_lsun.find_lmdb(_raw_root("lsun_church", raw_roots, name)), _resolution(geometry)
    env = gan_lsun.open_lsun(root)
    try:
        keys = gan_lsun.list_lsun_keys(env)
        table = _train_table([key.decode("ascii", errors="backslashreplace") for key in keys])
        paper = {"train": gan_lsun.LSUN_CHURCH_TRAIN_COUNT}
        raw_set = RawSet(name, "lsun_church", root, _expected(expected_counts, paper))
        raw_set.check(table)

        def load(index: int, loader: ImageLoader) -> np.ndarray | None:
            label = f"{root}[{table['file'].iat[index]}]"
            try:
                image = decode_rgb(gan_lsun.read_lsun_bytes(env, keys[index], root), label)
            except InputError as error:
                if not loader.skip_corrupt:
                    raise
                loader.skipped.append({"file": table["file"].iat[index], "reason": str(error)})
                return None
            return resize_square(centre_crop_square(image), resolution, DEFAULT_RESAMPLE)

        options = {"resolution": resolution, "resample": DEFAULT_RESAMPLE.name, "crop": "centre_square"}
        return write_prepared(raw_set, out, table, load, resolution, skip_corrupt, options, files_on_disk=False)
    finally:
        env.close()


def _prepare_animalface(animal, name, raw_roots, out, geometry, expected_counts, skip_corrupt):
    """Animal Face heads of one class (`animal` is a key of ANIMALFACE_CLASSES) -> Lanczos resize to a square."""
    root, resolution = _raw_root("animalface", raw_roots, name), _resolution(geometry)
    table = _train_table(gan_animalface.list_animalface_images(root, animal))
    paper = {"train": gan_animalface.ANIMALFACE_CLASSES[animal][1]}
    raw_set = RawSet(name, "animalface", root, _expected(expected_counts, paper))
    raw_set.check(table)
    options = {"resolution": resolution, "resample": DEFAULT_RESAMPLE.name, "crop": "none", "class": animal}
    load = _load_file(root, table, lambda image: resize_square(image, resolution, DEFAULT_RESAMPLE))
    return write_prepared(raw_set, out, table, load, resolution, skip_corrupt, options)


def prepare_animalface_dog(name, raw_roots, out, geometry, expected_counts=None, skip_corrupt=False, seed=0):
    """Animal Face `Image/DogHead` (389 images in the paper)."""
    return _prepare_animalface("animalface_dog", name, raw_roots, out, geometry, expected_counts, skip_corrupt)


def prepare_animalface_cat(name, raw_roots, out, geometry, expected_counts=None, skip_corrupt=False, seed=0):
    """Animal Face `Image/CatHead` (160 images in the paper)."""
    return _prepare_animalface("animalface_cat", name, raw_roots, out, geometry, expected_counts, skip_corrupt)


def prepare_cub(name, raw_roots, out, geometry, expected_counts=None, skip_corrupt=False, seed=0):
    """CUB-200-2011 -> square crop centred on the bird box (side = longer box side) -> Lanczos resize."""
    root, resolution = _raw_root("cub", raw_roots, name), _resolution(geometry)
    cub_dir = gan_cub.find_cub(root)
    records = gan_cub.read_cub(cub_dir)
    prefix = cub_dir.relative_to(root)  # table files stay relative to the configured raw root
    table = _train_table([(prefix / file).as_posix() for file, _ in records])
    boxes = [box for _, box in records]
    table[["bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1"]] = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    raw_set = RawSet(name, "cub", root, _expected(expected_counts, {"train": gan_cub.CUB_COUNT}),
                     [cub_dir / "images.txt", cub_dir / "bounding_boxes.txt"])
    raw_set.check(table)
    def load(index: int, loader: ImageLoader) -> np.ndarray | None:
        image = loader.load(root / table["file"].iat[index], label=table["file"].iat[index])
        return None if image is None else resize_square(crop_box(image, boxes[index]), resolution, DEFAULT_RESAMPLE)

    options = {"resolution": resolution, "resample": DEFAULT_RESAMPLE.name, "crop": "square_bbox_centred"}
    return write_prepared(raw_set, out, table, load, resolution, skip_corrupt, options)


def celeba_attribute_table(root: Path) -> tuple[pd.DataFrame, list[Path]]:
    """One row per aligned CelebA image: `file`, `split` (list_eval_partition) and the 40 attributes (+1/-1);
    and the two annotation files read."""
    partition = celeba.read_partition(root)
    attributes = celeba.read_attributes(root)
    attribute_row = attributes.row_of()
    missing = [name for name in partition.names if name not in attribute_row]
    if missing or len(attribute_row) != len(partition.names):
        raise InputError(
            f"{attributes.path} and {partition.path} list different images (e.g. {missing[:3]}, "
            f"{len(attribute_row)} vs {len(partition.names)} rows); expected the same images in both. "
            f"Fix: restore both files from {OFFICIAL_SOURCES['celeba']}."
        )
    folder = celeba.image_dir(root, aligned=True).relative_to(root).as_posix()
    order = [attribute_row[name] for name in partition.names]
    table = pd.DataFrame({
        "file": [f"{folder}/{name}" for name in partition.names],
        "split": [celeba.PARTITION_SPLITS[int(code)] for code in partition.values[:, 0]],
    })
    table[celeba.ATTRIBUTE_NAMES] = attributes.values[order]
    return table, [partition.path, attributes.path]


def prepare_celeba_attributes(name, raw_roots, out, geometry, expected_counts=None, skip_corrupt=False, seed=0):
    """Aligned CelebA -> 178x178 crop at top=30 -> Lanczos resize, with the 40 attributes (+1/-1) as columns."""
    root, resolution = _raw_root("celeba", raw_roots, name), _resolution(geometry)
    table, annotation_files = celeba_attribute_table(root)
    raw_set = RawSet(name, "celeba", root, _expected(expected_counts, CELEBA_PARTITION_COUNTS), annotation_files)
    raw_set.check(table)
    top, left, height, width = CELEBA_ALIGNED_CROP  # the landmark protocol's aligned crop (one home: geometry)
    box = (left, top, left + width, top + height)
    options = {"resolution": resolution, "resample": DEFAULT_RESAMPLE.name, "crop_xyxy": list(box)}
    load = _load_file(root, table, lambda image: resize_square(crop_box(image, box), resolution, DEFAULT_RESAMPLE))
    return write_prepared(raw_set, out, table, load, resolution, skip_corrupt, options)


PREPARERS_GAN: dict[str, Callable] = {
    "ffhq": prepare_ffhq,
    "lsun_church": prepare_lsun_church,
    "animalface_dog": prepare_animalface_dog,
    "animalface_cat": prepare_animalface_cat,
    "cub": prepare_cub,
    "celeba_attributes": prepare_celeba_attributes,
}
