"""Landmark evaluation of one frozen feature extractor: regression runs (all / few-shot annotations) and
matching (DESIGN §5). The workflow's `regress_*` and `match_landmarks` rules call these.

Each job loads its model once, extracts the descriptors of the evaluation store once (the backbone is frozen,
so caching them is exact), and fits every regressor run it owns on them: many addressable runs, one model
load and one import of torch. Every metric JSON also carries the mean-shape baseline on the same split, so
"learned beats mean shape" is checked from the results themselves.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lead_hsr.atomic import atomic_save_npy
from lead_hsr.data.geometry import central_crop
from lead_hsr.data.store import open_store
from lead_hsr.errors import InputError
# lead_hsr.lead (backbones -> torchvision -> torch._dynamo, ~2 CPU-s) is imported inside the functions that run
# a model: the figure jobs import this module only for load_predictions.
from lead_hsr.metrics.iod import Normaliser, iod_error, iod_samples
from lead_hsr.report.samples import ratio_entry, write_samples
from lead_hsr.train import atomic_write_json, pick_device


# DESIGN §5: regression descriptors at half the crop resolution (48x48 of a 96x96 crop).
REGRESSION_FEATURE_STRIDE = 2
# Descriptors up to this size are extracted once and cached; larger sets (paper-scale hypercolumns) are
# extracted batch by batch while the regressor trains (config `lead.regression.feature_cache_gb`).
FEATURE_CACHE_GB = 8.0
# Matching pairs evaluated at once: bounds memory (features at the crop size), any value gives the same result.
MATCHING_CHUNK_PAIRS = 8
# Each regression run also saves its test-split predictions beside its metrics JSON (for the figures):
# float32 N_test x K x 2 pixels (x, y) of the central crop, rows in `store.split("test")` order.
PREDICTIONS_FILE = "predictions.npy"
# ... and its fitted regressor (`lead_hsr.lead.regressor.save_regressor`), which a landmark model export carries.
REGRESSOR_FILE = "regressor.pt"


def predictions_path(metrics_json) -> Path:
    """Where the regression run whose metrics are `metrics_json` saved its test predictions."""
    return Path(metrics_json).with_name(PREDICTIONS_FILE)


def regressor_path(metrics_json) -> Path:
    """Where the regression run whose metrics are `metrics_json` saved its fitted regressor."""
    return Path(metrics_json).with_name(REGRESSOR_FILE)


def save_predictions(pred, metrics_json) -> Path:
    """Save N x K x 2 predictions beside `metrics_json` atomically (float32 .npy)."""
    array = np.ascontiguousarray(np.asarray(pred, dtype=np.float32))
    return atomic_save_npy(array, predictions_path(metrics_json))


def load_predictions(metrics_json, n_test: int | None = None) -> np.ndarray:
    """The test predictions saved by the regression run of `metrics_json` (N x K x 2 crop pixels)."""
    path = predictions_path(metrics_json)
    if not path.is_file():
        raise InputError(f"{path}: regression predictions not found beside {Path(metrics_json).name}; they are "
                         "written by the regression job since the figures need them. Fix: rerun that job, e.g. "
                         f"`snakemake --forcerun {metrics_json}`.")
    pred = np.load(path)
    if pred.ndim != 3 or pred.shape[2] != 2 or (n_test is not None and len(pred) != n_test):
        raise InputError(f"{path}: expected N x K x 2 predictions for {n_test if n_test is not None else 'N'} test "
                         f"images, got shape {pred.shape}; the prepared store changed since the run: rerun it "
                         f"(`snakemake --forcerun {metrics_json}`).")
    return pred


def _cropped_split(store, split: str, crop: int):
    rows = store.split(split)
    images, landmarks = central_crop(np.asarray(store.images[rows]), store.landmarks[rows], crop)
    return rows, images, torch.from_numpy(np.ascontiguousarray(landmarks)).float()


def _feature_note(model) -> dict:
    return {"feature_kind": model.kind, "feature_arch": model.arch, "feature_dim": int(model.dim)}


def regression_runs(weights: Path, store_path: Path, normaliser, outputs: dict, options: dict) -> None:
    """Fit one regressor per output and write its metric JSON.

    normaliser: the dataset's `lead.datasets.<name>.normaliser` (`iod.Normaliser.from_config`; a paper store's
    name gives its protocol eye pair); metrics `iod` is the error in percent of it.
    outputs: {(annotations, seed): metrics.json path}, annotations "all" or a count (few-shot, with a subset
    manifest `subset.json` written beside the metrics); each run also writes `predictions.npy` and its fitted
    regressor `regressor.pt` there. options: crop, steps, fewshot_steps, device, regressor
    (RegressorOptions fields), fewshot_regressor (overrides for few-shot runs), feature_stride (crop / feature
    size: 2 in the protocol, 48 of 96).
    """
    from lead_hsr.lead.dense_model import dense_descriptors, load_dense_model, select_rows
    from lead_hsr.lead.regressor import (RegressorOptions, fewshot_subset, fit_regressor, predict, regressor_flops,
                                         save_regressor)
    device = pick_device(options.get("device", "auto"))
    store = open_store(store_path)
    crop = int(options["crop"])
    train_rows, train_images, train_lm = _cropped_split(store, "train", crop)
    _, test_images, test_lm = _cropped_split(store, "test", crop)
    size = train_images.shape[1]
    model = load_dense_model(weights, device)
    feature_size = size // int(options.get("feature_stride", REGRESSION_FEATURE_STRIDE))
    cache_bytes = float(options.get("feature_cache_gb", FEATURE_CACHE_GB)) * 2**30
    train_feats = dense_descriptors(model, train_images, feature_size, cache_bytes, device)
    test_feats = dense_descriptors(model, test_images, feature_size, cache_bytes, device)
    eyes = Normaliser.from_config(normaliser)
    eyes.check(train_lm.shape[1])
    train_files = store.table["file"].to_numpy()[train_rows].tolist()
    flops = regressor_flops(model.dim, train_lm.shape[1], feature_size, feature_size, include_backward=True)
    for (annotated, seed), out in sorted(outputs.items(), key=lambda item: str(item[0])):
        if annotated == "all":
            chosen = np.arange(len(train_rows))
            reg_options = RegressorOptions(**options.get("regressor", {}))
            steps = int(options["steps"])
        else:
            chosen = fewshot_subset(len(train_rows), int(annotated), int(seed))
            reg_options = RegressorOptions.fewshot(**options.get("fewshot_regressor", {}))
            steps = int(options["fewshot_steps"])
            atomic_write_json([train_files[i] for i in chosen], Path(out).with_name("subset.json"))
        regressor = fit_regressor(select_rows(train_feats, chosen), train_lm[chosen], size, steps, int(seed),
                                  reg_options, device=device)
        pred = predict(regressor, test_feats, size)
        save_predictions(pred.numpy(), out)
        save_regressor(regressor, regressor_path(out), feature_size, size)
        mean_shape = train_lm[chosen].mean(dim=0, keepdim=True).expand_as(test_lm)
        values, weights = iod_samples(pred.numpy(), test_lm.numpy(), eyes)
        write_samples(out, {"iod": ratio_entry(values, weights, test_sample_set(store_path, len(test_lm)))})
        atomic_write_json({
            "iod": float(values.sum() / weights.sum()),  # = iod_error: the per-image values' ratio
            "iod_mean_shape": iod_error(mean_shape.numpy(), test_lm.numpy(), eyes),
            "regressor_gflops": flops / 1e9,
            "annotations": annotated, "seed": int(seed), "n_train": int(len(chosen)),
            "n_test": int(len(test_lm)), "steps": steps, "loss": reg_options.loss, "normaliser": eyes.describe(),
            "regressor": reg_options.as_dict(), "feature_size": feature_size, **_feature_note(model),
            "note": f"regression loss: {reg_options.loss}",
        }, out)


def test_sample_set(store_path, n: int) -> str:
    """The name of a store's test split as an evaluation sample set (lead_hsr.report.samples)."""
    return f"test images of {Path(store_path).name} (n={n})"


