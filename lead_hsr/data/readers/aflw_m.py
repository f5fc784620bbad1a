"""AFLW_M: the 5-point AFLW of MTFL (test) and the `aflw_cropped` crops (train), as read by DVE's AFLW_MTFL.

Layout of the `aflw_m` raw root:
    MTFL/testing.txt                  2,995 rows ` AFLW\\0001-image20056.jpg x1..x5 y1..y5 gender smile glasses pose`
                                      (leading space, Windows separators, MATLAB 1-based coordinates)
    MTFL/AFLW/*.jpg                   the 150 x 150 test crops it names
    aflw_cropped/facedata_cropped.csv header row; columns include image_file, crop_file, set; columns 5-14
                                      hold x1, y1, ..., x5, y5 (interleaved, 1-based); train = rows with set == 1
    aflw_cropped/<crop_file>          the 150 x 150 training crops
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from lead_hsr.data.layouts import AFLW_M_TEST_FILE, AFLW_M_TRAIN_FILE
from lead_hsr.data.readers.common import (
    Annotations, check_unique, malformed, parse_numbers, read_lines, read_text, require_file, require_root,
)

DATASET = "aflw_m"
LAYOUT = ("MTFL/testing.txt (+ the images it names under MTFL/), aflw_cropped/facedata_cropped.csv "
          "(+ the crops under aflw_cropped/)")
MTFL_DIR = "MTFL"
CROPPED_DIR = "aflw_cropped"
TEST_FILE = AFLW_M_TEST_FILE
TRAIN_FILE = AFLW_M_TRAIN_FILE
TRAIN_SET_CODE = 1  # DVE: all_anno[all_anno.set == 1]
REQUIRED_COLUMNS = ("image_file", "crop_file", "set")
LANDMARK_COLUMNS = slice(4, 14)  # DVE: all_anno.iloc[:, 4:14], interleaved x, y
_TEST_EXPECTED = "`<path> x1 x2 x3 x4 x5 y1 y2 y3 y4 y5 gender smile glasses pose` (15 fields)"


def read_test(root) -> Annotations:
    """MTFL test rows: image paths relative to the root (MTFL/AFLW/...), landmarks 0-based (x, y)."""
    root = require_root(root, DATASET, LAYOUT)
    path = require_file(root / TEST_FILE, DATASET, LAYOUT)
    files, landmarks, where = [], [], []
    for number, text in read_lines(path):
        tokens = text.split()  # also drops the leading spaces
        if len(tokens) != 15:
            raise malformed(path, number, _TEST_EXPECTED, text)
        values = parse_numbers(tokens[1:11], path, number, _TEST_EXPECTED, text)
        files.append(f"{MTFL_DIR}/" + tokens[0].replace("\\", "/"))
        landmarks.append(np.array(values).reshape(2, 5).T - 1)  # x1..x5, y1..y5 -> (x, y); MATLAB -> 0-based
        where.append(f"{path}:{number}")
    check_unique(files, where, "image")
    return Annotations(files, np.array(landmarks).reshape(-1, 5, 2), where)


def read_train(root) -> Annotations:
    """aflw_cropped rows with set == 1: crop paths relative to the root, landmarks 0-based (x, y)."""
    root = require_root(root, DATASET, LAYOUT)
    path = require_file(root / TRAIN_FILE, DATASET, LAYOUT)
    text = read_text(path)
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as error:  # e.g. an unclosed quote: csv would swallow the rest of the file into one field
        lines = text.splitlines()
        number = next((n for n, line in enumerate(lines, start=1) if line.count('"') % 2), len(lines))
        raise malformed(path, number, f"comma-separated fields ({error}; an unclosed quote?)",
                        lines[number - 1] if lines else "") from None
    header = [name.strip() for name in rows[0]] if rows else []
    if len(header) < 14 or any(column not in header for column in REQUIRED_COLUMNS):
        raise malformed(path, 1, "a header row with >= 14 columns including " + ", ".join(REQUIRED_COLUMNS)
                        + " and the 10 landmark columns in positions 5-14", ",".join(header))
    set_column, crop_column = header.index("set"), header.index("crop_file")
    expected = f"{len(header)} comma-separated fields with numeric set and landmark columns"
    files, landmarks, where, image_files = [], [], [], []
    for number, row in enumerate(rows[1:], start=2):
        if not row or all(not field.strip() for field in row):
            continue
        if len(row) != len(header):
            raise malformed(path, number, expected, ",".join(row))
        if parse_numbers([row[set_column]], path, number, expected, ",".join(row), float)[0] != TRAIN_SET_CODE:
            continue
        values = parse_numbers(row[LANDMARK_COLUMNS], path, number, expected, ",".join(row))
        files.append(f"{CROPPED_DIR}/" + row[crop_column].strip().replace("\\", "/"))
        landmarks.append(np.array(values).reshape(5, 2) - 1)  # interleaved x, y; MATLAB -> 0-based
        where.append(f"{path}:{number}")
        image_files.append(row[header.index("image_file")].strip())
    check_unique(files, where, "crop")
    return Annotations(files, np.array(landmarks).reshape(-1, 5, 2), where,
                       extra={"image_file": np.array(image_files, dtype=object)})


def mtfl_source_images(test: Annotations) -> set[str]:
    """Original AFLW image names of the MTFL test crops (DVE: `name.split('-')[-1]`) for the overlap check."""
    return {Path(name).name.split("-")[-1] for name in test.files}
