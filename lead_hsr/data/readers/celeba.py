"""CelebA raw files (official distribution, as read by DVE's CelebA loaders).

Layout of the `celeba` raw root (files may sit directly in the root, or in the official `Anno/`, `Eval/`,
`Img/` sub-folders of the Google-Drive download):
    img_align_celeba/NNNNNN.jpg     aligned 178 x 218 images
    img_celeba/NNNNNN.jpg           in-the-wild images (any size)
    list_landmarks_align_celeba.txt count line, header of 10 names, rows `000001.jpg 69 109 106 113 ...`
    list_landmarks_celeba.txt       same, for img_celeba
    list_eval_partition.txt         rows `000001.jpg 0` (0/1/2 = train/val/test), no count or header line
    list_bbox_celeba.txt            count line, header `image_id x_1 y_1 width height`, rows
    identity_CelebA.txt             rows `000001.jpg 2880`, no count or header line
    list_attr_celeba.txt            count line, header of the 40 attribute names, rows of +1/-1
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lead_hsr.data.layouts import CELEBA_SUBFOLDERS
from lead_hsr.data.readers.common import (
    check_row_count, check_unique, malformed, missing, parse_numbers, read_lines, require_root,
)
from lead_hsr.errors import InputError, located

DATASET = "celeba"
LAYOUT = ("img_align_celeba/*.jpg, img_celeba/*.jpg, list_landmarks_align_celeba.txt, list_landmarks_celeba.txt, "
          "list_eval_partition.txt, list_bbox_celeba.txt, identity_CelebA.txt, list_attr_celeba.txt "
          "(directly in the root or in the official Anno/, Eval/, Img/ folders)")
ALIGNED_DIR = "img_align_celeba"
WILD_DIR = "img_celeba"
# official headers (CelebA README / the files themselves)
LANDMARK_HEADER = ["lefteye_x", "lefteye_y", "righteye_x", "righteye_y", "nose_x", "nose_y",
                   "leftmouth_x", "leftmouth_y", "rightmouth_x", "rightmouth_y"]
BBOX_HEADER = ["image_id", "x_1", "y_1", "width", "height"]
ATTRIBUTE_NAMES = [
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips",
    "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin",
    "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open",
    "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline",
    "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
]
PARTITION_SPLITS = {0: "train", 1: "val", 2: "test"}  # list_eval_partition.txt codes
_SUBFOLDERS = CELEBA_SUBFOLDERS


@dataclass
class NamedRows:
    """Rows `<image name> v1 v2 ...` of one CelebA file, in file order."""

    path: Path
    names: list[str]
    values: np.ndarray  # N x C
    lines: list[int]  # 1-based line number of each row

    def where(self, index: int) -> str:
        return located(self.path, self.lines[index])

    def row_of(self) -> dict[str, int]:
        return {name: index for index, name in enumerate(self.names)}


def find(root, name: str) -> Path:
    """A CelebA file or folder in the root or in one of the official sub-folders."""
    root = require_root(root, DATASET, LAYOUT)
    for sub in _SUBFOLDERS:
        candidate = root / sub / name
        if candidate.exists():
            return candidate
    raise missing(root / name, DATASET, LAYOUT)


def image_dir(root, aligned: bool = True) -> Path:
    return find(root, ALIGNED_DIR if aligned else WILD_DIR)


def _read_rows(path: Path, n_values: int, kind, header: list[str] | None, expected: str) -> NamedRows:
    """Parse `name v1..vn` rows; with `header`, the file has a count line and that header line first."""
    lines = read_lines(path)
    declared = None
    if header is not None:
        if len(lines) < 2:
            raise malformed(path, len(lines) + 1, "a count line and a header line", "<end of file>")
        number, text = lines[0]
        if not text.strip().isdigit():
            raise malformed(path, number, "a first line holding only the number of rows", text)
        declared = int(text)
        number, text = lines[1]
        if text.split() != header:
            raise malformed(path, number, "the header " + " ".join(header), text)
        lines = lines[2:]
    names, values, numbers = [], [], []
    for number, text in lines:
        tokens = text.split()
        if len(tokens) != n_values + 1:
            raise malformed(path, number, expected, text)
        names.append(tokens[0])
        values.append(parse_numbers(tokens[1:], path, number, expected, text, kind))
        numbers.append(number)
    if declared is not None:
        check_row_count(path, declared, len(names))
    check_unique(names, [located(path, number) for number in numbers], "image")
    array = np.array(values, dtype=np.float64 if kind is float else np.int64).reshape(len(names), n_values)
    return NamedRows(path, names, array, numbers)


def read_landmarks(root, aligned: bool = True) -> NamedRows:
    """5 landmarks per image, values N x 10 as (x1, y1, ..., x5, y5) in the image's pixels."""
    name = "list_landmarks_align_celeba.txt" if aligned else "list_landmarks_celeba.txt"
    return _read_rows(find(root, name), 10, float, LANDMARK_HEADER,
                      "`000001.jpg` followed by 10 numbers (x, y of eyes, nose, mouth corners)")


