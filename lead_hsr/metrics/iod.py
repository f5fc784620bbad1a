"""Landmark error normalised by the inter-ocular distance (IOD), in percent.

DESIGN §5 / DVE `model/metric.py::inter_ocular_error`:
    error = 100 * mean over images and landmarks of ||pred - gt|| / ||gt[e0] - gt[e1]||.
The ratio is scale-free, so pixels of the 96x96 crop and [-1, 1] coordinates of a square crop give the same
number. Landmarks that are absent (NaN in the ground truth) are left out of the mean.

The normaliser is a per-dataset setting (config `lead.datasets.<name>.normaliser`, `Normaliser.from_config`):
a landmark pair (the IOD: `{pair: [e0, e1]}`) or `box`, the size sqrt(w * h) of the bounding box of each image's
ground-truth landmarks (for categories without eyes). Left out, a paper dataset takes its protocol pair below.
"""
from __future__ import annotations

from dataclasses import dataclass

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


BOX = "box"  # config value of the box-size normaliser


def eye_indices_for(dataset: str) -> tuple[int, int]:
    if dataset not in EYE_INDICES:
        raise InputError(f"IOD: no eye landmark indices for dataset {dataset!r}; known (lead_hsr.metrics.iod."
                         f"EYE_INDICES): {sorted(EYE_INDICES)}. "
                         f"Set lead.datasets.<name>.normaliser in the config ({{pair: [i, j]}} or {BOX}).")
    return EYE_INDICES[dataset]


@dataclass(frozen=True)
class Normaliser:
    """What errors are divided by: the distance between landmarks `pair` (the IOD), or, pair None, the box size
    sqrt(w * h) of each image's present ground-truth landmarks."""

    pair: tuple[int, int] | None = None

    @classmethod
    def from_config(cls, value, where: str = "lead.datasets.<name>.normaliser") -> "Normaliser":
        """`{pair: [i, j]}`, `box`, a (i, j) pair, a Normaliser, or a paper store name (its EYE_INDICES pair)."""
        if isinstance(value, Normaliser):
            return value
        if value == BOX:
            return cls(None)
        if isinstance(value, dict) and set(value) == {"pair"}:
            value = value["pair"]
        elif isinstance(value, str):
            return cls(eye_indices_for(value))
        if (isinstance(value, (list, tuple)) and len(value) == 2
                and all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) and i >= 0 for i in value)
                and value[0] != value[1]):
            return cls((int(value[0]), int(value[1])))
        raise InputError(f"{where}: got {value!r}; expected {{pair: [i, j]}} (two different 0-based landmark "
                         f"indices, the IOD's eyes) or {BOX!r}.")

    def check(self, k: int, where: str = "lead.datasets.<name>.normaliser") -> None:
        if self.pair is not None and max(self.pair) >= k:
            raise InputError(f"{where}: landmark pair {list(self.pair)} but the dataset has K = {k} landmarks "
                             f"(indices 0..{k - 1}). Fix: name two of its landmarks, or use {BOX!r}.")

    def describe(self) -> str:
        if self.pair:
            return f"inter-ocular distance, landmarks {self.pair[0]}-{self.pair[1]}"
        return "box sqrt(w*h) of the landmarks"

    def distances(self, gt: np.ndarray) -> np.ndarray:
        """Per-image normalising distance of N x K x 2 ground truth (NaN = absent landmark)."""
        if self.pair is not None:
            return np.linalg.norm(gt[:, self.pair[0]] - gt[:, self.pair[1]], axis=1)
        with np.errstate(invalid="ignore"):
            extent = np.nanmax(gt, axis=1) - np.nanmin(gt, axis=1)  # N x 2: box width, height
        return np.sqrt(extent[:, 0] * extent[:, 1])


def _as_array(points, name: str) -> np.ndarray:
    if isinstance(points, torch.Tensor):
        points = points.detach().cpu().double().numpy()
    array = np.asarray(points, dtype=np.float64)
    if array.ndim != 3 or array.shape[2] != 2:
        raise ValueError(f"IOD: {name} must be N x K x 2 (x, y), got shape {array.shape}")
    return array


def iod_errors(pred, gt, eye_indices) -> np.ndarray:
    """Per-image error in percent of IOD (mean over that image's present landmarks), shape N.

    `eye_indices`: the (e0, e1) pair, or any `Normaliser` (`Normaliser.from_config`)."""
    pred, gt = _as_array(pred, "pred"), _as_array(gt, "gt")
    if pred.shape != gt.shape:
        raise ValueError(f"IOD: pred {pred.shape} and gt {gt.shape} differ in shape")
    normaliser = Normaliser.from_config(eye_indices, where="iod_errors normaliser")
    iod = normaliser.distances(gt)  # N
    if np.any(~(iod > 0)):
        bad = np.flatnonzero(~(iod > 0))[:5].tolist()
        raise ValueError(f"IOD: zero or missing normalising distance for images {bad} ({normaliser.describe()})")
    distances = np.linalg.norm(pred - gt, axis=2)  # N x K, NaN where gt is absent
    return 100.0 * np.nanmean(distances / iod[:, None], axis=1)


def iod_error(pred, gt, eye_indices) -> float:
    """100 * mean over images and landmarks of ||pred - gt|| / ||gt[e0] - gt[e1]|| (absent landmarks skipped)."""
    values, weights = iod_samples(pred, gt, eye_indices)
    return float(np.sum(values) / np.sum(weights))


def iod_samples(pred, gt, eye_indices) -> tuple[np.ndarray, np.ndarray]:
    """Per image: (error x present landmarks, present landmarks); `iod_error` is sum(values) / sum(weights), the
    mean over all (image, landmark) pairs (each image weighted by its number of present landmarks), so resampling
    images resamples the metric (lead_hsr.report.samples ratio entry)."""
    pred_a, gt_a = _as_array(pred, "pred"), _as_array(gt, "gt")
    errors = iod_errors(pred_a, gt_a, eye_indices)
    present = np.isfinite(gt_a).all(axis=2).sum(axis=1)
    return errors * present, present.astype(np.float64)
