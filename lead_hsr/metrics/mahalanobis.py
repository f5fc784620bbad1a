"""Mahalanobis distance of generated images' Inception features to the real-set moments (thesis Fig. 4.6).

The 2048-d sample covariance of a few thousand images is singular or ill-conditioned, so the precision matrix is
taken from a Ledoit-Wolf shrinkage estimate (default) or the Moore-Penrose pseudo-inverse.
"""
from __future__ import annotations

import numpy as np

from lead_hsr.errors import InputError

WORST_NUM_GEN = 5_000  # thesis §4.3.2: Mahalanobis distances over 5000 generated images ...
WORST_K = 30  # ... showing the 30 farthest (Fig. 4.6)
COVARIANCE_METHODS = ("ledoit-wolf", "pinv")


def ledoit_wolf(features: np.ndarray) -> tuple[np.ndarray, float]:
    """Ledoit & Wolf (2004) shrinkage towards a scaled identity: (covariance, shrinkage in [0, 1]).

    S = X^T X / n (centred X); target mu I with mu = tr(S)/p; shrinkage = min(b2, d2) / d2 where
    d2 = ||S - mu I||_F^2 and b2 = (1/n^2) sum_k ||x_k x_k^T - S||_F^2 = (sum_k ||x_k||^4 - n ||S||_F^2) / n^2.
    """
    centred = np.asarray(features, dtype=np.float64)
    centred = centred - centred.mean(axis=0)
    n, p = centred.shape
    sample = centred.T @ centred / n
    mu = np.trace(sample) / p
    d2 = np.square(sample - mu * np.eye(p)).sum()
    b2 = (np.square(np.square(centred).sum(axis=1)).sum() - n * np.square(sample).sum()) / n**2
    shrinkage = 0.0 if d2 == 0 else float(min(b2, d2) / d2)
    return (1 - shrinkage) * sample + shrinkage * mu * np.eye(p), shrinkage


def real_moments(real_features: np.ndarray, method: str = "ledoit-wolf") -> tuple[np.ndarray, np.ndarray]:
    """Mean and precision matrix (inverse covariance) of the real features."""
    real_features = np.asarray(real_features, dtype=np.float64)
    if method == "ledoit-wolf":
        covariance, _ = ledoit_wolf(real_features)
        precision = np.linalg.inv(covariance)
    elif method == "pinv":
        precision = np.linalg.pinv(np.cov(real_features, rowvar=False, ddof=0), hermitian=True)
    else:
        raise InputError(f"covariance method {method!r}: expected one of {COVARIANCE_METHODS} (config value)")
    return real_features.mean(axis=0), precision


def mahalanobis_distances(features: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """sqrt((x - mean)^T P (x - mean)) per row."""
    offsets = np.asarray(features, dtype=np.float64) - mean
    squared = np.einsum("nd,de,ne->n", offsets, precision, offsets)
    return np.sqrt(np.maximum(squared, 0))


def worst_k(distances: np.ndarray, k: int = WORST_K) -> np.ndarray:
    """Indices of the k largest distances, farthest first."""
    order = np.argsort(-np.asarray(distances), kind="stable")
    return order[:k]


def worst_generated(G, real_features: np.ndarray, extractor, num_gen: int = WORST_NUM_GEN, k: int = WORST_K,
                    method: str = "ledoit-wolf", batch_size: int = 32, seed: int = 0, device="cpu",
                    noise_mode: str = "random") -> dict:
    """The k generated images farthest (Mahalanobis) from the real Inception moments, with their latents z.

    noise_mode="const" makes every image a function of its z alone, so `redraw` gives back exactly the images
    that were ranked (the figure uses it; "random" is the metric code's default)."""
    from lead_hsr.metrics.features import generated_features

    generated, z = generated_features(G, extractor, num_gen, batch_size, seed, device, noise_mode=noise_mode,
                                      return_latents=True)
    distances = mahalanobis_distances(generated, *real_moments(real_features, method))
    worst = worst_k(distances, k)
    return {"indices": worst, "z": z[worst], "distances": distances, "method": method, "seed": seed,
            "noise_mode": noise_mode, **extractor.record}


def redraw(G, z: np.ndarray, device="cpu") -> np.ndarray:
    """uint8 N x H x W x 3 images of latents z with G's constant noise (see worst_generated's noise_mode)."""
    import torch

    from lead_hsr.metrics.ppl import nhwc_uint8

    with torch.no_grad():
        z = torch.as_tensor(np.asarray(z), dtype=torch.float32, device=device)
        return nhwc_uint8(G.synthesis(G.mapping(z, torch.zeros([len(z), getattr(G, "c_dim", 0)], device=device)),
                                      noise_mode="const"))


def mahalanobis_worst_figure(groups: dict, out_png, options: dict, cache_dir, weights_cache):
    """Thesis Fig. 4.6: per dataset and run, the k generated images farthest from the real feature moments.

    groups: dataset label -> {"store": prepared store, "runs": {run label: network.pt}}. options: `extractor`
    (and `standin`) as the FID's, num_gen, k, method, batch_size, seed, device. The real moments come from the
    store's full image set (features cached as for FID); images are generated with constant noise.
    """
    from pathlib import Path

    from lead_hsr.data.store import open_store
    from lead_hsr.gan.training import load_generator
    from lead_hsr.metrics.features import make_extractor, real_features
    from lead_hsr.report.gan_figures import panel_grid_figure
    from lead_hsr.train import pick_device

    device = pick_device(options.get("device", "auto"))
    seed = int(options.get("seed", 0))
    extractor = make_extractor(options["extractor"], weights_cache, options.get("standin"), device, seed)
    method = options.get("method", "ledoit-wolf")
    rows = []
    for dataset, group in groups.items():
        store = open_store(group["store"])
        real = real_features(store.images, Path(group["store"]).name, extractor, cache_dir,
                             source_id=store.manifest.get("sources_sha256"))
        panels = []
        for label, network in group["runs"].items():
            G = load_generator(network, device)
            worst = worst_generated(G, real, extractor, int(options["num_gen"]), int(options["k"]), method,
                                    int(options.get("batch_size", 32)), seed, device, noise_mode="const")
            distances = worst["distances"][worst["indices"]]
            panels.append((f"{label} (d = {distances.min():.3g} .. {distances.max():.3g})",
                           redraw(G, worst["z"], device)))
        rows.append((f"{dataset}: {options['k']} farthest of {options['num_gen']} by Mahalanobis distance "
                     f"({extractor.name}, {extractor.record.get('source', '?')}, {method})", panels))
    return panel_grid_figure(rows, out_png, ncols=int(options.get("ncols", 10)))
