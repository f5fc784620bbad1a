"""AFLW_M (MTFL test list + aflw_cropped training crops) and AFLW_R (.txt lists + .mat keypoints) layouts.

AFLW_M root (as DVE's AFLW_MTFL loader reads it):
- `MTFL/testing.txt`: ` AFLW\\NNNN-imageNNNNN.jpg x1..x5 y1..y5 gender smile glasses pose` (leading space,
  Windows separator, 1-based coordinates, MTFL codes gender 1=male/2=female, smile and glasses 1=yes/2=no,
  pose 1..5 = left profile .. right profile), images under `MTFL/AFLW/`, all 150x150.
- `aflw_cropped/facedata_cropped.csv`: header, one row per face: face_id, image_file, set (1 = train,
  2 = test), crop_file, then x,y interleaved for the 5 points (1-based); crops 150x150 under `aflw_cropped/`.
  Every MTFL test image appears in the csv (image_file = the part of its name after the '-'), as DVE asserts.
AFLW_R root (as DVE's AFLW loader reads it): `aflw_{train,test}_images.txt` (one name per line),
`aflw_{train,test}_keypoints.mat` with `gt` [N,5,2] in (y, x) order (0-based) and `hw` [N,2] (height, width),
images under `output/`, of varying size and aspect ratio.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from lead_hsr.data.synthetic.common import (atomic_directory, check_counts, image_rng, save_jpeg,
                                            savemat_deterministic, write_manifest, write_text)
from lead_hsr.data.synthetic.face import Placement, render_face, sample_identity, sample_view
from lead_hsr.errors import InputError

AFLW_SPLITS = ("train", "test")
AFLW_M_CROP = 150  # aflw_cropped and MTFL test images are 150x150 (DVE scales their keypoints by imwidth/150)
# Faces fill the crop (AFLW crops are face-box crops); AFLW has larger poses than CelebA.
AFLW_M_PLACEMENT = Placement(centre_x=(68.0, 82.0), centre_y=(58.0, 72.0), eye_distance_px=(40.0, 52.0),
                             max_yaw_deg=35.0, max_roll_deg=15.0)
AFLW_M_CSV_HEADER = ("face_id,image_file,set,crop_file,lefteye_x,lefteye_y,righteye_x,righteye_y,nose_x,nose_y,"
                     "leftmouth_x,leftmouth_y,rightmouth_x,rightmouth_y")
CSV_SET_CODES = {"train": 1, "test": 2}
AFLW_R_SIZE_RANGE = (100, 180)  # AFLW_R images have varying height and width (resized to square by the protocol)
FIRST_AFLW_IMAGE_NUMBER = 2  # AFLW file names look like image00002.jpg


def _mtfl_pose(yaw_rad: float) -> int:
    """MTFL head-pose code: 1 left profile, 2 left, 3 frontal, 4 right, 5 right profile (30/10 degree bins)."""
    degrees = math.degrees(yaw_rad)
    return 1 + int(np.searchsorted([-30.0, -10.0, 10.0, 30.0], degrees))


def _render_aflw_m(seed: int, split: str, index: int):
    rng = image_rng(seed, f"aflw_m/{split}", index)
    identity = sample_identity(rng)
    view = sample_view(rng, identity, AFLW_M_PLACEMENT)
    return identity, view, render_face(identity, view, AFLW_M_CROP, AFLW_M_CROP, rng)


def write_aflw_m(root: Path, counts: dict, seed: int, image_size: int | None = None) -> dict[str, int]:
    counts = check_counts("aflw_m", counts, AFLW_SPLITS)
    _no_image_size("aflw_m", image_size)
    csv_rows, test_lines = [], []
    face_id = 0
    with atomic_directory(root) as out:
        for split in AFLW_SPLITS:
            for index in range(counts[split]):
                face_id += 1
                image_file = f"image{FIRST_AFLW_IMAGE_NUMBER + face_id - 1:05d}.jpg"
                identity, view, face = _render_aflw_m(seed, split, index)
                one_based = face.landmarks5 + 1.0  # MTFL and aflw_cropped use 1-based (MATLAB) coordinates
                crop_file = f"crops/{Path(image_file).stem}_0.jpg"
                save_jpeg(out / "aflw_cropped" / crop_file, face.image)
                coords = ",".join(f"{v:.3f}" for v in one_based.reshape(-1))  # x,y interleaved
                csv_rows.append(f"{face_id},{image_file},{CSV_SET_CODES[split]},{crop_file},{coords}")
                if split == "test":
                    name = f"{index + 1:04d}-{image_file}"
                    save_jpeg(out / "MTFL" / "AFLW" / name, face.image)
                    xs = " ".join(f"{v:.3f}" for v in one_based[:, 0])
                    ys = " ".join(f"{v:.3f}" for v in one_based[:, 1])
                    codes = (2 - identity.male, 2 - view.smiling, 2 - view.eyeglasses, _mtfl_pose(view.yaw))
                    test_lines.append(f" AFLW\\{name} {xs} {ys} " + " ".join(str(int(c)) for c in codes))
        write_text(out / "aflw_cropped" / "facedata_cropped.csv", [AFLW_M_CSV_HEADER, *csv_rows])
        write_text(out / "MTFL" / "testing.txt", test_lines, newline="\r\n")  # MTFL lists are Windows text files
        write_manifest(out, "aflw_m", seed, image_size, counts)
    return counts


def _render_aflw_r(seed: int, split: str, index: int):
    """One AFLW_R image: a face filling a canvas of random height and width."""
    rng = image_rng(seed, f"aflw_r/{split}", index)
    height, width = (int(v) for v in rng.integers(*AFLW_R_SIZE_RANGE, size=2))
    side = min(width, height)
    placement = Placement(centre_x=(0.45 * width, 0.55 * width), centre_y=(0.38 * height, 0.46 * height),
                          eye_distance_px=(0.3 * side, 0.36 * side), max_yaw_deg=35.0, max_roll_deg=15.0)
    identity = sample_identity(rng)
    return render_face(identity, sample_view(rng, identity, placement), width, height, rng)


def write_aflw_r(root: Path, counts: dict, seed: int, image_size: int | None = None) -> dict[str, int]:
    counts = check_counts("aflw_r", counts, AFLW_SPLITS)
    _no_image_size("aflw_r", image_size)
    number = FIRST_AFLW_IMAGE_NUMBER
    with atomic_directory(root) as out:
        for split in AFLW_SPLITS:
            names, gt, hw = [], np.zeros((counts[split], 5, 2)), np.zeros((counts[split], 2))
            for index in range(counts[split]):
                face = _render_aflw_r(seed, split, index)
                name = f"image{number:05d}.jpg"
                number += 1
                save_jpeg(out / "output" / name, face.image)
                names.append(name)
                gt[index] = face.landmarks5[:, ::-1]  # (y, x), as in the AFLW_R .mat files
                hw[index] = face.image.shape[:2]  # (height, width)
            write_text(out / f"aflw_{split}_images.txt", names)
            savemat_deterministic(out / f"aflw_{split}_keypoints.mat", {"gt": gt, "hw": hw})
        write_manifest(out, "aflw_r", seed, image_size, counts)
    return counts


def _no_image_size(name: str, image_size) -> None:
    if image_size is not None:
        raise InputError(f"synthetic dataset {name!r}: image_size must be null; the image geometry of {name} is "
                         f"fixed by its evaluation protocol. Fix: remove image_size for {name!r}.")
