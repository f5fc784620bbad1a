import numpy as np
import pytest
from scipy.spatial.distance import cdist

from lead_hsr.errors import InputError
from lead_hsr.metrics import precision_recall as pr


def _reference(generated, real, k):
    """Brute force with scipy: radius = k-th smallest distance to the other points of the set."""
    def radii(points):
        d = cdist(points, points)
        return np.sort(d, axis=1)[:, k]  # column 0 is the point itself
    precision = np.mean((cdist(generated, real) <= radii(real)[None]).any(1))
    recall = np.mean((cdist(real, generated) <= radii(generated)[None]).any(1))
    return precision, recall


def test_constructed_sets_have_known_precision_and_recall():
    real = np.arange(10, dtype=np.float32)[:, None]
    shifted = real + 0.1  # inside the real manifold (real radii are 2 or 3)
    far = 1000 + 10 * np.arange(10, dtype=np.float32)[:, None]  # outside it
    generated = np.concatenate([shifted, far])
    precision, recall = pr.precision_recall(generated, real, k=3, batch=3)  # batch 3 exercises the chunking
    assert precision == 0.5  # the 10 far points are not within any real ball
    assert recall == 1.0  # every real point is 0.1 from a shifted generated point
    assert pr.precision_recall(real, generated, k=3) == (1.0, 0.5)  # roles swap


def test_knn_radius_excludes_the_point_itself_and_counts_the_boundary():
    real = np.arange(10, dtype=np.float32)[:, None]
    radii = pr.knn_radii(__import__("torch").from_numpy(real), k=3, batch=4).numpy()
    assert radii.tolist() == [3, 2, 2, 2, 2, 2, 2, 2, 2, 3]  # neighbours at 1,1,2,2
    probes = np.array([[-3.0], [-3.001], [12.0], [12.001]], np.float32)
    precision, _ = pr.precision_recall(probes, real, k=3)
    assert precision == 0.5  # -3 and 12 lie exactly on the radii of points 0 and 9; the others just outside


def test_too_few_points_for_k_is_an_input_error():
    with pytest.raises(InputError, match="expected more than k = 3"):
        pr.precision_recall(np.zeros((3, 2)), np.ones((10, 2)), k=3)


def test_matches_brute_force_on_random_features():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(120, 5)).astype(np.float32)
    generated = (rng.normal(size=(90, 5)) * 1.3 + 0.4).astype(np.float32)
    expected = _reference(generated, real, pr.PR_NEIGHBOURHOOD)
    assert pr.precision_recall(generated, real, batch=25) == pytest.approx(expected, abs=1e-9)
    assert 0 < expected[0] < 1 and 0 < expected[1] < 1


def test_protocol_constants():
    assert (pr.PR_NEIGHBOURHOOD, pr.PR_NUM_GEN, pr.PR_MAX_REAL) == (3, 50_000, 200_000)
