"""AFLW_R (the AFLW recrop distributed with DVE), as read by DVE's `AFLW` loader.

Layout of the `aflw_r` raw root:
    aflw_{train,test}_images.txt     one image name per line (relative to output/)
    aflw_{train,test}_keypoints.mat  `gt`: N x 5 x 2 in (y, x) order, 0-based pixels; `hw`: N x 2 (height, width)
    output/<name>                    the images
"""

from __future__ import annotations

import numpy as np
from scipy.io import loadmat

from lead_hsr.data.layouts import AFLW_R_IMAGE_DIR
from lead_hsr.data.readers.common import (
    Annotations, check_unique, malformed, read_lines, require_file, require_root,
)
from lead_hsr.errors import InputError

DATASET = "aflw_r"
LAYOUT = ("aflw_{train,test}_images.txt, aflw_{train,test}_keypoints.mat (gt N x 5 x 2 (y, x), hw N x 2), "
          "output/<images>")
IMAGE_DIR = AFLW_R_IMAGE_DIR


def _read_mat(path, dataset_layout=LAYOUT) -> dict:
    try:
        return loadmat(path)
    except Exception as error:  # scipy raises several types for a damaged .mat
        raise InputError(f"{path}: cannot read MATLAB file ({error}); expected {dataset_layout}. "
                         "Fix: restore the file from the dataset's official distribution.") from error


def read_split(root, split: str) -> Annotations:
    """Image paths relative to the root, landmarks 0-based (x, y), and `extra['hw']` (height, width)."""
    root = require_root(root, DATASET, LAYOUT)
    list_path = require_file(root / f"aflw_{split}_images.txt", DATASET, LAYOUT)
    mat_path = require_file(root / f"aflw_{split}_keypoints.mat", DATASET, LAYOUT)
    lines = read_lines(list_path)
    for number, text in lines:
        if len(text.split()) != 1:
            raise malformed(list_path, number, "one image name per line", text)
    mat = _read_mat(mat_path)
    gt, hw = np.asarray(mat.get("gt", np.zeros(0))), np.asarray(mat.get("hw", np.zeros(0)))
    n = len(lines)
    if gt.shape != (n, 5, 2) or hw.shape != (n, 2):
        raise InputError(
            f"{mat_path}: expected `gt` of shape ({n}, 5, 2) and `hw` of shape ({n}, 2) to match the {n} lines "
            f"of {list_path}, got gt {gt.shape}, hw {hw.shape}. Fix: use the matching .txt/.mat pair."
        )
    if not (np.issubdtype(gt.dtype, np.number) and np.all(np.isfinite(gt))):
        raise InputError(f"{mat_path}: `gt` holds non-numeric or non-finite (nan/inf) landmarks; expected finite "
                         "pixel coordinates. Fix: restore the file from the dataset's official distribution.")
    if not (np.issubdtype(hw.dtype, np.number) and np.all(np.isfinite(hw)) and np.all(hw > 0)
            and np.all(hw == np.round(hw))):
        raise InputError(f"{mat_path}: `hw` holds non-positive, fractional or non-finite image sizes; expected "
                         "whole (height, width) > 0. Fix: restore the file from the dataset's official distribution.")
    files = [f"{IMAGE_DIR}/" + text.strip().replace("\\", "/") for _, text in lines]
    landmarks = gt[:, :, ::-1].astype(np.float64)  # (y, x) -> (x, y), as DVE's gt[:, :, [1, 0]]
    where = [f"{list_path}:{number}" for number, _ in lines]
    check_unique(files, where, "image")
    return Annotations(files, landmarks, where, extra={"hw": hw.astype(np.int64)})
