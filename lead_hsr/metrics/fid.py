"""Frechet Inception Distance (Heusel et al. 2017) as computed by StyleGAN2-ADA's metric code (DESIGN §7).

FID = ||mu_g - mu_r||^2 + Tr(S_g + S_r - 2 sqrtm(S_g S_r)); the matrix square root is scipy.linalg.sqrtm and
its tiny imaginary parts (numerical noise for PSD products) are dropped by taking the real part of the result.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

from lead_hsr.errors import InputError
from lead_hsr.report.samples import replicates_entry

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


def generated_sample_set(seed: int, num_gen: int) -> str:
    """The generated images of a metric (z seed, count): runs of one preset with the same seed share them."""
    return f"generated images (z seed {seed}, n={num_gen})"


def fid_replicates(generated: np.ndarray, real: np.ndarray, sample_set: str, device="cpu") -> np.ndarray:
    """FID of each bootstrap resample of the generated rows (lead_hsr.report.noise.resample_chunks of
    `sample_set`), the real set held fixed: FID is not a mean over samples, so the orderings cannot resample it
    from stored values; computing the replicates here costs B covariance updates and D x D eigenvalue problems
    (float64 on the metric's device) instead of storing num_gen x D features per run.

    Tr sqrtm(S_g S_r) = sum of sqrt(eigenvalues of R S_g R) with R = S_r^(1/2) (same spectrum); a resample is
    weights (counts / n) on the rows, so its mean and covariance (ddof 0, COVARIANCE_DDOF) need no copy."""
    import torch

    from lead_hsr.report.noise import resample_chunks
    mu_real, sigma_real = feature_moments(real)
    values, vectors = np.linalg.eigh(sigma_real)
    root = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    as_tensor = lambda array: torch.as_tensor(array, dtype=torch.float64, device=device)  # noqa: E731
    rows = as_tensor(generated)
    shift = rows.mean(dim=0)
    rows = rows - shift  # centred: the covariance below does not cancel large means
    root, mu_real, trace_real = as_tensor(root), as_tensor(mu_real) - shift, float(np.trace(sigma_real))
    n, replicates = len(rows), []
    for chunk in resample_chunks(n, sample_set):
        for indices in torch.as_tensor(chunk, device=device):
            weights = torch.bincount(indices, minlength=n).double() / n
            mu = weights @ rows
            sigma = (rows * weights[:, None]).T @ rows - torch.outer(mu, mu)
            trace_sqrt = torch.linalg.eigvalsh(root @ sigma @ root).clamp_min(0).sqrt().sum()
            replicates.append(((mu - mu_real).square().sum() + sigma.trace() + trace_real - 2 * trace_sqrt).item())
    return np.asarray(replicates)


def fid_for_generator(G, real_images: np.ndarray, dataset_key: str, extractor, cache_dir,
                      num_gen: int = FID_NUM_GEN, batch_size: int = 32, seed: int = 0, device="cpu",
                      source_id: str | None = None) -> dict:
    """FID of a generator against a real uint8 image set (N x H x W x 3, full set, no x-flip), with its record;
    `replicates` (a samples entry, popped by the caller before the record is stored) holds its bootstrap."""
    from lead_hsr.metrics.features import generated_features, real_features

    real = real_features(real_images, dataset_key, extractor, cache_dir, source_id=source_id)
    generated = generated_features(G, extractor, num_gen, batch_size, seed, device)
    sample_set = generated_sample_set(seed, num_gen)
    return {"fid": fid_from_features(generated, real), "num_gen": num_gen, "num_real": len(real),
            "seed": seed, **extractor.record,
            "replicates": replicates_entry(fid_replicates(generated, real, sample_set, device), sample_set)}
