import numpy as np
import pytest

from lead_hsr.errors import InputError
from lead_hsr.metrics import mahalanobis as mh


def _gaussian(rng, n, d=6):
    basis = rng.normal(size=(d, d))
    covariance = basis @ basis.T + 0.5 * np.eye(d)
    mean = rng.normal(size=d)
    return rng.multivariate_normal(mean, covariance, size=n), mean, covariance


@pytest.mark.parametrize("method", mh.COVARIANCE_METHODS)
def test_distances_match_the_true_gaussian_moments(method):
    rng = np.random.default_rng(0)
    real, mean, covariance = _gaussian(rng, 20_000)
    probes = rng.multivariate_normal(mean, covariance, size=2_000)
    estimated = mh.mahalanobis_distances(probes, *mh.real_moments(real, method))
    offsets = probes - mean
    truth = np.sqrt(np.einsum("nd,de,ne->n", offsets, np.linalg.inv(covariance), offsets))
    assert np.max(np.abs(estimated - truth) / truth) < 0.05
    assert np.mean(estimated**2) == pytest.approx(6, rel=0.1)  # chi-square with d = 6 degrees of freedom


def test_ledoit_wolf_matches_the_explicit_formula():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(15, 8)) * np.linspace(0.2, 3, 8)  # n ~ p: shrinkage is substantial
    covariance, shrinkage = mh.ledoit_wolf(x)
    centred = x - x.mean(0)
    n, p = x.shape
    sample = sum(np.outer(row, row) for row in centred) / n
    mu = np.trace(sample) / p
    d2 = np.linalg.norm(sample - mu * np.eye(p), "fro") ** 2
    b2 = sum(np.linalg.norm(np.outer(row, row) - sample, "fro") ** 2 for row in centred) / n**2
    expected = min(b2, d2) / d2
    assert 0.05 < shrinkage < 1 and shrinkage == pytest.approx(expected, rel=1e-10)
    assert np.allclose(covariance, (1 - expected) * sample + expected * mu * np.eye(p))


def test_ledoit_wolf_handles_more_dimensions_than_samples():
    x = np.random.default_rng(2).normal(size=(20, 50))
    mean, precision = mh.real_moments(x, "ledoit-wolf")
    assert np.all(np.isfinite(precision)) and np.all(mh.mahalanobis_distances(x, mean, precision) > 0)


def test_worst_k_finds_planted_outliers_farthest_first():
    rng = np.random.default_rng(3)
    real, mean, covariance = _gaussian(rng, 5_000)
    probes = rng.multivariate_normal(mean, covariance, size=100)
    probes[17] += 30 * np.sqrt(np.diag(covariance))
    probes[42] += 60 * np.sqrt(np.diag(covariance))
    distances = mh.mahalanobis_distances(probes, *mh.real_moments(real))
    assert mh.worst_k(distances, 2).tolist() == [42, 17]
    assert (mh.WORST_NUM_GEN, mh.WORST_K) == (5_000, 30)


def test_unknown_method_is_an_input_error():
    with pytest.raises(InputError, match="covariance method"):
        mh.real_moments(np.zeros((3, 2)), "oas")
