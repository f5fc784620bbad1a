"""Layers against direct computations: FIR resampling, modulated conv, equalized learning rate."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.signal import convolve2d

from lead_hsr.gan.layers import (EqualConv2d, EqualLinear, downsample2x, fir, fir_filter_2d, modulated_conv2d,
                                 upsample2x)


def test_fir_filter_is_normalised_binomial():
    f = fir_filter_2d()
    expected = np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64.0
    np.testing.assert_allclose(f.numpy(), expected)


def _direct_upsample(x: np.ndarray) -> np.ndarray:
    """Zero-stuff at even positions, full 2-D convolution with 4*f, then crop 2 before / 1 after (centred)."""
    h, w = x.shape
    z = np.zeros((2 * h, 2 * w))
    z[::2, ::2] = x
    full = convolve2d(z, fir_filter_2d().numpy() * 4, mode="full")   # (2h + 3) samples per axis
    return full[1:1 + 2 * h, 1:1 + 2 * w]


def _direct_downsample(x: np.ndarray) -> np.ndarray:
    full = convolve2d(x, fir_filter_2d().numpy(), mode="full")       # (h + 3) samples
    return full[2:2 + x.shape[0] - 1:2, 2:2 + x.shape[1] - 1:2]


def test_upsample_matches_direct_convolution():
    x = torch.randn(1, 1, 5, 6, dtype=torch.float64)
    ours = upsample2x(x, fir_filter_2d().double())[0, 0].numpy()
    np.testing.assert_allclose(ours, _direct_upsample(x[0, 0].numpy()), atol=1e-12)


def test_downsample_matches_direct_convolution():
    x = torch.randn(1, 1, 8, 6, dtype=torch.float64)
    ours = downsample2x(x, fir_filter_2d().double())[0, 0].numpy()
    assert ours.shape == (4, 3)
    np.testing.assert_allclose(ours, _direct_downsample(x[0, 0].numpy()), atol=1e-12)


def test_resampling_keeps_constant_images_constant_inside():
    x = torch.ones(1, 2, 8, 8)
    up = upsample2x(x, fir_filter_2d())
    down = downsample2x(x, fir_filter_2d())
    torch.testing.assert_close(up[..., 2:-2, 2:-2], torch.ones_like(up[..., 2:-2, 2:-2]))
    torch.testing.assert_close(down[..., 1:-1, 1:-1], torch.ones_like(down[..., 1:-1, 1:-1]))


def _reference_modconv(x, weight, styles, demodulate, up=False):
    """Unfused: one sample at a time, explicit scaling and demodulation, ordinary conv."""
    outs = []
    for n in range(x.shape[0]):
        w = weight * styles[n].view(1, -1, 1, 1)
        if demodulate:
            norms = torch.sqrt((w ** 2).sum(dim=(1, 2, 3)) + 1e-8)
            w = w / norms.view(-1, 1, 1, 1)
        xi = x[n:n + 1]
        if up:
            y = F.conv_transpose2d(xi, w.transpose(0, 1), stride=2)
            outs.append(y)
        else:
            outs.append(F.conv2d(xi, w, padding=weight.shape[-1] // 2))
    return torch.cat(outs)


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv_matches_per_sample_reference(demodulate, fused):
    torch.manual_seed(0)
    x = torch.randn(3, 4, 6, 6, dtype=torch.float64)
    weight = torch.randn(5, 4, 3, 3, dtype=torch.float64)
    styles = torch.randn(3, 4, dtype=torch.float64)
    ours = modulated_conv2d(x, weight, styles, demodulate=demodulate, fused=fused)
    torch.testing.assert_close(ours, _reference_modconv(x, weight, styles, demodulate))


@pytest.mark.parametrize("fused", [False, True])
def test_modulated_upsampling_conv_matches_reference_then_fir(fused):
    torch.manual_seed(1)
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    weight = torch.randn(5, 3, 3, 3, dtype=torch.float64)
    styles = torch.randn(2, 3, dtype=torch.float64)
    f = fir_filter_2d().double()
    ours = modulated_conv2d(x, weight, styles, demodulate=True, up=True, resample_filter=f, fused=fused)
    ref = _reference_modconv(x, weight, styles, True, up=True)       # 9 x 9
    ref = torch.stack([torch.from_numpy(convolve2d(ref[n, c].numpy(), 4 * f.numpy(), mode="full")[2:10, 2:10])
                       for n in range(2) for c in range(5)]).reshape(2, 5, 8, 8)
    assert ours.shape == (2, 5, 8, 8)
    torch.testing.assert_close(ours, ref)


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("demodulate", [True, False])
def test_noise_is_added_after_demodulation(demodulate, fused):
    torch.manual_seed(4)
    x = torch.randn(2, 4, 5, 5, dtype=torch.float64)
    weight, styles = torch.randn(3, 4, 3, 3, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
    noise = torch.randn(2, 1, 5, 5, dtype=torch.float64)
    torch.testing.assert_close(modulated_conv2d(x, weight, styles, demodulate, noise=noise, fused=fused),
                               _reference_modconv(x, weight, styles, demodulate) + noise)


def test_upsampling_rejects_odd_filters():
    with pytest.raises(ValueError, match="even-length"):
        upsample2x(torch.ones(1, 1, 4, 4), fir_filter_2d((1.0, 2.0, 1.0)))


def test_demodulated_filters_have_unit_norm_output_scale():
    """With demodulation, scaling a sample's style by a constant does not change its output."""
    torch.manual_seed(2)
    x, weight, styles = torch.randn(1, 4, 5, 5), torch.randn(3, 4, 3, 3), torch.randn(1, 4)
    torch.testing.assert_close(modulated_conv2d(x, weight, styles), modulated_conv2d(x, weight, 7.0 * styles))


