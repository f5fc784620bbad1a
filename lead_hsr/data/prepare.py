"""Preparation of the landmark datasets (DESIGN §4.1) into prepared stores (`lead_hsr.data.store`).

Every preparer has the signature

    prepare_<name>(name, raw_roots, out, geometry, expected_counts=None, skip_corrupt=False, seed=0) -> Store

- `raw_roots` maps raw dataset names (`registry.PREPARER_INPUTS[name]`) to their root folders;
- `geometry` is `{resize, crop}` (paper 136/20, demo e.g. 88/12); stores hold `resize` x `resize` images with
  landmarks (x, y) in those pixels, the `crop` is applied at load time (`geometry.central_crop`);
- `expected_counts` ({split: count}) replaces the paper counts (synthetic layouts declare their own); counts
  are checked on the annotations, before any image is decoded;
- `skip_corrupt=True` drops undecodable images and lists them in the manifest's `skipped` instead of failing;
- `seed` drives the random zoom of `mafl_unaligned`.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from lead_hsr.data import geometry as geo
from lead_hsr.data.images import ImageLoader
from lead_hsr.data.readers import aflw_m, aflw_r, celeba, mafl, w300
from lead_hsr.data.layouts import raw_root_fix
from lead_hsr.data.registry import PREPARER_INPUTS
from lead_hsr.data.readers.common import check_inside
from lead_hsr.data.store import Store, StoreWriter, open_store, source_hash
from lead_hsr.hashing import file_sha256
from lead_hsr.errors import InputError

log = logging.getLogger(__name__)

# Paper counts per split, asserted on real data (DVE asserts the same numbers in its loaders).
# None = no published count to assert (the CelebA SSL set: partition 0 minus MAFL, not stated in the papers).
PAPER_COUNTS: dict[str, dict[str, int] | None] = {
    "celeba_ssl": None,
    "mafl": {"train": 19_000, "test": 1_000},  # DVE MAFLAligned asserts 19000 / 1000
    "mafl_unaligned": {"train": 19_000, "test": 1_000},  # the same MAFL images, in the wild
    "aflw_m": {"train": 10_122, "test": 2_995},  # DVE AFLW_MTFL asserts 10122 / 2995
    "aflw_r": {"train": 10_122, "test": 2_991},  # thesis / DVE AFLW recrop sizes
    "w300": {"train": 3_148, "test": 689},  # DVE ThreeHundredW asserts 3148 / 689
}
PROGRESS_EVERY = 10_000  # log a progress line every this many images (CelebA SSL has ~160k)
SSL_PARTITION = 0  # CelebA partition used for SSL training (DVE CelebAPrunedAligned_MAFLVal: split == 0)


@dataclass
class Item:
    """One image to prepare: where it is, its raw landmarks, and the geometry that maps it to the store."""

    split: str
    file: str  # table `file`: path relative to its raw root
    path: Path
    landmarks: np.ndarray  # K x 2, 0-based raw pixels
    where: str  # annotation location for error messages
    transform: Callable  # (image, landmarks) -> (image, landmarks) at the store size
    columns: dict = field(default_factory=dict)  # extra table columns
    raw: str = ""  # raw dataset (key of raw_roots) that `file` is relative to
    size: tuple[int, int] | None = None  # (height, width) the annotations state for the image, checked on decode


def _root(raw_roots: dict, key: str, name: str) -> Path:
    if key not in raw_roots or raw_roots[key] in (None, ""):
        raise InputError(f"preparer '{name}': no raw root configured for '{key}'. {raw_root_fix(key)}")
    return Path(raw_roots[key])


def check_counts(name: str, items: list[Item], expected: dict[str, int] | None) -> None:
    """InputError naming each split whose number of annotated images differs from the expected count."""
    if expected is None:
        return
    found = {split: sum(item.split == split for item in items) for split in ("train", "val", "test")}
    unknown = set(expected) - set(found)
    if unknown:
        raise InputError(f"preparer '{name}': expected_counts has unknown splits {sorted(unknown)}; "
                         "expected keys among train, val, test.")
    wrong = [f"split '{split}' has {found[split]} images, expected {count}"
             for split, count in expected.items() if found[split] != count]
    if wrong:
        raise InputError(
            f"preparer '{name}': " + "; ".join(wrong) + ". Fix: point "
            + " and ".join(f"`raw.{raw}.root`" for raw in PREPARER_INPUTS.get(name, ["<dataset>"]))
            + " in the config at the complete official dataset, or (synthetic/custom layouts) declare the counts "
            "in the config (expected_counts)."
        )


def _expected(name: str, expected_counts: dict[str, int] | None) -> dict[str, int] | None:
    return PAPER_COUNTS[name] if expected_counts is None else dict(expected_counts)


@dataclass
class Plan:
    """Everything a preparer will write, known before any image is decoded."""

    items: list[Item]
    k: int  # landmarks per image
    annotation_files: list[Path]  # hashed (content) into the manifest
    options: dict = field(default_factory=dict)  # recorded in the manifest


def _raw_relative(path: Path, raw_roots: dict) -> str:
    """`<raw dataset>/<path inside its root>`: the same wherever the raw data is stored."""
    for key, root in sorted(raw_roots.items()):
        if root not in (None, "") and Path(path).is_relative_to(Path(root)):
            return f"{key}/{Path(path).relative_to(Path(root)).as_posix()}"
    return str(path)


def _sources(plan: Plan, raw_roots: dict) -> dict:
    """Manifest fields recording the raw set: every image (path + size), and the annotation files' contents.

    Names are relative to the raw roots, so moving a dataset does not change `sources_sha256`.
    """
    by_root: dict[str, list[str]] = {}
    for item in plan.items:
        by_root.setdefault(item.raw, []).append(item.file)
    parts = [f"{key}\t{source_hash(files, raw_roots[key])}" for key, files in sorted(by_root.items())]
    annotations = {_raw_relative(path, raw_roots): file_sha256(path) for path in set(plan.annotation_files)}
    annotations = dict(sorted(annotations.items()))
    parts += [f"{path}\t{digest}" for path, digest in annotations.items()]
    return {
        "sources": sorted(f"{key}/{file}" for key, files in by_root.items() for file in files),
        "sources_sha256": hashlib.sha256("\n".join(parts).encode()).hexdigest(),
        "annotation_sha256": annotations,
    }


def write_plan(name: str, plan: Plan, out: Path, geometry: geo.Geometry, raw_roots: dict,
               expected: dict[str, int] | None, skip_corrupt: bool) -> Store:
    """Check counts, then decode, check, transform and store every item (atomically)."""
    items = plan.items
    check_counts(name, items, expected)
    loader = ImageLoader(skip_corrupt=skip_corrupt)
    keep = []
    with StoreWriter(out, len(items), (geometry.resize, geometry.resize), plan.k) as writer:
        for index, item in enumerate(items):
            image = loader.load(item.path, label=item.file, named_by=item.where)
            if image is None:
                continue
            if item.size is not None and tuple(image.shape[:2]) != tuple(item.size):
                raise InputError(
                    f"{item.where}: the annotations give image {item.path} the size {item.size[1]} x {item.size[0]} "
                    f"px (width x height), the file is {image.shape[1]} x {image.shape[0]}. Expected the images the "
                    "annotation files were made for. Fix: restore the images and annotations from one download.")
            check_inside(item.landmarks, image.shape[0], image.shape[1], item.where, str(item.path))
            prepared, landmarks = item.transform(image, item.landmarks)
            writer.put(index, prepared, landmarks)
            keep.append(index)
            if (index + 1) % PROGRESS_EVERY == 0:
                log.info("%s: %d / %d images prepared", name, index + 1, len(items))
        if not keep:
            raise InputError(f"preparer '{name}': every one of the {len(items)} images was skipped as corrupt "
                             f"(first: {loader.skipped[0] if loader.skipped else None}).")
        for entry in loader.skipped:
            log.warning("%s: skipped corrupt image %s", name, entry["file"])
        table = pd.DataFrame([{"file": items[i].file, "split": items[i].split, **items[i].columns} for i in keep])
        manifest = {
            "name": name, "preparer": name, "expected_counts": expected, "skipped": loader.skipped,
            "geometry": {"resize": geometry.resize, "crop": geometry.crop}, "options": plan.options,
            **_sources(plan, raw_roots),
        }
        return writer.commit(table, manifest, keep=np.array(keep))


# ------------------------------------------------------------------------------------------- CelebA / MAFL


def _identities(root: Path) -> dict[str, int]:
    """identity_CelebA.txt as {image: identity}; empty when the file is absent (identity is optional)."""
    try:
        celeba.find(root, "identity_CelebA.txt")
    except InputError:
        return {}
    rows = celeba.read_identities(root)
    return dict(zip(rows.names, rows.values[:, 0].tolist()))


def _aligned_plan(root: Path, names_by_split: list[tuple[str, list[str]]], size: int) -> Plan:
    """Aligned CelebA images (crop top 30, 178 x 178, resize) with their 5 landmarks and identities."""
    rows = celeba.read_landmarks(root, aligned=True)
    row_of, landmarks = rows.row_of(), celeba.landmarks_xy(rows)
    identities = _identities(root)
    image_dir = celeba.image_dir(root, aligned=True)
    folder = image_dir.relative_to(root).as_posix()
    transform = partial(geo.celeba_aligned, size=size)
    items = []
    for split, names in names_by_split:
        for name in names:
            if name not in row_of:
                raise InputError(f"{rows.path}: no landmarks for {name} (named by the {split} list). Expected a "
                                 "row for every CelebA image. Fix: use the complete official landmark file.")
            index = row_of[name]
            columns = {"identity": identities[name]} if name in identities else {}
            items.append(Item(split, f"{folder}/{name}", image_dir / name, landmarks[index], rows.where(index),
                              transform, columns, raw="celeba"))
    files = [rows.path] + ([celeba.find(root, "identity_CelebA.txt")] if identities else [])
    return Plan(items, 5, files)


def _mafl_lists(raw_roots: dict, name: str) -> tuple[dict[str, list[str]], list[Path]]:
    """MAFL train/test image names (disjoint: an image in both would leak test images into training)."""
    root = _root(raw_roots, "mafl", name)
    lists = {split: mafl.read_split(root, split) for split in ("train", "test")}
    both = sorted(set(lists["train"]) & set(lists["test"]))
    if both:
        raise InputError(f"{root / mafl.SPLIT_FILES['train']} and {root / mafl.SPLIT_FILES['test']}: {len(both)} "
                         f"image(s) in both splits (e.g. {both[0]}); expected disjoint lists. Fix: restore both "
                         "files from the MAFL distribution.")
    return lists, [root / file for file in mafl.SPLIT_FILES.values()]


def collect_celeba_ssl(name: str, raw_roots: dict, geometry: geo.Geometry, seed: int) -> Plan:
    """CelebA partition 0 minus every MAFL image (train or test), aligned crop (DVE CelebAPrunedAligned)."""
    root = _root(raw_roots, "celeba", name)
    partition = celeba.read_partition(root)
    lists, list_files = _mafl_lists(raw_roots, name)
    excluded = set(lists["train"]) | set(lists["test"])
    names = [image for image, code in zip(partition.names, partition.values[:, 0])
             if code == SSL_PARTITION and image not in excluded]
    plan = _aligned_plan(root, [("train", names)], geometry.resize)
    plan.annotation_files += [partition.path, *list_files]
    return plan


def collect_mafl(name: str, raw_roots: dict, geometry: geo.Geometry, seed: int) -> Plan:
    """MAFL train (file order) and test (sorted file names: the matching protocol's order), aligned crop."""
    root = _root(raw_roots, "celeba", name)
    lists, list_files = _mafl_lists(raw_roots, name)
    plan = _aligned_plan(root, [("train", lists["train"]), ("test", sorted(lists["test"]))], geometry.resize)
    plan.annotation_files += list_files
    return plan


def collect_mafl_unaligned(name: str, raw_roots: dict, geometry: geo.Geometry, seed: int) -> Plan:
    """MAFL images in the wild, cropped by list_bbox_celeba after a seeded zoom-out of the box side.

    Zoom ~ U(1, 1.5) for train and U(1, 2) for test (thesis Sec. 3), drawn in item order (train in file order,
    then test in sorted order) from `numpy.random.default_rng(seed)`, recorded per image in the `zoom` column.
    """
    root = _root(raw_roots, "celeba", name)
    rows, boxes = celeba.read_landmarks(root, aligned=False), celeba.read_bboxes(root)
    landmarks, row_of, box_of = celeba.landmarks_xy(rows), rows.row_of(), boxes.row_of()
    image_dir = celeba.image_dir(root, aligned=False)
    folder = image_dir.relative_to(root).as_posix()
    lists, list_files = _mafl_lists(raw_roots, name)
    rng = np.random.default_rng(seed)
    items = []
    for split, names in (("train", lists["train"]), ("test", sorted(lists["test"]))):
        for image in names:
            for index_of, source in ((row_of, rows), (box_of, boxes)):
                if image not in index_of:
                    raise InputError(f"{source.path}: no row for {image} (named by the MAFL {split} list). "
                                     "Fix: use the complete official CelebA annotation file.")
            celeba.check_landmarks_in_box(rows, boxes, image)
            x, y, width, height = boxes.values[box_of[image]]
            zoom = geo.sample_zoom(rng, split)
            columns = {"zoom": zoom, "bbox_x0": x, "bbox_y0": y, "bbox_x1": x + width, "bbox_y1": y + height}
            transform = partial(geo.zoomed_box_crop, box=(x, y, width, height), zoom=zoom, size=geometry.resize)
            items.append(Item(split, f"{folder}/{image}", image_dir / image, landmarks[row_of[image]],
                              rows.where(row_of[image]), transform, columns, raw="celeba"))
    options = {"seed": seed, "zoom_train": list(geo.ZOOM_RANGE_TRAIN), "zoom_test": list(geo.ZOOM_RANGE_TEST)}
    return Plan(items, 5, [rows.path, boxes.path, *list_files], options)


# ------------------------------------------------------------------------------------------- AFLW / 300W


def _annotation_items(raw: str, root: Path, split: str, annotations, transform_for) -> list[Item]:
    return [Item(split, file, root / file, annotations.landmarks[i], annotations.where[i], transform_for(i),
                 raw=raw) for i, file in enumerate(annotations.files)]


def collect_aflw_m(name: str, raw_roots: dict, geometry: geo.Geometry, seed: int) -> Plan:
    """AFLW_M: aflw_cropped rows with set == 1 (train) and MTFL testing.txt (test); 150 x 150 crops resized."""
    root = _root(raw_roots, "aflw_m", name)
    train, test = aflw_m.read_train(root), aflw_m.read_test(root)
    overlap = set(train.extra["image_file"]) & aflw_m.mtfl_source_images(test)
    if overlap:  # DVE asserts the same
        raise InputError(f"{root / aflw_m.TRAIN_FILE}: training rows (set == 1) use {len(overlap)} source images "
                         f"of the MTFL test set (e.g. {sorted(overlap)[0]}). Fix: use the official files.")
    resize = partial(geo.square_resize, size=geometry.resize)
    items = (_annotation_items("aflw_m", root, "train", train, lambda i: resize)
             + _annotation_items("aflw_m", root, "test", test, lambda i: resize))
    return Plan(items, 5, [root / aflw_m.TRAIN_FILE, root / aflw_m.TEST_FILE])


def collect_aflw_r(name: str, raw_roots: dict, geometry: geo.Geometry, seed: int) -> Plan:
    """AFLW_R: whole images resized to a square, breaking the aspect ratio (DVE AFLW)."""
    root = _root(raw_roots, "aflw_r", name)
    resize = partial(geo.square_resize, size=geometry.resize)
    items, files = [], []
    for split in ("train", "test"):
        annotations = aflw_r.read_split(root, split)
        split_items = _annotation_items("aflw_r", root, split, annotations, lambda i: resize)
        for item, size in zip(split_items, annotations.extra["hw"]):
            item.size = (int(size[0]), int(size[1]))  # the .mat's `hw` (height, width) of each image
        items += split_items
        files += [root / f"aflw_{split}_images.txt", root / f"aflw_{split}_keypoints.mat"]
    return Plan(items, 5, files)


def collect_w300(name: str, raw_roots: dict, geometry: geo.Geometry, seed: int) -> Plan:
    """300W: box scaled to 52 px, 100 x 100 window at its centre (zero-padded), resized (DVE ThreeHundredW)."""
    root = _root(raw_roots, "w300", name)
    items, files = [], []
    for split in ("train", "test"):
        annotations = w300.read_split(root, split)
        boxes = annotations.extra["box"]
        split_items = _annotation_items(
            "w300", root, split, annotations,
            lambda i: partial(geo.w300_box_crop, box=boxes[i], size=geometry.resize))
        for item, box in zip(split_items, boxes):
            item.columns = dict(zip(("bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1"), box.tolist()))
        items += split_items
        files += [root / w300.BOX_DIR / f"bounding_boxes_{subset}.mat" for subset, _ in w300.SUBSETS[split]]
        files += [item.path.with_suffix(".pts") for item in split_items]
    return Plan(items, w300.N_POINTS, files, {"box_coordinates": "bb_ground_truth, 1-based"})


COLLECTORS: dict[str, Callable[[str, dict, geo.Geometry, int], Plan]] = {
    "celeba_ssl": collect_celeba_ssl,
    "mafl": collect_mafl,
    "mafl_unaligned": collect_mafl_unaligned,
    "aflw_m": collect_aflw_m,
    "aflw_r": collect_aflw_r,
    "w300": collect_w300,
}


def _make_preparer(collect: Callable) -> Callable[..., Store]:
    def prepare_dataset(name, raw_roots, out, geometry, expected_counts=None, skip_corrupt=False, seed=0,
                        **options) -> Store:
        if options:
            raise InputError(f"preparer '{name}' takes no options, got {sorted(options)}. "
                             f"Fix: remove prepared.<store>.options for this store from the config.")
        geometry = geo.Geometry.from_config(geometry)
        plan = collect(name, raw_roots, geometry, seed)
        return write_plan(name, plan, Path(out), geometry, raw_roots, _expected(name, expected_counts),
                          skip_corrupt)

    prepare_dataset.__doc__ = collect.__doc__
    return prepare_dataset


PREPARERS: dict[str, Callable[..., Store]] = {name: _make_preparer(c) for name, c in COLLECTORS.items()}


def prepare(name: str, raw_roots: dict[str, Path], out: Path, geometry: dict,
            expected_counts: dict[str, int] | None = None, skip_corrupt: bool = False, seed: int = 0) -> Store:
    """Run the landmark preparer `name` (see the module docstring)."""
    if name not in PREPARERS:
        raise InputError(f"unknown landmark preparer '{name}'; expected one of {sorted(PREPARERS)}.")
    return PREPARERS[name](name, raw_roots, out, geometry, expected_counts=expected_counts,
                           skip_corrupt=skip_corrupt, seed=seed)


def raw_sources_sha256(name: str, raw_roots: dict, geometry: dict | None = None, seed: int = 0) -> str:
    """The `sources_sha256` a fresh preparation would record (reads annotations, decodes no image)."""
    plan = COLLECTORS[name](name, raw_roots, geo.Geometry.from_config(geometry), seed)
    return _sources(plan, raw_roots)["sources_sha256"]


def store_is_current(store_path: Path, name: str, raw_roots: dict, seed: int = 0) -> bool:
    """False when the raw files (image list and sizes, annotation contents) changed since the store was written."""
    store = open_store(store_path)
    return store.is_current(raw_sources_sha256(name, raw_roots, store.manifest.get("geometry"), seed))
