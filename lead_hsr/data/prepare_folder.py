"""Your own image collection (a folder or a .zip of images) as a prepared store: `image_folder` for LEAD (the
self-supervised store of a category, or, with a landmark CSV, a regression / few-shot store), `image_folder_gan`
for GAN training. Same signature as every preparer (`lead_hsr.data.prepare`, `prepare_gan`):

    prepare(name, raw_roots, out, geometry, expected_counts=None, skip_corrupt=False, seed=0, **options)

`raw_roots` is `{"images": folder or .zip, "landmarks": CSV (optional), "exclude": CSV (optional)}` from the
store's config entry (`prepared.<store>.images` / `.landmarks` / `.exclude`, registry.OWN_DATA_PREPARERS).
`exclude` (a landmark CSV) leaves its images out: the self-supervised store without any annotated image, as
LEAD's CelebA SSL set leaves out every MAFL image (`prepare.collect_celeba_ssl`).

Images: every file with an image extension (IMAGE_EXTENSIONS, any case) under the folder or in the zip, at any
depth, in sorted order; hidden files/folders and `__MACOSX/` are ignored. Table `file` is the path inside the
folder/zip (POSIX). Images of mixed sizes are fine: each is transformed on its own (`transform` below); colour
modes are converted to RGB. Unreadable images stop preparation with an error naming them, or, with the config's
`skip_corrupt: true`, are skipped and listed in the manifest's `skipped`.

Landmark CSV: one row per annotated image, `file,x1,y1,...,xK,yK`, (x, y) 0-based pixels of the ORIGINAL image,
`file` relative to the images folder/zip; an optional header row starting with `file`; blank lines ignored. Every
row must have the same K, finite numbers, an image that exists, and no image twice; landmarks may sit at most
10% of the image side outside it (readers.common.check_inside). Errors name `file:line`. With a landmark file,
the store holds the annotated images only (split train/test by a seeded shuffle, `test_fraction`).

Options (`prepared.<store>.options`):
  image_folder:     transform resize (default: square resize, aspect not kept, as AFLW_R) | centre_crop (the
                    largest centred square, then resize: landmarks outside it are an error); test_fraction (0.2)
  image_folder_gan: transform centre_crop (default, dataset_tool --transform=center-crop) | resize (squash to a
                    square, dataset_tool without --transform); resample lanczos (default, dataset_tool) | box
                    (exact block mean for integer factors, as the FFHQ exporter). X-flips are a training option
                    (hsr.datasets.<name>.xflip), not stored twice.
"""

from __future__ import annotations

import csv
import logging
import math
import zipfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from lead_hsr.data import geometry as geo
from lead_hsr.data.layouts import IMAGE_EXTENSIONS, is_image_name
from lead_hsr.data.prepare import Item, Plan, write_plan
from lead_hsr.data.prepare_gan import (DEFAULT_RESAMPLE, RawSet, _resolution, _train_table, box_downsample,
                                       centre_crop_square, resize_square, write_prepared)
from lead_hsr.data.readers.common import malformed, read_lines
from lead_hsr.errors import InputError, located

log = logging.getLogger(__name__)

DEFAULT_TEST_FRACTION = 0.2  # share of the annotated images held out for the regression test split
LEAD_TRANSFORMS = {"resize": geo.square_resize, "centre_crop": geo.centre_square_resize}
GAN_TRANSFORMS = ("centre_crop", "resize")
GAN_RESAMPLE = ("lanczos", "box")
CSV_FORMAT = "file,x1,y1,...,xK,yK (pixels of the original image, file relative to the images folder/zip)"


# ---------------------------------------------------------------- the image collection


@dataclass
class ImageSource:
    """A folder or zip of images: the sorted image list and a path-like per file (pathlib or zipfile.Path)."""

    root: Path
    files: list[str]
    archive: zipfile.ZipFile | None = None

    def path(self, file: str):
        return zipfile.Path(self.archive, file) if self.archive else self.root / file

    @property
    def disk_root(self) -> Path | None:
        """Root whose files `source_hash` may stat (None for a zip: its content hash is recorded instead)."""
        return None if self.archive else self.root

    def close(self) -> None:
        if self.archive:
            self.archive.close()


def open_images(path, store: str, fix: str | None = None) -> ImageSource:
    """List the images of a folder (recursively) or a .zip; InputError when there is none or no such path.
    `store` names who reads them in the message; `fix` replaces the message's advice (default: the config key)."""
    path = Path(path)
    fix = fix or f"Fix: set prepared.{store}.images to a folder or .zip of {'/'.join(IMAGE_EXTENSIONS)} images."
    if path.is_dir():
        source = ImageSource(path, sorted(p.relative_to(path).as_posix() for p in path.rglob("*")
                                          if p.is_file() and is_image_name(p.relative_to(path).as_posix())))
    elif path.is_file() and zipfile.is_zipfile(path):
        archive = zipfile.ZipFile(path)
        names = sorted(info.filename for info in archive.infolist()
                       if not info.is_dir() and is_image_name(info.filename))
        source = ImageSource(path, names, archive)
    elif path.exists():
        raise InputError(f"{path}: not a folder or a .zip archive. {fix}")
    else:
        raise InputError(f"{path}: not found (images of store '{store}'). {fix}")
    if not source.files:
        source.close()
        raise InputError(f"{path}: no image files found (extensions {', '.join(IMAGE_EXTENSIONS)}). {fix}")
    return source


