"""Landmark error normalised by the inter-ocular distance (IOD), in percent.

DESIGN §5 / DVE `model/metric.py::inter_ocular_error`:
    error = 100 * mean over images and landmarks of ||pred - gt|| / ||gt[e0] - gt[e1]||.
The ratio is scale-free, so pixels of the 96x96 crop and [-1, 1] coordinates of a square crop give the same
number. Landmarks that are absent (NaN in the ground truth) are left out of the mean.
"""
from __future__ import annotations

import numpy as np
import torch

from lead_hsr.errors import InputError

# Which two landmarks define the inter-ocular distance (0-based), per prepared dataset.
EYE_INDICES = {
    "mafl": (0, 1),      # CelebA/MAFL order: left eye, right eye, nose, mouth corners (DVE eye_kp_idxs [0, 1])
    "mafl_unaligned": (0, 1),  # same 5 CelebA landmarks on in-the-wild crops
    "aflw_m": (0, 1),    # MTFL 5-point order starts with the two eye centres (DVE AFLW_MTFL eye_kp_idxs)
    "aflw_r": (0, 1),    # AFLW recrop, 5 points, eyes first (DVE AFLW eye_kp_idxs)
    "w300": (36, 45),    # 68-point iBUG markup: outer eye corners, 0-based (DVE ThreeHundredW eye_kp_idxs)
}


def eye_indices_for(dataset: str) -> tuple[int, int]:
    if dataset not in EYE_INDICES:
        raise InputError(f"IOD: no eye landmark indices for dataset {dataset!r}; known: {sorted(EYE_INDICES)}. "
                         "Add the dataset to lead_hsr.metrics.iod.EYE_INDICES.")
    return EYE_INDICES[dataset]


def _as_array(points, name: str) -> np.ndarray:
    if isinstance(points, torch.Tensor):
        points = points.detach().cpu().double().numpy()
    array = np.asarray(points, dtype=np.float64)
    if array.ndim != 3 or array.shape[2] != 2:
        raise ValueError(f"IOD: {name} must be N x K x 2 (x, y), got shape {array.shape}")
    return array


def iod_errors(pred, gt, eye_indices: tuple[int, int]) -> np.ndarray:
    """Per-image error in percent of IOD (mean over that image's present landmarks), shape N."""
    pred, gt = _as_array(pred, "pred"), _as_array(gt, "gt")
    if pred.shape != gt.shape:
        raise ValueError(f"IOD: pred {pred.shape} and gt {gt.shape} differ in shape")
    left, right = eye_indices
    iod = np.linalg.norm(gt[:, left] - gt[:, right], axis=1)  # N
    if np.any(~(iod > 0)):
        bad = np.flatnonzero(~(iod > 0))[:5].tolist()
        raise ValueError(f"IOD: zero or missing inter-ocular distance for images {bad} (eye indices {eye_indices})")
    distances = np.linalg.norm(pred - gt, axis=2)  # N x K, NaN where gt is absent
    return 100.0 * np.nanmean(distances / iod[:, None], axis=1)


def iod_error(pred, gt, eye_indices: tuple[int, int]) -> float:
    """100 * mean over images and landmarks of ||pred - gt|| / ||gt[e0] - gt[e1]|| (absent landmarks skipped)."""
    pred_a, gt_a = _as_array(pred, "pred"), _as_array(gt, "gt")
    errors = iod_errors(pred_a, gt_a, eye_indices)
    # mean over all (image, landmark) pairs: weight each image by its number of present landmarks
    present = np.isfinite(gt_a).all(axis=2).sum(axis=1)
    return float(np.sum(errors * present) / np.sum(present))
