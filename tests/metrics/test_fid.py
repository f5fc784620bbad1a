import numpy as np
import pytest

from lead_hsr.errors import InputError
from lead_hsr.metrics import fid


def _reference_fid(x, y):
    """Independent route: biased moments by hand; Tr sqrt(S1 S2) = sum of sqrt eigenvalues of S1 S2."""
    mx, my = x.mean(0), y.mean(0)
    sx = (x - mx).T @ (x - mx) / len(x)
    sy = (y - my).T @ (y - my) / len(y)
    eigenvalues = np.linalg.eigvals(sx @ sy).real.clip(min=0)
    return np.sum((mx - my) ** 2) + np.trace(sx) + np.trace(sy) - 2 * np.sqrt(eigenvalues).sum()


def test_fid_matches_an_independent_computation():
    rng = np.random.default_rng(0)
    generated = rng.normal(size=(300, 12)) @ rng.normal(size=(12, 12)) + 0.3
    real = rng.normal(size=(400, 12)) * np.linspace(0.5, 2, 12)
    value = fid.fid_from_features(generated, real)
    assert value > 1
    assert abs(value - _reference_fid(generated, real)) / value < 1e-6


def test_frechet_distance_closed_form_for_diagonal_covariances():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=7), rng.normal(size=7)
    var1, var2 = rng.uniform(0.1, 3, 7), rng.uniform(0.1, 3, 7)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
    value = fid.frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2))
    assert value == pytest.approx(expected, rel=1e-9)


def test_identical_sets_give_zero_and_a_singular_covariance_stays_real():
    rng = np.random.default_rng(2)
    features = rng.normal(size=(10, 32))  # N < D: singular covariance, sqrtm returns tiny imaginary parts
    value = fid.fid_from_features(features, features)
    assert isinstance(value, float) and abs(value) < 1e-6


def test_moments_divide_by_n_like_stylegan():
    features = np.array([[0.0, 1.0], [2.0, 3.0]])
    mean, cov = fid.feature_moments(features)
    assert np.allclose(mean, [1, 2]) and np.allclose(cov, np.full((2, 2), 1.0))  # N-1 would give 2.0
    assert fid.COVARIANCE_DDOF == 0 and fid.FID_NUM_GEN == 50_000


def test_too_few_features_is_an_input_error():
    with pytest.raises(InputError, match="N >= 2"):
        fid.feature_moments(np.zeros((1, 4)))