def landmarks_xy(rows: NamedRows) -> np.ndarray:
    """N x 10 landmark rows -> N x 5 x 2 (x, y)."""
    return rows.values.reshape(-1, 5, 2)


def read_partition(root) -> NamedRows:
    rows = _read_rows(find(root, "list_eval_partition.txt"), 1, int, None, "`000001.jpg 0` (0/1/2 = train/val/test)")
    bad = ~np.isin(rows.values[:, 0], list(PARTITION_SPLITS))
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise malformed(rows.path, rows.lines[index], "partition code 0, 1 or 2", str(rows.values[index, 0]))
    return rows


def read_bboxes(root) -> NamedRows:
    """In-the-wild face boxes, values N x 4 as (x_1, y_1, width, height) with width, height > 0."""
    rows = _read_rows(find(root, "list_bbox_celeba.txt"), 4, float, BBOX_HEADER,
                      "`000001.jpg x_1 y_1 width height`")
    bad = ~(rows.values[:, 2:] > 0).all(axis=1)
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise malformed(rows.path, rows.lines[index], "a box with positive width and height",
                        " ".join(map(str, rows.values[index])))
    return rows


# How far a landmark of list_landmarks_celeba.txt may sit outside its face box of list_bbox_celeba.txt, as a
# fraction of the box side. The official boxes hold the five points (eyes, nose, mouth corners) inside; the
# margin is generous (half a box side) because a few official boxes are loose or off-centre, while a shifted
# row, a row of another image or swapped x/y lands far outside.
BOX_TOLERANCE = 0.5


def check_landmarks_in_box(landmarks: NamedRows, boxes: NamedRows, name: str) -> None:
    """InputError naming both rows when the in-the-wild landmarks of `name` contradict its face box."""
    points = landmarks.values[landmarks.row_of()[name]].reshape(5, 2)
    row = boxes.row_of()[name]
    x, y, width, height = boxes.values[row]
    low = np.array([x - BOX_TOLERANCE * width, y - BOX_TOLERANCE * height])
    high = np.array([x + (1 + BOX_TOLERANCE) * width, y + (1 + BOX_TOLERANCE) * height])
    outside = ~((points >= low) & (points <= high)).all(axis=1)
    if outside.any():
        point = int(np.flatnonzero(outside)[0])
        raise InputError(
            f"{landmarks.where(landmarks.row_of()[name])}: landmark {point} of {name} at "
            f"({points[point, 0]:.1f}, {points[point, 1]:.1f}) lies outside its face box ({x:g}, {y:g}, {width:g} x {height:g}) of "
            f"{boxes.where(row)}; expected the points inside the box. Fix: the two files do not match (rows "
            "shifted or from another CelebA version); restore both from the official distribution."
        )


def read_identities(root) -> NamedRows:
    return _read_rows(find(root, "identity_CelebA.txt"), 1, int, None, "`000001.jpg <identity number>`")


def read_attributes(root) -> NamedRows:
    """40 binary attributes per image as +1/-1, columns in ATTRIBUTE_NAMES order."""
    rows = _read_rows(find(root, "list_attr_celeba.txt"), 40, int, ATTRIBUTE_NAMES,
                      "`000001.jpg` followed by 40 values of 1 or -1")
    bad = ~np.isin(rows.values, (-1, 1)).all(axis=1)
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise malformed(rows.path, rows.lines[index], "40 values of 1 or -1", " ".join(map(str, rows.values[index])))
    return rows
