"""Frechet Inception Distance (Heusel et al. 2017) as computed by StyleGAN2-ADA's metric code (DESIGN §7).

FID = ||mu_g - mu_r||^2 + Tr(S_g + S_r - 2 sqrtm(S_g S_r)); the matrix square root is scipy.linalg.sqrtm and
its tiny imaginary parts (numerical noise for PSD products) are dropped by taking the real part of the result.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

from lead_hsr.errors import InputError

FID_NUM_GEN = 50_000  # StyleGAN2-ADA fid50k_full: 50k generated images vs the full real set, no x-flip
COVARIANCE_DDOF = 0  # StyleGAN2-ADA FeatureStats.get_mean_cov divides by N (np.cov would divide by N-1)


def feature_moments(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (float64, divided by N as StyleGAN2-ADA) of features N x D."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise InputError(f"feature matrix of shape {features.shape}: expected N x D with N >= 2 "
                         f"(generate or load more images)")
    return features.mean(axis=0), np.cov(features, rowvar=False, ddof=COVARIANCE_DDOF).reshape(
        features.shape[1], features.shape[1])


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet distance between Gaussians N(mu1, sigma1) and N(mu2, sigma2)."""
    mean_term = np.square(mu1 - mu2).sum()
    sqrt_product = scipy.linalg.sqrtm(sigma1 @ sigma2)  # may be complex with ~1e-10 imaginary noise
    return float(np.real(mean_term + np.trace(sigma1 + sigma2 - 2 * sqrt_product)))


def fid_from_features(generated: np.ndarray, real: np.ndarray) -> float:
    return frechet_distance(*feature_moments(generated), *feature_moments(real))


def fid_for_generator(G, real_images: np.ndarray, dataset_key: str, extractor, cache_dir,
                      num_gen: int = FID_NUM_GEN, batch_size: int = 32, seed: int = 0, device="cpu",
                      source_id: str | None = None) -> dict:
    """FID of a generator against a real uint8 image set (N x H x W x 3, full set, no x-flip), with its record."""
    from lead_hsr.metrics.features import generated_features, real_features

    real = real_features(real_images, dataset_key, extractor, cache_dir, source_id=source_id)
    generated = generated_features(G, extractor, num_gen, batch_size, seed, device)
    return {"fid": fid_from_features(generated, real), "num_gen": num_gen, "num_real": len(real),
            "seed": seed, **extractor.record}