# ---------------------------------------------------------------- the landmark CSV


@dataclass
class LandmarkRows:
    path: Path
    files: list[str]
    landmarks: np.ndarray  # N x K x 2 float64, pixels of the original image
    lines: list[int]

    def where(self, index: int) -> str:
        return located(self.path, self.lines[index])


def _parse_row(path: Path, number: int, line: str) -> list[str]:
    try:
        return next(csv.reader([line], skipinitialspace=True))
    except csv.Error as error:
        raise malformed(path, number, CSV_FORMAT, line) from error


def _clean_name(name: str) -> str:
    name = name.strip().replace("\\", "/")
    return name[2:] if name.startswith("./") else name


def read_landmark_csv(path, images: ImageSource | None = None) -> LandmarkRows:
    """Parse and check a landmark CSV (module docstring); `images` checks that every row names an image."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: landmark file not found. Expected a CSV {CSV_FORMAT}. "
                         "Fix: set the store's `landmarks` to that file, or remove the key (no landmarks).")
    available = set(images.files) if images is not None else None
    files, values, lines, first_line = [], [], [], {}
    width = None  # 2K, from the header or the first data row
    for row, (number, line) in enumerate(read_lines(path)):
        tokens = _parse_row(path, number, line)
        if row == 0 and tokens[0].strip().lower() == "file":
            width = len(tokens) - 1 if len(tokens) > 1 else None
            continue  # header row
        if len(tokens) < 3 or (len(tokens) - 1) % 2:
            raise malformed(path, number, f"{CSV_FORMAT}: a file name and an even number (2K >= 2) of values",
                            line)
        if width is None:
            width = len(tokens) - 1
        if len(tokens) - 1 != width:  # also a header naming a different K
            raise InputError(f"{located(path, number)}: {len(tokens) - 1} values, expected {width} (K = {width // 2} "
                             f"landmarks, as in the first row). Fix: give every image all K (x, y) pairs.")
        name = _clean_name(tokens[0])
        try:
            numbers = [float(token) for token in tokens[1:]]
        except ValueError:
            raise malformed(path, number, f"{CSV_FORMAT} with numeric values", line) from None
        bad = [i for i, value in enumerate(numbers) if not math.isfinite(value)]
        if bad:
            column = f"{'xy'[bad[0] % 2]}{bad[0] // 2 + 1}"
            raise InputError(f"{located(path, number)}: {column} = {numbers[bad[0]]} is not a finite number; expected "
                             "pixel coordinates. Fix: annotate every landmark, or leave the image out of the file.")
        if name in first_line:
            raise InputError(f"{located(path, number)}: {name} is annotated twice (first at line "
                             f"{first_line[name]}). Fix: keep one row per image.")
        if available is not None and name not in available:
            raise InputError(f"{located(path, number)}: image {name!r} not found in {images.root} (file names are "
                             f"relative to it, e.g. {images.files[0]!r}). Fix: correct the name or add the image.")
        first_line[name] = number
        files.append(name)
        values.append(numbers)
        lines.append(number)
    if not files:
        raise InputError(f"{path}: no landmark rows; expected {CSV_FORMAT}.")
    landmarks = np.asarray(values, dtype=np.float64).reshape(len(files), -1, 2)
    return LandmarkRows(path, files, landmarks, lines)


# ---------------------------------------------------------------- LEAD: image_folder


def _test_rows(n: int, test_fraction: float, seed: int, where: str) -> set[int]:
    if not 0 < test_fraction < 1:
        raise InputError(f"{where}: test_fraction {test_fraction!r}; expected a number between 0 and 1.")
    n_test = int(round(test_fraction * n))
    if n_test < 1 or n_test >= n:
        raise InputError(f"{where}: {n} annotated images and test_fraction {test_fraction} leave {n_test} test and "
                         f"{n - n_test} training images; both need at least one. Fix: annotate more images.")
    return set(np.random.default_rng(seed).permutation(n)[:n_test].tolist())


def _item_transform(transform: str, size: int, where: str, file: str) -> Callable:
    """The image + landmark transform of one annotated image; a centre crop that cuts a landmark off is an
    InputError naming the CSV row (a square resize keeps every landmark: readers.common.check_inside's tolerance)."""
    function = LEAD_TRANSFORMS[transform]
    if transform != "centre_crop":
        return partial(function, size=size)

    def apply(image, landmarks):
        out, moved = function(image, landmarks, size=size)
        if not geo.inside(moved, size, size).all():
            raise InputError(f"{where}: a landmark of {file} lies outside the centred square crop; expected every "
                             "landmark inside it. Fix: use options.transform: resize for this store.")
        return out, moved
    return apply


def prepare_image_folder(name, raw_roots, out, geometry, expected_counts=None, skip_corrupt=False, seed=0,
                         transform="resize", test_fraction=DEFAULT_TEST_FRACTION):
    """Own images -> `resize` x `resize` landmark-protocol store (K = 0 without a landmark file, all `train`)."""
    geometry = geo.Geometry.from_config(geometry)
    if raw_roots.get("landmarks") and raw_roots.get("exclude"):
        raise InputError(f"preparer {name}: a store has `landmarks` or `exclude`, not both (exclude makes the "
                         "self-supervised store without the annotated images).")
    if transform not in LEAD_TRANSFORMS:
        raise InputError(f"preparer {name}: options.transform {transform!r}; expected one of {list(LEAD_TRANSFORMS)}.")
    source = open_images(raw_roots.get("images"), name)
    try:
        function = LEAD_TRANSFORMS[transform]
        options = {"transform": transform, "images": str(source.root)}
        annotation_files = [source.root] if source.archive else []
        if raw_roots.get("landmarks") in (None, ""):
            files = source.files
            if raw_roots.get("exclude") not in (None, ""):
                excluded = read_landmark_csv(raw_roots["exclude"], source)
                files = sorted(set(files) - set(excluded.files))
                annotation_files.append(excluded.path)
                options.update(exclude=str(excluded.path), excluded_images=len(source.files) - len(files))
                if not files:
                    raise InputError(f"{excluded.path}: names every image of {source.root}; the store `exclude`s "
                                     "it from would be empty. Fix: add unannotated images, or drop `exclude`.")
            items = [Item("train", file, source.path(file), np.zeros((0, 2)), file,
                          partial(function, size=geometry.resize), raw="images") for file in files]
            k = 0
        else:
            rows = read_landmark_csv(raw_roots["landmarks"], source)
            test = _test_rows(len(rows.files), float(test_fraction), seed, str(rows.path))
            items = [Item("test" if i in test else "train", file, source.path(file), rows.landmarks[i], rows.where(i),
                          _item_transform(transform, geometry.resize, rows.where(i), file), raw="images")
                     for i, file in enumerate(rows.files)]
            k = rows.landmarks.shape[1]
            annotation_files.append(rows.path)
            options.update(landmarks=str(rows.path), test_fraction=float(test_fraction), split_seed=seed,
                           unannotated_images=len(source.files) - len(rows.files))
        plan = Plan(items, k, annotation_files, options)
        expected = None if expected_counts is None else dict(expected_counts)
        return write_plan(name, plan, Path(out), geometry, {"images": source.disk_root}, expected, skip_corrupt)
    finally:
        source.close()


# ---------------------------------------------------------------- GAN: image_folder_gan


def gan_square(image: np.ndarray, resolution: int, transform: str, resample: str) -> np.ndarray:
    """One image -> resolution x resolution as StyleGAN2-ADA's dataset_tool (centre crop or squash; Lanczos/box)."""
    if transform == "centre_crop":
        image = centre_crop_square(image)
    if resample == "box":
        return box_downsample(image, resolution)
    return resize_square(image, resolution, DEFAULT_RESAMPLE)


def prepare_image_folder_gan(name, raw_roots, out, geometry, expected_counts=None, skip_corrupt=False, seed=0,
                             transform="centre_crop", resample="lanczos"):
    """Own images -> square GAN store at `geometry.resolution` (every image in `train`)."""
    resolution = _resolution(geometry)
    for key, value, allowed in (("transform", transform, GAN_TRANSFORMS), ("resample", resample, GAN_RESAMPLE)):
        if value not in allowed:
            raise InputError(f"preparer {name}: options.{key} {value!r}; expected one of {list(allowed)}.")
    source = open_images(raw_roots.get("images"), name)
    try:
        table = _train_table(source.files)
        raw_set = RawSet(name, "images", source.root, dict(expected_counts or {}),
                         [source.root] if source.archive else [])
        raw_set.check(table)
        small = []  # filled while loading; the manifest (written at commit) lists them under options

        def load(index: int, loader) -> np.ndarray | None:
            file = source.files[index]
            image = loader.load(source.path(file), label=file)
            if image is None:
                return None
            if min(image.shape[:2]) < resolution:
                small.append(file)
            return gan_square(image, resolution, transform, resample)

        options = {"resolution": resolution, "transform": transform, "resample": resample,
                   "images": str(source.root), "upscaled": small}
        store = write_prepared(raw_set, out, table, load, resolution, skip_corrupt, options,
                               files_on_disk=source.archive is None)
        if small:
            log.warning("%s: %d images are smaller than %d px and were upscaled (e.g. %s)", name, len(small),
                        resolution, small[0])
        return store
    finally:
        source.close()


PREPARERS_FOLDER: dict[str, Callable] = {
    "image_folder": prepare_image_folder,
    "image_folder_gan": prepare_image_folder_gan,
}

