"""Sensitivity to scale (thesis §3.3.4 "How sensitive is it to the alignment and scale variations?", Figs. 3.9
and 3.10): a frozen-feature regressor trained on unaligned MAFL whose boxes were zoomed out by U(1, 1.5), tested
on crops zoomed out by U(1, 2); the IOD error is reported per zoom-out bin, seen (1-1.5) vs unseen (1.5-2).

The zoom-out factors are drawn by the `mafl_unaligned` preparer and recorded per image in the store's `zoom`
column; their ranges are `lead_hsr.data.geometry.ZOOM_RANGE_TRAIN` / `ZOOM_RANGE_TEST` (the one named place of
the protocol constants). The regression itself is `lead_hsr.metrics.landmarks.regression_runs` (same options
as the all-annotation runs), which also saves the test predictions this module bins.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lead_hsr.data.geometry import ZOOM_RANGE_TEST, ZOOM_RANGE_TRAIN, central_crop
from lead_hsr.data.store import open_store
from lead_hsr.errors import InputError
from lead_hsr.metrics.iod import eye_indices_for, iod_errors
from lead_hsr.metrics.landmarks import load_predictions, regression_runs
from lead_hsr.train import atomic_write_json

ZOOM_BIN_WIDTH = 0.25  # bins of the test range: 1-1.25, 1.25-1.5 (seen), 1.5-1.75, 1.75-2 (unseen)
SEEN_ZOOM = ZOOM_RANGE_TRAIN                           # zoom-outs the regressor was trained on
UNSEEN_ZOOM = (ZOOM_RANGE_TRAIN[1], ZOOM_RANGE_TEST[1])  # only in the test split


def zoom_bin_edges(width: float = ZOOM_BIN_WIDTH) -> np.ndarray:
    """Edges of equal bins over the test zoom range; the seen/unseen boundary is always an edge."""
    low, high = ZOOM_RANGE_TEST
    edges = np.round(np.arange(low, high + width / 2, width), 10)
    if not np.isclose(edges[-1], high) or not np.isclose(edges, SEEN_ZOOM[1]).any():
        raise InputError(f"zoom bin width {width}: must divide the test range {ZOOM_RANGE_TEST} and have "
                         f"{SEEN_ZOOM[1]} (end of the training range) as an edge")
    return edges


def zoom_bin_errors(errors, zooms, edges=None) -> dict:
    """Mean per-image IOD error (%) per zoom bin, and over the seen / unseen ranges.

    errors, zooms: one value per test image. Bins are [lo, hi) except the last, which includes its upper
    edge; zooms outside the edges are an error (the store was prepared with another protocol).
    Returns {"bins": [{"lo", "hi", "iod", "n", "seen"}], "iod_seen", "iod_unseen", "n_seen", "n_unseen"}
    (iod is None for an empty bin).
    """
    errors, zooms = np.asarray(errors, dtype=np.float64), np.asarray(zooms, dtype=np.float64)
    edges = zoom_bin_edges() if edges is None else np.asarray(edges, dtype=np.float64)
    if errors.shape != zooms.shape or errors.ndim != 1:
        raise ValueError(f"errors {errors.shape} and zooms {zooms.shape} must be equal-length vectors")
    tol = 1e-9
    outside = (zooms < edges[0] - tol) | (zooms > edges[-1] + tol)
    if outside.any():
        raise InputError(f"zoom-out factors {zooms[outside][:5].tolist()} lie outside the test range "
                         f"[{edges[0]}, {edges[-1]}]; re-prepare the unaligned MAFL store (zoom column)")
    index = np.clip(np.searchsorted(edges, zooms, side="right") - 1, 0, len(edges) - 2)

    def mean(mask):
        return float(errors[mask].mean()) if mask.any() else None

    bins = [{"lo": float(lo), "hi": float(hi), "iod": mean(index == i), "n": int((index == i).sum()),
             "seen": bool(hi <= SEEN_ZOOM[1] + tol)} for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:]))]
    seen = zooms < SEEN_ZOOM[1]
    return {"bins": bins, "iod_seen": mean(seen), "iod_unseen": mean(~seen),
            "n_seen": int(seen.sum()), "n_unseen": int((~seen).sum())}


def zoomed_test_split(store, crop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(zoom-out factors, central-crop images, central-crop ground truth) of the test split, in
    `store.split('test')` order (the order of the saved predictions)."""
    if "zoom" not in store.table.columns:
        raise InputError(f"{store.path}: the prepared store has no `zoom` column; the scale runs need the "
                         "unaligned MAFL store written by the `mafl_unaligned` preparer (lead.scale.store)")
    rows = store.split("test")
    images, landmarks = central_crop(np.asarray(store.images[rows]), np.asarray(store.landmarks[rows]), crop)
    return store.table["zoom"].to_numpy(dtype=np.float64)[rows], images, landmarks


def scale_run(weights: Path, store_path: Path, out_json: Path, dataset: str, options: dict) -> dict:
    """Fit the regressor on the store's train split (zoom-out 1-1.5), predict its test split (1-2), and write
    the regression metrics plus the per-zoom-bin errors to `out_json` (predictions saved beside it)."""
    out_json = Path(out_json)
    regression_runs(Path(weights), Path(store_path), dataset, {("all", 0): out_json}, options)
    store = open_store(store_path)
    zooms, _, truth = zoomed_test_split(store, int(options["crop"]))
    pred = load_predictions(out_json, n_test=len(truth))
    errors = iod_errors(pred, truth, eye_indices_for(dataset))
    metrics = json.loads(out_json.read_text())
    metrics.update(zoom_bin_errors(errors, zooms), zoom_train=list(ZOOM_RANGE_TRAIN),
                   zoom_test=list(ZOOM_RANGE_TEST), task="scale")
    atomic_write_json(metrics, out_json)
    return metrics