def matching_sample_set(store_path, n_pairs: int, seed: int) -> str:
    return f"matching pairs of {Path(store_path).name} (n={n_pairs}, warp seed {seed})"


def pair_error_samples(errors: torch.Tensor, sample_set: str) -> dict:
    """Per pair (sum of its present landmarks' errors, their count): the ratio is MatchingResult's nanmean."""
    errors = errors.double().numpy()
    present = np.isfinite(errors)
    return ratio_entry(np.where(present, errors, 0.0).sum(axis=1), present.sum(axis=1), sample_set)


def matching_run(weights: Path, store_path: Path, out_json: Path, options: dict) -> dict:
    """Same / different matching error (pixels of a 70-px image) over sorted MAFL test pairs (DESIGN §5)."""
    from lead_hsr.lead.dense_model import load_dense_model
    from lead_hsr.lead.matching import MatchingResult
    device = pick_device(options.get("device", "auto"))
    model = load_dense_model(weights, device)
    same, different = matching_pair_errors(model, store_path, options, device)
    result = MatchingResult.from_errors(same, different)
    sample_set = matching_sample_set(store_path, result.n_pairs, int(options.get("seed", 0)))
    write_samples(out_json, {"matching_same": pair_error_samples(same, sample_set),
                             "matching_different": pair_error_samples(different, sample_set)})
    out = {"matching_same": result.same, "matching_different": result.different, "pairs": result.n_pairs,
           **_feature_note(model)}
    atomic_write_json(out, out_json)
    return out


