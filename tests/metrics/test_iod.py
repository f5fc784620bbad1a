"""IOD error on hand-computed cases."""
import numpy as np
import pytest
import torch

from lead_hsr.errors import InputError
from lead_hsr.metrics.iod import EYE_INDICES, eye_indices_for, iod_error, iod_errors


def test_eye_index_constants():
    assert eye_indices_for("mafl") == eye_indices_for("aflw_m") == eye_indices_for("aflw_r") == (0, 1)
    assert eye_indices_for("w300") == (36, 45)
    with pytest.raises(InputError, match="EYE_INDICES"):
        eye_indices_for("cub")
    assert set(EYE_INDICES) >= {"mafl", "aflw_m", "aflw_r", "w300"}


def test_five_point_hand_computed():
    # eyes 40 px apart in image 0, 20 px apart in image 1
    gt = np.array([[[30, 40], [70, 40], [50, 60], [35, 75], [65, 75]],
                   [[40, 40], [60, 40], [50, 50], [45, 60], [55, 60]]], dtype=float)
    pred = gt.copy()
    pred[0, 2] += [3, 4]       # 5 px off -> 5/40
    pred[1, 4] += [0, -2]      # 2 px off -> 2/20
    # image 0: (5/40)/5 = 0.025 -> 2.5 %; image 1: (2/20)/5 = 0.02 -> 2.0 %; mean 2.25 %
    np.testing.assert_allclose(iod_errors(pred, gt, (0, 1)), [2.5, 2.0])
    assert iod_error(pred, gt, (0, 1)) == pytest.approx(2.25)
    assert iod_error(torch.tensor(pred), torch.tensor(gt), (0, 1)) == pytest.approx(2.25)  # tensors too


def test_sixty_eight_point_uses_outer_eye_corners():
    rng = np.random.default_rng(0)
    gt = rng.uniform(20, 80, size=(1, 68, 2))
    gt[0, 36], gt[0, 45] = [30, 40], [66, 40]   # outer eye corners 36 px apart
    gt[0, 0], gt[0, 1] = [50, 50], [50, 51]     # points 0 and 1 close together: must not be used
    pred = gt.copy()
    pred[0, 10] += [6, 8]       # 10 px
    pred[0, 50] += [-9, 0]      # 9 px
    expected = 100 * (10 / 36 + 9 / 36) / 68
    assert iod_error(pred, gt, eye_indices_for("w300")) == pytest.approx(expected)


def test_absent_landmarks_are_skipped_and_bad_shapes_fail():
    gt = np.array([[[0, 0], [10, 0], [5, 5]]], dtype=float)
    pred = gt + [[[1, 0], [0, 0], [0, 0]]]
    gt_missing = gt.copy()
    gt_missing[0, 2] = np.nan
    assert iod_error(pred, gt_missing, (0, 1)) == pytest.approx(100 * (1 / 10) / 2)
    with pytest.raises(ValueError, match="shape"):
        iod_error(pred[:, :2], gt, (0, 1))
    with pytest.raises(ValueError, match="inter-ocular"):
        iod_error(pred, np.zeros_like(gt), (0, 1))


def test_iod_is_the_same_in_pixels_and_in_dve_normalised_coordinates():
    """DVE/CL compute the IOD error on kp_normalize'd coordinates (u = 2x / (S - 1) - 1, square crops): one scale
    and shift for both axes, which the ratio removes."""
    rng = np.random.default_rng(1)
    gt = rng.uniform(10, 86, size=(7, 5, 2))
    pred = gt + rng.normal(0, 3, size=gt.shape)
    unit = lambda x: 2 * x / 95 - 1  # noqa: E731
    np.testing.assert_allclose(iod_errors(unit(pred), unit(gt), (0, 1)), iod_errors(pred, gt, (0, 1)), rtol=1e-12)
