"""300-W raw layout: subset folders of images + `.pts` files, and `Bounding Boxes/bounding_boxes_*.mat`.

As DVE's ThreeHundredW loader reads it: images and same-stem `.pts` files under `afw/`, `helen/trainset/`,
`lfpw/trainset/` (train) and `helen/testset/`, `lfpw/testset/`, `ibug/` (test); one box file per subset
holding a 1xN cell array `bounding_boxes` of structs {imgName, bb_detector, bb_ground_truth}, boxes as
[xmin ymin xmax ymax] in 1-based pixels, `bb_ground_truth` being the tight box of the 68 points. Like the real
iBUG box file, ours lists a few names that do not start with 'image' and have no image (readers must skip them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lead_hsr.data.synthetic.common import (allocate, atomic_directory, check_counts, image_rng, save_jpeg,
                                            save_png, savemat_deterministic, write_manifest, write_text)
from lead_hsr.data.synthetic.face import Placement, render_face, sample_identity, sample_view
from lead_hsr.errors import InputError

W300_SPLITS = ("train", "test")
# subset folder, box-file suffix, real image count (3,148 train / 689 test; DVE asserts these totals)
W300_SUBSETS = {
    "train": (("afw", "afw", 337), ("helen/trainset", "helen_trainset", 2000), ("lfpw/trainset", "lfpw_trainset", 811)),
    "test": (("helen/testset", "helen_testset", 330), ("lfpw/testset", "lfpw_testset", 224), ("ibug", "ibug", 135)),
}
IBUG_EXTRA_BOX_NAMES = 2  # box entries without an image (name not starting with 'image'), as in the real iBUG file
CANVAS_RANGE = (150, 240)
PTS_DECIMALS = 3  # image side range in pixels (300-W images vary in size)


def _image_name(folder: str, number: int) -> str:
    """File names in the style of each 300-W subset."""
    if folder == "afw":
        return f"{1000000000 + 7919 * number}_1.jpg"
    if folder.startswith("helen"):
        return f"{100000000 + 3571 * number}_1.jpg"
    if folder.startswith("lfpw"):
        return f"image_{number:04d}.png"
    return f"image_{number:03d}_1.jpg"  # ibug


def pts_text(one_based: np.ndarray) -> list[str]:
    """Lines of an iBUG .pts file for points already in its 1-based (MATLAB) pixel convention."""
    return ["version: 1", f"n_points:  {len(one_based)}", "{",
            *(f"{x:.{PTS_DECIMALS}f} {y:.{PTS_DECIMALS}f}" for x, y in one_based), "}"]


def _render(seed: int, folder: str, index: int):
    rng = image_rng(seed, f"w300/{folder}", index)
    width, height = (int(v) for v in rng.integers(*CANVAS_RANGE, size=2))
    side = min(width, height)
    hard = folder == "ibug"  # iBUG is the challenging subset: larger poses
    placement = Placement(centre_x=(0.4 * width, 0.6 * width), centre_y=(0.35 * height, 0.5 * height),
                          eye_distance_px=(0.22 * side, 0.3 * side), max_yaw_deg=40.0 if hard else 28.0,
                          max_roll_deg=25.0 if hard else 12.0, low_light_probability=0.15 if hard else 0.05)
    identity = sample_identity(rng)
    return rng, render_face(identity, sample_view(rng, identity, placement), width, height, rng)


def _box_struct(name: str, ground_truth: np.ndarray, detector: np.ndarray) -> dict:
    return {"imgName": name, "bb_detector": detector.reshape(1, 4), "bb_ground_truth": ground_truth.reshape(1, 4)}


def write_w300(root: Path, counts: dict, seed: int, image_size: int | None = None) -> dict[str, int]:
    counts = check_counts("w300", counts, W300_SPLITS)
    if image_size is not None:
        raise InputError("synthetic dataset 'w300': image_size must be null; 300-W images vary in size and the "
                         "protocol crops them by their boxes. Fix: remove image_size for 'w300'.")
    with atomic_directory(root) as out:
        for split in W300_SPLITS:
            subsets = W300_SUBSETS[split]
            for (folder, suffix, _), count in zip(subsets, allocate(counts[split], [s[2] for s in subsets])):
                boxes = []
                for index in range(count):
                    rng, face = _render(seed, folder, index)
                    name = _image_name(folder, index + 1)
                    (save_jpeg if name.endswith(".jpg") else save_png)(out / folder / name, face.image)
                    one_based = np.round(face.landmarks68 + 1.0, PTS_DECIMALS)  # the box uses the written values
                    write_text(out / folder / (name[:-3] + "pts"), pts_text(one_based))
                    tight = np.concatenate([one_based.min(axis=0), one_based.max(axis=0)])
                    detector = tight + rng.normal(0, 0.04 * (tight[2] - tight[0]), 4)  # a face detector's box
                    boxes.append(_box_struct(name, tight, detector))
                if folder == "ibug":
                    for extra in range(IBUG_EXTRA_BOX_NAMES):
                        fake = np.array([10.0, 10.0, 60.0, 60.0]) + extra
                        boxes.append(_box_struct(f"{extra + 1:03d}_no_image.jpg", fake, fake))
                cells = np.empty((1, len(boxes)), dtype=object)
                for i, box in enumerate(boxes):
                    cells[0, i] = box
                savemat_deterministic(out / "Bounding Boxes" / f"bounding_boxes_{suffix}.mat", {"bounding_boxes": cells})
        write_manifest(out, "w300", seed, image_size, counts)
    return counts