def match_pairs(model, store_path: Path, options: dict, device) -> "MatchingResult":
    """The matching protocol's mean errors (`matching_pair_errors`)."""
    from lead_hsr.lead.matching import MatchingResult
    return MatchingResult.from_errors(*matching_pair_errors(model, store_path, options, device))


def matching_pair_errors(model, store_path: Path, options: dict, device) -> tuple[torch.Tensor, torch.Tensor]:
    """The matching protocol on a loaded dense model: options `crop`, `pairs`, `seed`; per-landmark errors
    (n_pairs x K, NaN where absent) of the same-identity and the different-identity views.

    Pairs are evaluated a chunk at a time: features upsampled to the crop are C x 96 x 96 per image (3840-d
    hypercolumns: 140 MB each), so holding all 1,000 views would need >100 GB. Warps depend only on the image's
    position in the sorted order, so the result does not depend on the chunk size.
    """
    from lead_hsr.lead.matching import matching_errors, matching_order, matching_views
    store = open_store(store_path)
    crop, seed = int(options["crop"]), int(options.get("seed", 0))
    rows = store.split("test")
    order = rows[matching_order(store.table["file"].to_numpy()[rows].tolist())][: 2 * int(options["pairs"])]
    order = order[: len(order) - len(order) % 2]
    chunk = 2 * MATCHING_CHUNK_PAIRS
    same, different = [], []
    for start in range(0, len(order), chunk):
        rows_chunk = order[start:start + chunk]
        images = torch.from_numpy(np.asarray(store.images[rows_chunk])).permute(0, 3, 1, 2).float()
        landmarks = torch.from_numpy(np.asarray(store.landmarks[rows_chunk])).float()
        src, src_lm, tgt, tgt_lm = matching_views(images, landmarks, start, seed, crop)
        size = src.shape[-1]  # DESIGN §5: matching on features upsampled to the crop (96x96)
        errors = matching_errors(_view_features(model, src, size, device), src_lm,
                                 _view_features(model, tgt, size, device), tgt_lm, size, device=device)
        same.append(errors[0])
        different.append(errors[1])
    return torch.cat(same), torch.cat(different)


def _view_features(model, views: torch.Tensor, size: int, device) -> torch.Tensor:
    """Features of warped float views (N x 3 x S x S, 0..255) at `size`."""
    from lead_hsr.lead.dense_model import extract_features
    as_uint8 = views.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
    return extract_features(model, as_uint8, size, device=device)
