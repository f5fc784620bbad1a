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
                    method: str = "ledoit-wolf", batch_size: int = 32, seed: int = 0, device="cpu") -> dict:
    """The k generated images farthest (Mahalanobis) from the real Inception moments, with their latents z."""
    from lead_hsr.metrics.features import generated_features

    generated, z = generated_features(G, extractor, num_gen, batch_size, seed, device, return_latents=True)
    distances = mahalanobis_distances(generated, *real_moments(real_features, method))
    worst = worst_k(distances, k)
    return {"indices": worst, "z": z[worst], "distances": distances, "method": method, "seed": seed,
            **extractor.record}
