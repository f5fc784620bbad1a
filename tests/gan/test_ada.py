"""ADA: adaptive p follows the overfitting heuristic; the 'bgc' pipeline is identity at p=0 and acts at p>0."""
import math

import torch

from lead_hsr.gan.ada import ADA_INTERVAL, ADA_KIMG, ADA_TARGET, AdaptiveAugment, augment, color_matrix


def _run(ada, logit_value, steps, batch=8):
    for step in range(steps):
        ada.accumulate(torch.full((batch, 1), logit_value))
        ada.maybe_adjust(step, batch)


def test_p_rises_when_d_overfits_and_falls_otherwise():
    assert (ADA_TARGET, ADA_INTERVAL, ADA_KIMG) == (0.6, 4, 500)
    ada = AdaptiveAugment()
    _run(ada, +1.0, steps=8)                      # r_t = 1 > 0.6: two adjustments up
    assert math.isclose(float(ada.p), 2 * 8 * 4 / 500_000, rel_tol=1e-5)
    _run(ada, -1.0, steps=4)                      # r_t = -1 < 0.6: one adjustment down
    assert math.isclose(float(ada.p), 8 * 4 / 500_000, rel_tol=1e-4)
    _run(ada, -1.0, steps=40)
    assert float(ada.p) == 0.0                    # never negative


def test_p_goes_from_0_to_1_in_500_kimg():
    batch = 500
    ada = AdaptiveAugment()
    images_needed = 500_000
    _run(ada, +1.0, steps=images_needed // batch - 4, batch=batch)
    assert float(ada.p) < 1.0
    _run(ada, +1.0, steps=4, batch=batch)
    assert math.isclose(float(ada.p), 1.0, rel_tol=1e-5)


def test_p_only_adjusts_every_interval():
    ada = AdaptiveAugment()
    _run(ada, +1.0, steps=3)
    assert float(ada.p) == 0.0


def test_disabled_ada_is_identity_and_p_stays_zero():
    ada = AdaptiveAugment(enabled=False)
    _run(ada, +1.0, steps=16)
    x = torch.randn(2, 3, 8, 8)
    assert float(ada.p) == 0.0 and ada(x) is x


def test_augment_identity_at_p0_and_changes_images_at_p1():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    assert torch.equal(augment(x, 0.0), x)
    y = augment(x, 1.0)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert (y - x).abs().mean(dim=(1, 2, 3)).min() > 1e-3


def test_colour_transforms_keep_grey_axis_direction_and_are_invertible():
    torch.manual_seed(1)
    c = color_matrix(16, 1.0, "cpu")
    assert torch.linalg.det(c[:, :3, :3]).abs().min() > 0
    grey = torch.ones(3) / math.sqrt(3)
    # hue rotation and saturation fix the grey axis; contrast/lumaflip only scale it
    mapped = c[:, :3, :3] @ grey
    cos = (mapped @ grey) / mapped.norm(dim=1)
    torch.testing.assert_close(cos.abs(), torch.ones(16))
