"""The LEAD figures of the thesis (Figs. 3.4-3.11) from run outputs: one function per figure, called by the
thin `workflow_scripts/fig_*.py`. This module gathers the arrays (prepared stores, the predictions saved by the
regression runs, features of the frozen LEAD/CL extractors, landmark matching); the drawing and the
clustering helpers are `lead_hsr.report.lead_figures` (torch-free).

Feature sources are given as {label: weights path}; stores are prepared stores (`lead_hsr.data.store`); every
image shown is the central crop the evaluations use (`geometry.crop`).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from lead_hsr.data.geometry import central_crop
from lead_hsr.data.store import open_store
from lead_hsr.errors import InputError
from lead_hsr.metrics.iod import eye_indices_for, iod_errors
from lead_hsr.metrics.landmarks import load_predictions
from lead_hsr.metrics.scale import SEEN_ZOOM, zoomed_test_split
from lead_hsr.report import lead_figures as draw
from lead_hsr.train import pick_device

# lead_hsr.lead (backbones -> torchvision -> torch._dynamo, ~2 CPU-s) is imported only by the figures that run a
# model (matching, t-SNE, cluster masks); the others draw stored predictions.

# Nose-tip index per landmark count: CelebA/MAFL and MTFL/AFLW 5-point order (eyes, nose, mouth corners);
# 68-point iBUG markup (0-based 30 = nose tip).
NOSE_INDEX = {5: 2, 68: 30}
FEATURE_BATCH = 32  # images per feature-extraction batch in the t-SNE sampling (bounds memory)


def _test_crops(store, crop: int):
    rows = store.split("test")
    images, landmarks = central_crop(np.asarray(store.images[rows]), np.asarray(store.landmarks[rows]), crop)
    return rows, np.ascontiguousarray(images), np.asarray(landmarks, dtype=np.float64)


def head_yaw(table, landmarks: np.ndarray, eyes: tuple[int, int]) -> tuple[np.ndarray, str]:
    """Head yaw per image, and what it is: the table's `yaw` column (degrees) when the store has one,
    else a proxy from the landmarks: horizontal offset of the nose tip from the eye midpoint, in IODs
    (negative = face turned towards the image left). Prepared stores carry no pose today (DESIGN §4.2), so
    the proxy is what real data and the synthetic renders both get."""
    if "yaw" in table.columns:
        return table["yaw"].to_numpy(dtype=np.float64), "yaw (deg)"
    k = landmarks.shape[1]
    if k not in NOSE_INDEX:
        raise InputError(f"head yaw: no nose landmark known for {k}-point landmarks (known: {sorted(NOSE_INDEX)}); "
                         "use a store with 5 or 68 landmarks (lead.matching.store)")
    left, right = landmarks[:, eyes[0]], landmarks[:, eyes[1]]
    iod = np.linalg.norm(left - right, axis=1)
    offset = landmarks[:, NOSE_INDEX[k], 0] - (left[:, 0] + right[:, 0]) / 2
    return offset / np.maximum(iod, 1e-6), "nose offset (IOD)"


def pose_spectrum(yaw: np.ndarray, n_queries: int) -> tuple[int, np.ndarray]:
    """(reference, queries): the most frontal image, and `n_queries` others spread evenly over the sorted yaws
    (most negative to most positive), finite landmarks only."""
    valid = np.flatnonzero(np.isfinite(yaw))
    if len(valid) < n_queries + 1:
        raise InputError(f"matching figure: need {n_queries + 1} test images with landmarks, found {len(valid)}")
    reference = int(valid[np.argmin(np.abs(yaw[valid]))])
    others = valid[valid != reference]
    ordered = others[np.argsort(yaw[others], kind="stable")]
    return reference, ordered[np.round(np.linspace(0, len(ordered) - 1, n_queries)).astype(int)]


def matching_figure_job(weights: dict[str, str], store_path, out, dataset: str, options: dict) -> Path:
    """Fig. 3.4: landmarks of the most frontal test image matched into test images of increasing head yaw by
    each feature source (cosine nearest neighbour on features upsampled to the crop, `lead.matching`)."""
    from lead_hsr.lead.dense_model import extract_features, load_dense_model
    from lead_hsr.lead.matching import match_landmarks, prepare_descriptors
    device = pick_device(options.get("device", "auto"))
    store = open_store(store_path)
    rows, images, landmarks = _test_crops(store, int(options["crop"]))
    landmarks_ok = np.isfinite(landmarks).all(axis=(1, 2))
    yaw, what = head_yaw(store.table.iloc[rows], landmarks, eye_indices_for(dataset))
    yaw = np.where(landmarks_ok, yaw, np.nan)
    reference, queries = pose_spectrum(yaw, int(options["queries"]))
    size = images.shape[1]
    ref_lm = torch.from_numpy(landmarks[reference]).float()
    matches = {}
    for label, path in weights.items():
        model = load_dense_model(path, device)
        source = prepare_descriptors(extract_features(model, images[reference:reference + 1], size, device=device)
                                     .to(device), size)[0]
        found = []
        for q in queries:  # one query at a time: 3840-d maps at the crop size are large
            target = prepare_descriptors(extract_features(model, images[q:q + 1], size, device=device).to(device),
                                         size)[0]
            found.append(match_landmarks(source, ref_lm.to(device), target).cpu().numpy())
        matches[label] = np.stack(found)
        del model
    titles = [f"{what.split(' (')[0]} {yaw[q]:+.2f}" for q in queries]
    return draw.matching_figure(images[reference], landmarks[reference], images[queries], landmarks[queries],
                                matches, out, query_titles=titles)


def _sample_descriptors(model, images: np.ndarray, size: int, n_points: int, seed: int, device):
    """Unit-length descriptors at `n_points` random cells of the images' size x size feature maps, with the
    (x, y) crop-pixel centre of each cell. Extraction is batched, so only sampled cells are kept."""
    from lead_hsr.lead.dense_model import extract_features
    from lead_hsr.lead.matching import prepare_descriptors
    n_cells = len(images) * size * size
    chosen = np.sort(np.random.default_rng(seed).choice(n_cells, size=min(n_points, n_cells), replace=False))
    stride = images.shape[1] / size
    points, positions = [], []
    for start in range(0, len(images), FEATURE_BATCH):
        lo, hi = start * size * size, (start + FEATURE_BATCH) * size * size
        local = chosen[(chosen >= lo) & (chosen < hi)] - lo
        if len(local) == 0:
            continue
        feats = prepare_descriptors(extract_features(model, images[start:start + FEATURE_BATCH], size,
                                                     device=device), size)
        image, cell = local // (size * size), local % (size * size)
        flat = feats.flatten(2)  # B x C x size*size
        points.append(flat[torch.from_numpy(image), :, torch.from_numpy(cell)].numpy())  # n x C
        positions.append(np.stack([(cell % size + 0.5) * stride, (cell // size + 0.5) * stride], axis=1))
    return np.concatenate(points), np.concatenate(positions)


def part_clusters_of(weights, store_path, options: dict):
    """(clusters, model, descriptors, positions, test images) of one feature source on the store's first
    `images` test images: k-means parts fitted on `kmeans_points` sampled descriptors (deterministic)."""
    from lead_hsr.lead.dense_model import load_dense_model
    device = pick_device(options.get("device", "auto"))
    store = open_store(store_path)
    _, images, _ = _test_crops(store, int(options["crop"]))
    images = images[: int(options["images"])]
    size = images.shape[1] // int(options["feature_stride"])
    model = load_dense_model(weights, device)
    seed = int(options.get("seed", 0))
    points, positions = _sample_descriptors(model, images, size, int(options["kmeans_points"]), seed, device)
    clusters = draw.fit_part_clusters(points, int(options["clusters"]), seed, positions)
    return clusters, model, points, positions, images, size


def tsne_figure_job(weights: dict[str, str], store_path, out, options: dict) -> Path:
    """Fig. 3.5: t-SNE of sampled descriptors of each feature source, coloured by its k-means parts."""
    embeddings = {}
    seed = int(options.get("seed", 0))
    for label, path in weights.items():
        clusters, _, points, _, _, _ = part_clusters_of(path, store_path, options)
        shown = points[: int(options["points"])]  # the sample is already random
        embeddings[label] = (draw.tsne_embedding(shown, seed, float(options.get("perplexity", 30))),
                             clusters.assign(shown))
    return draw.tsne_figure(embeddings, int(options["clusters"]), out)


def cluster_masks_figure_job(weights, store_path, out, options: dict) -> Path:
    """Fig. 3.6: the k-means parts of Fig. 3.5 (same source, sample and seed) on `references` test images."""
    from lead_hsr.lead.dense_model import extract_features
    from lead_hsr.lead.matching import prepare_descriptors
    clusters, model, _, _, images, size = part_clusters_of(weights, store_path, options)
    device = next(model.parameters()).device
    picked = np.round(np.linspace(0, len(images) - 1, int(options["references"]))).astype(int)
    feats = prepare_descriptors(extract_features(model, images[picked], size, device=device), size)
    cells = feats.permute(0, 2, 3, 1).reshape(-1, feats.shape[1]).numpy()
    parts = clusters.assign(cells).reshape(len(picked), size, size)
    return draw.cluster_mask_figure(images[picked], parts, clusters.n_clusters, out)


def _evenly(n: int, count: int) -> np.ndarray:
    return np.round(np.linspace(0, n - 1, min(count, n))).astype(int)


def _predicted_test_split(store_path, metrics_json, crop: int, dataset: str):
    """(test crops, ground truth, saved predictions, per-image IOD errors) of one regression run."""
    store = open_store(store_path)
    _, images, truth = _test_crops(store, crop)
    pred = load_predictions(metrics_json, n_test=len(images))
    return images, truth, pred, iod_errors(pred, truth, eye_indices_for(dataset))


def regression_figure_job(runs: list[dict], out, options: dict) -> Path:
    """Fig. 3.7: predicted landmarks on `images` evenly spaced test images of each dataset (one row each).

    runs: [{"label", "store", "metrics", "dataset" (store name, for the eye indices)}]."""
    rows = []
    for run in runs:
        images, _, pred, errors = _predicted_test_split(run["store"], run["metrics"], int(options["crop"]),
                                                        run["dataset"])
        pick = _evenly(len(images), int(options["images"]))
        rows.append({"label": run["label"], "images": list(images[pick]), "landmarks": pred[pick],
                     "titles": [f"IOD {e:.1f}%" for e in errors[pick]]})
    return draw.landmark_rows(rows, out, marker_size=10)


def annotations_figure_job(runs: list[dict], store_path, dataset: str, out, options: dict) -> Path:
    """Fig. 3.8: the same test images predicted by regressors trained with each number of annotations.

    runs: [{"label" (e.g. "5 annotations"), "metrics"}] on one store."""
    rows = []
    for run in runs:
        images, _, pred, errors = _predicted_test_split(store_path, run["metrics"], int(options["crop"]), dataset)
        pick = _evenly(len(images), int(options["images"]))
        rows.append({"label": run["label"], "images": list(images[pick]), "landmarks": pred[pick],
                     "titles": [f"IOD {e:.1f}%" for e in errors[pick]]})
    return draw.landmark_rows(rows, out, marker_size=12)


def luminance(images: np.ndarray) -> np.ndarray:
    """Mean Rec. 601 luma of each uint8 image, in [0, 1]."""
    weights = np.array([0.299, 0.587, 0.114])
    return (np.asarray(images, dtype=np.float64) @ weights).mean(axis=(1, 2)) / 255.0


def brighten(images: np.ndarray, target: float = 0.45) -> np.ndarray:
    """Display-only gain so each image's mean luma reaches `target` (clipped)."""
    gain = target / np.maximum(luminance(images), 1e-3)
    return np.clip(np.asarray(images, dtype=np.float64) * gain[:, None, None, None], 0, 255).astype(np.uint8)


