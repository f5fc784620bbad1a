"""Raw layouts of the GAN datasets: FFHQ tree, LSUN-Church LMDB, Animal Face folders, CUB-200-2011 files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import lmdb

from lead_hsr.data.synthetic.common import (atomic_directory, check_counts, encode_webp, image_rng, save_jpeg,
                                            save_png, write_manifest, write_text)
from lead_hsr.data.synthetic.face import Placement, render_face, sample_identity, sample_view
from lead_hsr.data.synthetic.scenes import BIRD_SPECIES, render_animal_face, render_bird, render_church
from lead_hsr.errors import InputError

FFHQ_FOLDER_SIZE = 1000  # images1024x1024/00000/00000.png .. 00999.png, then 01000/...
DEFAULT_SIZES = {"ffhq": 128, "lsun_church": 128, "animalface": 128, "cub": 160}  # when image_size is null
LSUN_ASPECT = 4 / 3  # LSUN church images are mostly landscape, short side 256
ANIMALFACE_FOLDERS = {"dog": "DogHead", "cat": "CatHead"}
# layout -> class -> image folder. Written out here, not imported from the reader: the renderer states the
# external layouts independently, so the tests check the reader against them.
ANIMALFACE_LAYOUTS = {
    "official": {kind: f"Image/{folder}" for kind, folder in ANIMALFACE_FOLDERS.items()},
    "data-efficient-gans": {"dog": "AnimalFace-dog", "cat": "AnimalFace-cat"},
}
CUB_ROOT = "CUB_200_2011"


def ffhq_relative_path(index: int) -> str:
    return f"images1024x1024/{index // FFHQ_FOLDER_SIZE * FFHQ_FOLDER_SIZE:05d}/{index:05d}.png"


def write_ffhq(root: Path, counts: dict, seed: int, image_size: int | None = None) -> dict[str, int]:
    """Aligned faces like FFHQ's (eyes at ~46% height, eye distance ~26% of the width), square PNGs."""
    counts = check_counts("ffhq", counts, ("train",))
    size = image_size or DEFAULT_SIZES["ffhq"]
    placement = Placement(centre_x=(0.49 * size, 0.51 * size), centre_y=(0.45 * size, 0.47 * size),
                          eye_distance_px=(0.24 * size, 0.28 * size), max_yaw_deg=25.0, max_roll_deg=3.0)
    with atomic_directory(root) as out:
        for index in range(counts["train"]):
            rng = image_rng(seed, "ffhq", index)
            identity = sample_identity(rng)
            face = render_face(identity, sample_view(rng, identity, placement), size, size, rng)
            save_png(out / ffhq_relative_path(index), face.image)
        write_manifest(out, "ffhq", seed, image_size, counts)
    return counts


def lsun_key(seed: int, index: int) -> bytes:
    """LSUN keys are 40-character hex strings."""
    return hashlib.sha1(f"synthetic-church-{seed}-{index}".encode()).hexdigest().encode()


def write_lsun_church(root: Path, counts: dict, seed: int, image_size: int | None = None) -> dict[str, int]:
    """`church_outdoor_train_lmdb/` with key = image id bytes, value = WebP bytes (as in the LSUN release)."""
    counts = check_counts("lsun_church", counts, ("train",))
    short = image_size or DEFAULT_SIZES["lsun_church"]
    width = int(round(short * LSUN_ASPECT))
    items = []
    for index in range(counts["train"]):
        image = render_church(image_rng(seed, "lsun_church", index), width, short)
        items.append((lsun_key(seed, index), encode_webp(image)))
    with atomic_directory(root) as out:
        env = lmdb.open(str(out / "church_outdoor_train_lmdb"), map_size=max(1 << 24, 4 * sum(len(v) for _, v in items)),
                        subdir=True)
        with env.begin(write=True) as txn:
            for key, value in sorted(items):
                txn.put(key, value)
        env.close()
        # lock.mdb holds process ids (never the same bytes twice) and readers open the LMDB with lock=False
        (out / "church_outdoor_train_lmdb" / "lock.mdb").unlink()
        write_manifest(out, "lsun_church", seed, image_size, counts)
    return counts


def write_animalface(root: Path, counts: dict, seed: int, image_size: int | None = None,
                     layout: str = "official") -> dict[str, int]:
    """`Image/DogHead/*.jpg` and `Image/CatHead/*.jpg` (layout "official"), or the same images as the
    data-efficient-gans zips unzip them: `AnimalFace-dog/*.jpg`, `AnimalFace-cat/*.jpg` ("data-efficient-gans")."""
    counts = check_counts("animalface", counts, tuple(ANIMALFACE_FOLDERS))
    if layout not in ANIMALFACE_LAYOUTS:
        raise InputError(f"synthetic Animal Face layout {layout!r}; expected one of {sorted(ANIMALFACE_LAYOUTS)}")
    size = image_size or DEFAULT_SIZES["animalface"]
    with atomic_directory(root) as out:
        for kind in ANIMALFACE_FOLDERS:
            for index in range(counts[kind]):
                image = render_animal_face(image_rng(seed, f"animalface/{kind}", index), kind, size)
                save_jpeg(out / ANIMALFACE_LAYOUTS[layout][kind] / f"{kind}_{index + 1:04d}.jpg", image)
        write_manifest(out, "animalface", seed, image_size, counts)
    return counts


def write_cub(root: Path, counts: dict, seed: int, image_size: int | None = None) -> dict[str, int]:
    """CUB_200_2011/: images.txt, bounding_boxes.txt ("id x y w h"), train_test_split.txt (1 = train),
    classes.txt, image_class_labels.txt, images/<class>/<file>.jpg; image width = image_size, varying height."""
    counts = check_counts("cub", counts, ("train", "test"))
    width = image_size or DEFAULT_SIZES["cub"]
    species = list(BIRD_SPECIES)
    rows = {key: [] for key in ("images", "boxes", "split", "labels")}
    with atomic_directory(root) as out:
        base = out / CUB_ROOT
        image_id = 0
        for split in ("train", "test"):
            for index in range(counts[split]):
                image_id += 1
                rng = image_rng(seed, f"cub/{split}", index)
                label = int(rng.integers(len(species)))
                height = int(round(width * rng.uniform(0.7, 1.0)))
                image, (x, y, w, h) = render_bird(rng, species[label], width, height)
                stem = species[label].split(".", 1)[1]
                relative = f"{species[label]}/{stem}_{image_id:04d}.jpg"
                save_jpeg(base / "images" / relative, image)
                rows["images"].append(f"{image_id} {relative}")
                rows["boxes"].append(f"{image_id} {x:.1f} {y:.1f} {w:.1f} {h:.1f}")
                rows["split"].append(f"{image_id} {1 if split == 'train' else 0}")
                rows["labels"].append(f"{image_id} {label + 1}")
        write_text(base / "images.txt", rows["images"])
        write_text(base / "bounding_boxes.txt", rows["boxes"])
        write_text(base / "train_test_split.txt", rows["split"])
        write_text(base / "image_class_labels.txt", rows["labels"])
        write_text(base / "classes.txt", [f"{i + 1} {name}" for i, name in enumerate(species)])
        write_manifest(out, "cub", seed, image_size, counts)
    return counts
