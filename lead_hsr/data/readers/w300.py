"""300W (68 points), as read by DVE's ThreeHundredW (split of Ren et al., "3000 fps").

Layout of the `w300` raw root:
    afw/, helen/trainset/, helen/testset/, lfpw/trainset/, lfpw/testset/, ibug/   images + <stem>.pts
    Bounding Boxes/bounding_boxes_<subset>.mat   struct array `bounding_boxes` with fields `imgName`,
                                                 `bb_detector`, `bb_ground_truth` (xmin ymin xmax ymax, 1-based)
.pts files: `version: 1`, `n_points: 68`, `{`, 68 lines `x y` (MATLAB 1-based), `}`.
Train = AFW + HELEN train + LFPW train (3,148); test = HELEN test + LFPW test + iBUG (689), where for iBUG only
the box entries whose name starts with `image` have images (DVE).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.io import loadmat

from lead_hsr.data.layouts import W300_BOX_DIR, W300_SUBSETS
from lead_hsr.data.readers.common import (
    Annotations, check_unique, malformed, missing, parse_numbers, read_lines, require_file, require_root,
)
from lead_hsr.errors import InputError

DATASET = "w300"
N_POINTS = 68
BOX_DIR = W300_BOX_DIR
SUBSETS = W300_SUBSETS  # split -> (box file subset name, image folder), in DVE's order
IBUG_PREFIX = "image"  # DVE: only iBUG box entries starting with 'image' exist as images
LAYOUT = ("afw/, helen/{trainset,testset}/, lfpw/{trainset,testset}/, ibug/ (images + .pts), "
          "'Bounding Boxes/bounding_boxes_{afw,helen_trainset,helen_testset,lfpw_trainset,lfpw_testset,ibug}.mat'")
_PTS_EXPECTED = "the .pts format: `version: 1`, `n_points: 68`, `{`, 68 lines `x y`, `}`"


def read_pts(path: Path) -> np.ndarray:
    """68 x 2 landmarks (x, y), converted from MATLAB 1-based to 0-based pixels."""
    lines = read_lines(path)
    header_checks = [lambda t: t.split()[:1] == ["version:"],
                     lambda t: t.split() == ["n_points:", str(N_POINTS)],
                     lambda t: t.strip() == "{"]
    for position, check in enumerate(header_checks):
        number, text = lines[position] if position < len(lines) else (position + 1, "<end of file>")
        if not check(text):
            raise malformed(path, number, _PTS_EXPECTED, text)
    points = []
    for number, text in lines[3:]:
        if text.strip() == "}":
            break
        tokens = text.split()
        if len(tokens) != 2:
            raise malformed(path, number, "`x y` (two numbers) inside { }", text)
        points.append(parse_numbers(tokens, path, number, "`x y` (two numbers)", text))
    else:
        raise malformed(path, lines[-1][0], _PTS_EXPECTED + " (missing closing `}`)", lines[-1][1])
    if len(points) != N_POINTS:
        raise InputError(f"{path}: found {len(points)} points, expected {N_POINTS}. "
                         "Fix: restore the file from the 300W distribution.")
    return np.array(points, dtype=np.float64) - 1


def read_boxes(path: Path) -> list[tuple[str, np.ndarray]]:
    """(image name, bb_ground_truth) per entry of a bounding_boxes_*.mat file, in file order."""
    try:
        mat = loadmat(path, squeeze_me=True, struct_as_record=False)
        entries = np.atleast_1d(mat["bounding_boxes"])
        boxes = [(str(entry.imgName), np.asarray(entry.bb_ground_truth, dtype=np.float64).reshape(4))
                 for entry in entries]
    except MemoryError:
        raise
    except Exception as error:  # damaged file, missing variable or field
        raise InputError(
            f"{path}: cannot read the 300W box file ({type(error).__name__}: {error}); expected a struct array "
            "`bounding_boxes` with fields imgName and bb_ground_truth (xmin ymin xmax ymax). "
            "Fix: restore it from the 300W 'Bounding Boxes' download."
        ) from error
    for index, (name, box) in enumerate(boxes):
        x0, y0, x1, y1 = box
        if not (np.all(np.isfinite(box)) and x1 > x0 and y1 > y0):
            raise InputError(
                f"{path}: entry {index + 1} ({name}) has bb_ground_truth {box.tolist()}; expected finite "
                "xmin ymin xmax ymax with xmax > xmin and ymax > ymin. Fix: restore it from the 300W download."
            )
    return boxes


# How far a .pts point may sit outside its bb_ground_truth, as a fraction of the box side. The ground-truth box
# of 300W is the tight box of the 68 points, so a correct pair agrees to a pixel; a .pts of another image, a
# shifted box list or swapped x/y lands far outside.
BOX_TOLERANCE = 0.1


def check_points_in_box(points: np.ndarray, box: np.ndarray, where: str) -> None:
    """InputError when 0-based `points` contradict the 1-based bb_ground_truth `box` (xmin ymin xmax ymax)."""
    x0, y0, x1, y1 = np.asarray(box, dtype=np.float64) - 1
    margin = BOX_TOLERANCE * np.array([x1 - x0, y1 - y0])
    low, high = np.array([x0, y0]) - margin, np.array([x1, y1]) + margin
    outside = ~((points >= low) & (points <= high)).all(axis=1)
    if outside.any():
        point = int(np.flatnonzero(outside)[0])
        raise InputError(
            f"{where}: point {point + 1} at ({points[point, 0] + 1:.1f}, {points[point, 1] + 1:.1f}) (1-based) lies outside its "
            f"bb_ground_truth {np.asarray(box).tolist()}; expected the 68 points inside their box. Fix: the .pts "
            "file and the box entry do not belong together; restore both from the 300W download."
        )


def read_split(root, split: str) -> Annotations:
    """Image paths relative to the root, 0-based landmarks, `extra['box']` (1-based xmin ymin xmax ymax)."""
    root = require_root(root, DATASET, LAYOUT)
    files, landmarks, where, boxes = [], [], [], []
    for subset, folder in SUBSETS[split]:
        box_path = require_file(root / BOX_DIR / f"bounding_boxes_{subset}.mat", DATASET, LAYOUT)
        for index, (name, box) in enumerate(read_boxes(box_path)):
            if subset == "ibug" and not name.startswith(IBUG_PREFIX):
                continue
            pts_path = root / folder / (Path(name).stem + ".pts")
            if not pts_path.is_file():
                raise InputError(f"{missing(pts_path, DATASET, LAYOUT)} The .pts file is named by entry {index + 1} "
                                 f"({name!r}) of {box_path}.")
            files.append(f"{folder}/{name}")
            landmarks.append(read_pts(pts_path))
            where.append(f"{pts_path} (box entry {index + 1} of {box_path.name})")
            check_points_in_box(landmarks[-1], box, where[-1])
            boxes.append(box)
    check_unique(files, where, "image")
    return Annotations(files, np.array(landmarks).reshape(-1, N_POINTS, 2), where,
                       extra={"box": np.array(boxes).reshape(-1, 4)})
