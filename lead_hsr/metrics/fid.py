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
    `sample_set`), the real set held fixed. FID is not a mean over samples, so the orderings cannot resample it from
    stored values; computing the replicates here (B small eigenvalue problems, float64 on the metric's device) is
    cheaper than storing num_gen x D features per run.

    A resample is weights w (counts / n) on the rows. Tr sqrtm(S_g S_r) is the sum of the square roots of the
    eigenvalues of R S_g R (R = S_r^(1/2)): a D x D problem, or with A = diag(sqrt(w)) (X - mu) the same nonzero
    spectrum as the m x m matrix A S_r A^T over the m resampled rows, used when there are fewer rows than features
    (the demo: 250 images, 512 features)."""
    import torch

    from lead_hsr.report.noise import resample_chunks
    mu_real, sigma_real = feature_moments(real)
    as_tensor = lambda array: torch.as_tensor(array, dtype=torch.float64, device=device)  # noqa: E731
    rows = as_tensor(generated)
    shift = rows.mean(dim=0)
    rows, mu_real = rows - shift, as_tensor(mu_real) - shift  # centred: no cancellation of large means
    sigma_real = as_tensor(sigma_real)
    n, dims = rows.shape
    distance = _gram_distance if n <= dims else _feature_distance
    terms = _gram_terms(rows, sigma_real, mu_real) if n <= dims else _feature_terms(sigma_real, rows, mu_real)
    replicates = []
    for chunk in resample_chunks(n, sample_set):
        for indices in torch.as_tensor(chunk, device=device):
            weights = torch.bincount(indices, minlength=n).double() / n
            replicates.append(distance(weights, *terms) + float(torch.trace(sigma_real)))
    return np.asarray(replicates)


def _feature_terms(sigma_real, rows, mu_real):
    """The rows, R = S_r^(1/2) (symmetric, from its eigendecomposition) and mu_r."""
    from torch.linalg import eigh
    values, vectors = eigh(sigma_real)
    return rows, (vectors * values.clamp_min(0).sqrt()) @ vectors.T, mu_real


def _feature_distance(weights, rows, root, mu_real) -> float:
    """||mu - mu_r||^2 + Tr S_g - 2 Tr sqrt(R S_g R) (Tr S_r added by the caller), D x D."""
    from torch.linalg import eigvalsh
    mu = weights @ rows
    sigma = (rows * weights[:, None]).T @ rows - mu[:, None] * mu[None, :]
    trace_sqrt = eigvalsh(root @ sigma @ root).clamp_min(0).sqrt().sum()
    return float((mu - mu_real).square().sum() + sigma.trace() - 2 * trace_sqrt)


def _gram_terms(rows, sigma_real, mu_real):
    """n x n Gram matrices: X X^T, X S_r X^T, X mu_r (rows centred)."""
    return rows @ rows.T, rows @ sigma_real @ rows.T, rows @ mu_real, mu_real.square().sum()


def _gram_distance(weights, gram, gram_real, rows_mu_real, mu_real_norm) -> float:
    """The same distance from the Gram matrices: mu = X^T w, so ||mu||^2 = w^T H w, Tr S_g = sum w_i H_ii - w^T H w,
    and (X - 1 mu^T) S_r (X - 1 mu^T)^T = G - g 1^T - 1 g^T + (w^T g) with g = G w; only rows with w > 0 count."""
    from torch.linalg import eigvalsh
    kept = weights > 0
    w = weights[kept]
    H, G = gram[kept][:, kept], gram_real[kept][:, kept]
    mu_norm = w @ H @ w
    g = G @ w
    centred = G - g[:, None] - g[None, :] + w @ g
    root_w = w.sqrt()
    trace_sqrt = eigvalsh(root_w[:, None] * centred * root_w[None, :]).clamp_min(0).sqrt().sum()
    mean_term = mu_norm - 2 * (w @ rows_mu_real[kept]) + mu_real_norm
    return float(mean_term + (w * H.diagonal()).sum() - mu_norm - 2 * trace_sqrt)


def fid_for_generator(G, real_images: np.ndarray, dataset_key: str, extractor, cache_dir,
                      num_gen: int = FID_NUM_GEN, batch_size: int = 32, seed: int = 0, device="cpu",
                      source_id: str | None = None, bootstrap: bool = False) -> dict:
    """FID of a generator against a real uint8 image set (N x H x W x 3, full set, no x-flip), with its record;
    with `bootstrap`, `replicates` (a samples entry, popped by the caller before the record is stored) holds the
    FID of each bootstrap resample (`fid_replicates`)."""
    from lead_hsr.metrics.features import generated_features, real_features

    real = real_features(real_images, dataset_key, extractor, cache_dir, source_id=source_id)
    generated = generated_features(G, extractor, num_gen, batch_size, seed, device)
    record = {"fid": fid_from_features(generated, real), "num_gen": num_gen, "num_real": len(real), "seed": seed,
              **extractor.record}
    if bootstrap:
        sample_set = generated_sample_set(seed, num_gen)
        record["replicates"] = replicates_entry(fid_replicates(generated, real, sample_set, device), sample_set)
    return record