def test_equalized_lr_runtime_scaling():
    torch.manual_seed(3)
    fc = EqualLinear(16, 8, lr_multiplier=0.01, bias_init=0.5)
    x = torch.randn(4, 16)
    expected = x @ (fc.weight * 0.01 / math.sqrt(16)).t() + fc.bias * 0.01
    torch.testing.assert_close(fc(x), expected)
    assert fc.weight.std().item() > 10   # stored N(0, 1/lr_mul^2): the lr multiplier acts on updates
    conv = EqualConv2d(4, 6, 3)
    xi = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(conv(xi), F.conv2d(xi, conv.weight / math.sqrt(4 * 9), conv.bias, padding=1))


def test_downsampling_conv_halves_resolution():
    conv = EqualConv2d(2, 3, 3, down=True)
    skip = EqualConv2d(2, 3, 1, bias=False, down=True)
    x = torch.randn(2, 2, 8, 8)
    assert conv(x).shape == skip(x).shape == (2, 3, 4, 4)


@pytest.mark.parametrize("taps", [(1.0, 3.0, 3.0, 1.0), (0.3, -0.2, 1.0, 0.9, 0.1, -0.05)])
def test_separable_filters_match_their_outer_product(taps):
    """A 1-D filter is the separable form of the normalised outer-product 2-D filter: same values for FIR (incl.
    negative padding = crop), up- and downsampling."""
    x = torch.randn(2, 3, 10, 12, dtype=torch.float64)
    f1 = torch.tensor(taps, dtype=torch.float64) / sum(taps)
    f2 = torch.outer(f1, f1)                     # = fir_filter_2d(taps), in float64
    torch.testing.assert_close(upsample2x(x, f1), upsample2x(x, f2), rtol=0, atol=1e-12)
    torch.testing.assert_close(downsample2x(x, f1), downsample2x(x, f2), rtol=0, atol=1e-12)
    for pad in [(2, 1), (-1, -1), (0, 0)]:
        torch.testing.assert_close(fir(x, f1, pad, gain=4.0, stride=2), fir(x, f2, pad, gain=4.0, stride=2),
                                   rtol=0, atol=1e-12)
