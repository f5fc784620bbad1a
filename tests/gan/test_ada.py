"""ADA: the official AugmentPipe's behaviour without its checkout (invariants; the side-by-side comparison with the
official code is bench/compare_ada.py) and the adaptive p heuristic of the official training loop."""
import math

import numpy as np
import pytest
import torch

from lead_hsr.gan.ada import (ADA_INTERVAL, ADA_KIMG, ADA_TARGET, SYM6_TAPS, AdaptiveAugment, apply_color,
                              apply_geometry, augment, draw_color, draw_geometry, pipe_multipliers)
from lead_hsr.train.device import default_dtype


def _images(n=4, size=16, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, size, size, generator=g, dtype=dtype) * 2 - 1)


# ------------------------------------------------------------------------------------------------ p heuristic
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


def test_p_goes_from_0_to_1_in_500_kimg_and_is_not_clamped_at_1():
    """Official loop: p = max(p + adjust, 0), no upper clamp."""
    batch = 500
    ada = AdaptiveAugment()
    _run(ada, +1.0, steps=500_000 // batch - 4, batch=batch)
    assert float(ada.p) < 1.0
    _run(ada, +1.0, steps=4, batch=batch)
    assert math.isclose(float(ada.p), 1.0, rel_tol=1e-5)
    _run(ada, +1.0, steps=40, batch=batch)
    assert math.isclose(float(ada.p), 1.0 + 40 * batch / 500_000, rel_tol=1e-5)


def test_r_t_is_the_mean_sign_over_every_accumulated_evaluation_and_ties_do_not_move_p():
    """r_t pools every accumulate() since the last adjustment (D main and R1 phases alike); r_t == target: no move."""
    ada = AdaptiveAugment(interval=1)
    ada.accumulate(torch.tensor([1.0, 1.0, 1.0, -1.0, 1.0]))     # mean 0.6 = target
    ada.maybe_adjust(0, 5)
    assert float(ada.p) == 0.0 and float(ada.sign_count) == 0
    ada.accumulate(torch.ones(4))
    ada.accumulate(-torch.ones(1))                                # the same reals seen again (R1 phase): 3/5 > 0.6? no
    ada.accumulate(torch.ones(5))                                 # (4 - 1 + 5) / 10 = 0.8 > 0.6
    ada.maybe_adjust(0, 5)
    assert float(ada.p) > 0


def test_p_only_adjusts_every_interval():
    ada = AdaptiveAugment()
    _run(ada, +1.0, steps=3)
    assert float(ada.p) == 0.0


def test_disabled_ada_is_identity_and_p_stays_zero():
    ada = AdaptiveAugment(enabled=False)
    _run(ada, +1.0, steps=16)
    x = torch.randn(2, 3, 8, 8)
    assert float(ada.p) == 0.0 and ada(x) is x


def test_state_dict_keys_are_unchanged():
    """The filter is a non-persistent buffer: checkpoints hold p and the sign statistics only."""
    assert set(AdaptiveAugment().state_dict()) == {"p", "sign_sum", "sign_count"}


# ------------------------------------------------------------------------------------------------ the pipe
def test_sym6_taps_are_the_orthogonal_wavelet_with_6_vanishing_moments():
    h = np.asarray(SYM6_TAPS)
    k = np.arange(h.size)
    assert h.size == 12 and math.isclose(h.sum(), math.sqrt(2), rel_tol=1e-12)
    shifts = [np.dot(h[: h.size - 2 * m], h[2 * m:]) for m in range(6)]
    np.testing.assert_allclose(shifts, [1, 0, 0, 0, 0, 0], atol=1e-11)
    g = (-1) ** k * h[::-1]                                       # the matching high-pass
    moments = [abs(np.dot(k ** j, g)) / np.dot(k ** j, np.abs(g)) for j in range(7)]
    assert max(moments[:6]) < 1e-10 and moments[6] > 1e-3


def test_identity_at_p0_with_the_same_draws_as_at_p_above_0():
    x = _images()
    torch.manual_seed(0)
    assert torch.equal(augment(x, 0.0), x)
    after_p0 = torch.rand(3)
    torch.manual_seed(0)
    augment(x, 0.7)
    torch.testing.assert_close(torch.rand(3), after_p0, rtol=0, atol=0)   # same RNG use: the draws happen at p=0


def test_same_seed_same_parameters_and_injection_reproduce_augment():
    x = _images()
    torch.manual_seed(3)
    y = augment(x, 0.6)
    torch.manual_seed(3)
    g, c = draw_geometry(4, 16, 16, 0.6), draw_color(4, 0.6)
    torch.testing.assert_close(apply_color(apply_geometry(x, g), c), y, rtol=0, atol=0)


@pytest.mark.parametrize("groups", ["b", "g", "c"])
def test_each_group_alone_changes_every_image_at_p1(groups):
    x = _images()
    torch.manual_seed(2)
    y = augment(x, 1.0, pipe_multipliers(groups))
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert (y - x).abs().amax(dim=(1, 2, 3)).min() > 1e-2


def _reflect(i, n):
    i = np.abs(i)
    return np.where(i > n - 1, 2 * (n - 1) - i, i)


def test_integer_translation_pipe_is_a_pixel_permutation_with_reflection():
    """Whole-pixel shifts through the 2x sym6 path: each output pixel is one input pixel (found by mapping its centre
    through G_inv), reflected at the borders (float64 draws)."""
    size = 12
    with default_dtype(torch.float64):
        x = _images(n=16, size=size, dtype=torch.float64)
        torch.manual_seed(5)
        g = draw_geometry(16, size, size, 1.0, pipe_multipliers("", xint=1))
        y = apply_geometry(x, g)
    c = (size - 1) / 2
    rows, cols = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    out = np.stack([cols.ravel() - c, rows.ravel() - c, np.ones(size * size)])
    moved = 0
    for i in range(16):
        src = g[i].numpy() @ out
        src_col, src_row = src[0] + c, src[1] + c
        np.testing.assert_allclose(src_col, np.round(src_col), atol=1e-12)      # whole pixels only
        np.testing.assert_allclose(src_row, np.round(src_row), atol=1e-12)
        src_col, src_row = _reflect(np.round(src_col).astype(int), size), _reflect(np.round(src_row).astype(int), size)
        expected = x[i][:, src_row, src_col].reshape(3, size, size)
        torch.testing.assert_close(y[i], expected, rtol=0, atol=1e-9)
        moved += not torch.equal(expected, x[i])
    assert moved >= 12                                             # most samples really moved at p=1


def test_flips_and_quarter_turns_are_exact_in_the_matrix_and_close_in_the_image():
    """xflip / rotate90 draw exact signed axis permutations; the official resampling path then reproduces the
    flipped image only up to the sym6 filter's phase (it is not linear-phase: about 0.04 on a smooth image in
    [-1, 1], up to ~0.5 on white noise, as the official pipe)."""
    size, n = 16, 16
    yy, xx = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    smooth = (torch.cos(2 * math.pi * xx / 16 + 0.3) * torch.cos(2 * math.pi * yy / 16 + 1.1)).double()
    x = smooth.expand(n, 3, size, size)
    torch.manual_seed(3)
    g = draw_geometry(n, size, size, 1.0, pipe_multipliers("", xflip=1, rotate90=1))
    lin = g[:, :2, :2]
    torch.testing.assert_close(lin, lin.round(), rtol=0, atol=1e-6)      # cos(pi/2) in float32 is 4e-8, not 0
    assert torch.equal(g[:, :2, 2], torch.zeros(n, 2))
    y = apply_geometry(x, g)
    changed = 0
    for i in range(n):
        a = lin[i].round().long()
        exact = x[i]
        # output (col, row) samples input G_inv @ (col, row): build that permutation with flips and transposes
        if a[0, 0] == 0:
            exact = exact.transpose(1, 2)
            a = a[[1, 0]]
        if a.sum(dim=1)[0] < 0:
            exact = exact.flip(2)
        if a.sum(dim=1)[1] < 0:
            exact = exact.flip(1)
        changed += not torch.equal(exact, x[i])
        assert (y[i] - exact).abs().max() < 0.06
    assert changed >= 8


def _single(name, n=64, seed=7):
    torch.manual_seed(seed)
    return draw_color(n, 1.0, pipe_multipliers("", **{name: 1}))


def test_colour_matrices_have_their_defining_properties():
    v = torch.ones(3) / math.sqrt(3)
    eye = torch.eye(3)
    for name in ["brightness", "contrast", "lumaflip", "hue", "saturation"]:
        c = _single(name)
        assert torch.equal(c[:, 3, :3], torch.zeros(64, 3))   # affine ([3, 3] is s for saturation, as official)
        a, t = c[:, :3, :3], c[:, :3, 3]
        if name != "brightness":
            assert torch.equal(t, torch.zeros_like(t))
        if name == "brightness":      # translation along the grey axis, N(0, 0.2)
            assert torch.equal(a, eye.expand_as(a)) and torch.allclose(t, t[:, :1].expand_as(t))
            assert 0.1 < t[:, 0].std() < 0.3
        elif name == "contrast":      # scalar matrix, log2-normal
            assert torch.allclose(a, a[:, :1, :1] * eye) and (a[:, 0, 0] > 0).all()
        elif name == "lumaflip":      # Householder reflection of the grey axis or identity
            det = torch.linalg.det(a)
            assert torch.allclose(a @ a.transpose(1, 2), eye.expand_as(a), atol=1e-6)
            assert ((det - 1).abs() < 1e-5).any() and ((det + 1).abs() < 1e-5).any()
            flipped = (det + 1).abs() < 1e-5
            torch.testing.assert_close(a[flipped] @ v, -v.expand(int(flipped.sum()), 3))
        elif name == "hue":           # rotation about the grey axis
            torch.testing.assert_close(a @ a.transpose(1, 2), eye.expand_as(a), atol=1e-6, rtol=0)
            torch.testing.assert_close(torch.linalg.det(a), torch.ones(64))
            torch.testing.assert_close(a @ v, v.expand(64, 3))
        else:                         # saturation: grey axis fixed, its complement scaled by s > 0
            torch.testing.assert_close(a @ v, v.expand(64, 3))
            u = torch.tensor([1.0, -1.0, 0.0]) / math.sqrt(2)
            s = (a @ u) @ u
            torch.testing.assert_close(a @ u, s[:, None] * u)
            assert (s > 0).all() and (s != 1).any()


def test_all_colour_transforms_keep_the_grey_axis_direction_and_are_invertible():
    torch.manual_seed(1)
    c = draw_color(16, 1.0)
    assert torch.linalg.det(c[:, :3, :3]).abs().min() > 0
    grey = torch.ones(3) / math.sqrt(3)
    mapped = c[:, :3, :3] @ grey
    cos = (mapped @ grey) / mapped.norm(dim=1)
    torch.testing.assert_close(cos.abs(), torch.ones(16))


def test_p_above_1_applies_every_transform():
    torch.manual_seed(0)
    g = draw_geometry(256, 16, 16, 1.5, pipe_multipliers("g"))
    lin = g[:, :2, :2]
    assert (lin - torch.eye(2)).abs().amax(dim=(1, 2)).min() > 0 and g[:, :2, 2].abs().min() > 0


def test_double_backward_through_the_pipe_float64():
    """R1 through ADA differentiates the pipe's backward: gradgradcheck on a nonlinear function of the output."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    g, c = draw_geometry(2, 8, 8, 1.0), draw_color(2, 1.0)
    f = lambda img: torch.tanh(apply_color(apply_geometry(img, g), c)).square()  # noqa: E731
    assert torch.autograd.gradgradcheck(f, (x,), fast_mode=True)


def test_autocast_does_not_lower_the_pipe_precision():
    x = _images()
    torch.manual_seed(4)
    ref = augment(x, 1.0)
    torch.manual_seed(4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = augment(x, 1.0)
    assert y.dtype == x.dtype
    torch.testing.assert_close(y, ref, rtol=0, atol=0)


def test_single_warp_setting_draws_the_same_parameters():
    """GEOMETRY "single_warp": same draws and colour; whole-pixel shifts agree with the official path away from the
    borders (their border handling differs: edge-symmetric vs reflect)."""
    x = _images()
    for probs, interior in [(pipe_multipliers("", xint=1), slice(3, -3)), (pipe_multipliers("c"), slice(None))]:
        torch.manual_seed(6)
        a = augment(x, 1.0, probs)
        torch.manual_seed(6)
        b = augment(x, 1.0, probs, geometry="single_warp")
        torch.testing.assert_close(b[..., interior, interior], a[..., interior, interior], rtol=0, atol=1e-5)
    torch.manual_seed(6)
    assert not torch.allclose(augment(x, 1.0, geometry="single_warp"), augment(x, 1.0))
    assert torch.equal(AdaptiveAugment(geometry="single_warp")(x), x)          # p = 0
    with pytest.raises(ValueError, match="geometry"):
        AdaptiveAugment(geometry="two_warps")