def low_light_figure_job(store_path, metrics_json, dataset: str, out, options: dict) -> Path:
    """Fig. 3.11: predictions on the darkest test images (mean luma), shown as they are and brightened."""
    images, _, pred, errors = _predicted_test_split(store_path, metrics_json, int(options["crop"]), dataset)
    luma = luminance(images)
    pick = np.argsort(luma, kind="stable")[: int(options["images"])]
    titles = [f"luma {luma[i]:.2f}, IOD {errors[i]:.1f}%" for i in pick]
    rows = [{"label": "test image", "images": list(images[pick]), "landmarks": pred[pick], "titles": titles},
            {"label": "brightened\n(display only)", "images": list(brighten(images[pick])), "landmarks": pred[pick]}]
    return draw.landmark_rows(rows, out, marker_size=12)


def scale_figure_job(metrics: dict[str, str], out) -> Path:
    """Fig. 3.9: IOD error per zoom-out bin of each method's scale run."""
    results = {label: json.loads(Path(path).read_text()) for label, path in metrics.items()}
    missing = [label for label, r in results.items() if "bins" not in r]
    if missing:
        raise InputError(f"scale figure: {[metrics[m] for m in missing]} have no zoom bins; they must be "
                         "written by the regress_scale rule (lead_hsr.metrics.scale.scale_run)")
    return draw.scale_figure(results, out)


def scale_examples_figure_job(metrics: dict[str, str], store_path, dataset: str, out, options: dict) -> Path:
    """Fig. 3.10: predictions of each method's scale run on test images spread over the zoom-out range."""
    store = open_store(store_path)
    zooms, images, truth = zoomed_test_split(store, int(options["crop"]))
    order = np.argsort(zooms, kind="stable")
    pick = order[_evenly(len(order), int(options["images"]))]
    titles = [f"zoom {zooms[i]:.2f} ({'seen' if zooms[i] < SEEN_ZOOM[1] else 'unseen'})" for i in pick]
    rows = []
    for label, path in metrics.items():
        pred = load_predictions(path, n_test=len(images))
        errors = iod_errors(pred, truth, eye_indices_for(dataset))
        rows.append({"label": label, "images": list(images[pick]), "landmarks": pred[pick],
                     "titles": [f"{t}\nIOD {errors[i]:.1f}%" for t, i in zip(titles, pick)]})
    return draw.landmark_rows(rows, out, marker_size=12)
