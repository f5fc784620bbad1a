"""StyleGAN2 building blocks in plain PyTorch: equalized learning rate, [1,3,3,1] FIR resampling, modulated conv.

Facts from Karras et al., "Analyzing and Improving the Image Quality of StyleGAN" (CVPR 2020), Sec. 2.2 and App. B:
weights are stored N(0, 1) and scaled at run time by gain / sqrt(fan_in) ("equalized learning rate"); resampling
uses the separable [1,3,3,1] binomial filter; styles modulate conv weights per sample and demodulation
rescales each output channel to unit expected norm.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# Binomial low-pass filter used for every up/down-sampling step (StyleGAN2, App. B).
RESAMPLE_TAPS = (1.0, 3.0, 3.0, 1.0)
# Leaky ReLU slope and the gain that keeps activations' second moment at 1 (StyleGAN2 code facts).
LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)
# Small constant inside the demodulation rsqrt (StyleGAN2 Eq. 3).
DEMOD_EPS = 1e-8


def fir_filter_2d(taps=RESAMPLE_TAPS, device=None) -> torch.Tensor:
    """Separable 2-D filter (outer product of `taps`), normalised to sum 1."""
    t = torch.as_tensor(taps, dtype=torch.float32, device=device)
    f = torch.outer(t, t)
    return f / f.sum()


def _depthwise(f: torch.Tensor, channels: int, gain: float, dtype) -> torch.Tensor:
    return (f * gain).to(dtype)[None, None].expand(channels, 1, -1, -1)


def _separable_axes(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A 1-D filter `f` (separable taps) as the two depthwise kernels [1, ft] (along W) and [ft, 1] (along H)."""
    return f[None, :], f[:, None]


def fir(x: torch.Tensor, f: torch.Tensor, pad: tuple[int, int], gain: float = 1.0, stride: int = 1) -> torch.Tensor:
    """Filter every channel of `x` with filter `f` after zero-padding (pad_before, pad_after) per axis (negative =
    crop), keeping every `stride`-th output sample.

    `f` is 2-D, or 1-D for a separable filter (the outer product f x f, applied along W then along H: fewer
    multiplies for long filters such as ADA's 12-tap sym6). Implemented as depthwise conv2d (the filter is flipped
    so this is a true convolution); symmetric non-negative padding is left to the convolution (no padded copy)."""
    if pad[0] == pad[1] and pad[0] >= 0:
        padding = pad[0]
    else:
        x, padding = F.pad(x, [pad[0], pad[1], pad[0], pad[1]]), 0
    c = x.shape[1]
    if f.ndim == 1:
        fw, fh = _separable_axes(f.flip([0]))
        g = math.sqrt(gain)
        x = F.conv2d(x, _depthwise(fw, c, g, x.dtype), stride=(1, stride), padding=(0, padding), groups=c)
        return F.conv2d(x, _depthwise(fh, c, g, x.dtype), stride=(stride, 1), padding=(padding, 0), groups=c)
    return F.conv2d(x, _depthwise(f.flip([0, 1]), c, gain, x.dtype), stride=stride, padding=padding, groups=c)


def upsample2x(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Zero-insertion x2 then FIR with gain 4 (keeps the mean); output exactly 2H x 2W, centred. `f` is 2-D, or 1-D
    for a separable filter (two 1-D passes with gain 2 each).

    Computed as one depthwise transposed stride-2 conv with the filter (the zero-stuffed image is never formed):
    zero-stuffing, padding ((ft+1)//2, (ft-2)//2) and filtering equals the full transposed conv cropped by
    ft//2 - 1 samples on each side, for an even-length filter."""
    ft = f.shape[0]
    if ft % 2:
        raise ValueError(f"upsample2x needs an even-length filter (the [1,3,3,1] taps), got {ft} taps")
    c, crop = x.shape[1], ft // 2 - 1
    if f.ndim == 1:
        fw, fh = _separable_axes(f)
        x = F.conv_transpose2d(x, _depthwise(fw, c, 2.0, x.dtype), stride=(1, 2), padding=(0, crop), groups=c)
        return F.conv_transpose2d(x, _depthwise(fh, c, 2.0, x.dtype), stride=(2, 1), padding=(crop, 0), groups=c)
    return F.conv_transpose2d(x, _depthwise(f, c, 4.0, x.dtype), stride=2, padding=crop, groups=c)


def downsample2x(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """FIR low-pass then keep every second sample; output exactly H/2 x W/2, centred (a stride-2 depthwise conv:
    only the kept samples are computed). `f` is 2-D, or 1-D for a separable filter."""
    ft = f.shape[0]
    return fir(x, f, pad=((ft - 1) // 2, (ft - 2) // 2), stride=2)


def bias_act(x: torch.Tensor, bias: torch.Tensor | None, activation: str, gain: float = 1.0,
             clamp: float | None = None) -> torch.Tensor:
    """Add per-channel bias, apply 'linear' or 'lrelu' (with its sqrt(2) gain), extra gain, optional clamp."""
    if bias is not None:
        x = x + bias.to(x.dtype).reshape([1, -1] + [1] * (x.ndim - 2))
    if activation == "lrelu":
        x = F.leaky_relu(x, LRELU_SLOPE)
        gain = gain * LRELU_GAIN            # one multiply for both gains
    elif activation == "relu":
        x = F.relu(x)
        gain = gain * LRELU_GAIN
    elif activation != "linear":
        raise ValueError(f"unknown activation {activation!r}")
    if gain != 1.0:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


class EqualLinear(nn.Module):
    """Fully connected layer with equalized lr: w ~ N(0, 1/lr_mul^2), used as w * lr_mul / sqrt(in)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, bias_init: float = 0.0,
                 lr_multiplier: float = 1.0, activation: str = "linear"):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        x = x.matmul(w.t())
        b = None if self.bias is None else self.bias * self.bias_gain
        return bias_act(x, b, self.activation)


class EqualConv2d(nn.Module):
    """Conv with equalized lr, optional x2 down-sampling through the FIR filter (used by the discriminator)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "linear", down: bool = False, gain: float = 1.0, clamp: float | None = None):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.register_buffer("resample_filter", fir_filter_2d(), persistent=False)
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.activation, self.down, self.gain = activation, down, gain
        # Official Conv2dLayer: the clamp scales with the extra gain (act_clamp = conv_clamp * gain).
        self.clamp = None if clamp is None else clamp * gain
        self.padding = kernel_size // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = (self.weight * self.weight_gain).to(x.dtype)
        if self.down and w.shape[-1] == 1:
            x = F.conv2d(downsample2x(x, self.resample_filter), w)
        elif self.down:
            # Blur first with extra padding, then a strided conv: output is exactly H/2.
            ft = self.resample_filter.shape[0]
            p = self.padding + (ft - 1) // 2
            x = F.conv2d(fir(x, self.resample_filter, pad=(p, p)), w, stride=2)
        else:
            x = F.conv2d(x, w, padding=self.padding)
        return bias_act(x, self.bias, self.activation, gain=self.gain, clamp=self.clamp)


def demodulation_coefficients(weight: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """[N, O]: 1 / ||weight[o] * styles[n]|| over (I, k, k), as one small matmul (sum_i s_i^2 sum_k w_oik^2)
    instead of forming the N x O x I x k x k modulated weights."""
    return torch.rsqrt(styles.square() @ weight.square().sum(dim=[2, 3]).t() + DEMOD_EPS)


def modulate_weights(weight: torch.Tensor, styles: torch.Tensor, demodulate: bool) -> torch.Tensor:
    """Per-sample conv weights [N, O, I, k, k]: weight scaled by styles over I, then (optionally) each output
    filter rescaled to unit L2 norm (StyleGAN2 Eq. 1-3)."""
    w = weight[None] * styles[:, None, :, None, None]
    if demodulate:
        w = w * demodulation_coefficients(weight, styles)[:, :, None, None, None]
    return w


def _upsampled_conv(x: torch.Tensor, weight: torch.Tensor, groups: int, resample_filter: torch.Tensor) -> torch.Tensor:
    """Transposed stride-2 conv (`weight` [groups * O, I, k, k], laid out as for conv2d), then the FIR filter
    (gain 4, depthwise): exactly 2H x 2W, centred."""
    o, i, k, _ = weight.shape
    h = x.shape[2]
    w = weight.reshape(groups, o // groups, i, k, k).transpose(1, 2).reshape(groups * i, o // groups, k, k)
    x = F.conv_transpose2d(x, w, stride=2, groups=groups)
    # (2H + k - 2) samples after the transposed conv; pad so the 4-tap FIR returns 2H, centred.
    ft = resample_filter.shape[0]
    total = 2 * h - x.shape[2] + ft - 1
    return fir(x, resample_filter, pad=(total // 2, total - total // 2), gain=4.0)


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True,
                     up: bool = False, resample_filter: torch.Tensor | None = None,
                     noise: torch.Tensor | None = None, fused: bool = False) -> torch.Tensor:
    """Modulated conv (StyleGAN2 Eq. 1-3), in one of two forms with the same values up to float rounding:

    - unfused (default): scale the input channels by the styles, one ordinary conv with the shared weight, scale
      the output channels by the demodulation coefficients;
    - fused: per-sample weights, one grouped conv over the batch (StyleGAN2's inference form).
    On CPU the unfused form is faster at every batch size measured (1-64): 1.7x forward and 1.7-1.9x
    forward+backward at batch 16-64 (bench/README.md).

    up=True: transposed stride-2 conv followed by the FIR filter (gain 4), giving exactly 2H x 2W.
    A float16 `x` (a block of the official mixed-precision recipe) runs the conv in float16 after the official
    pre-normalisation; styles, weights and demodulation coefficients are computed in float32 and cast.
    `noise` (already scaled, broadcastable to the output) is added last, in the same pass as the demodulation."""
    n, c, h, wd = x.shape
    o, i, k, _ = weight.shape
    if x.dtype == torch.float16 and demodulate:
        # StyleGAN2-ADA's fp16 layers: pre-normalise the weight (per output filter) and the styles (per sample) by
        # their largest magnitude so the float16 conv cannot overflow; demodulation cancels both scales.
        weight = weight * (1 / math.sqrt(i * k * k) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)
    if fused:
        w = modulate_weights(weight, styles, demodulate).to(x.dtype).reshape(n * o, i, k, k)
        x = x.reshape(1, n * c, h, wd)
        if up:
            x = _upsampled_conv(x, w, n, resample_filter)
        else:
            x = F.conv2d(x, w, padding=k // 2, groups=n)
        x = x.reshape(n, o, x.shape[2], x.shape[3])
        return x if noise is None else x + noise
    x = x * styles.to(x.dtype)[:, :, None, None]
    w = weight.to(x.dtype)
    x = _upsampled_conv(x, w, 1, resample_filter) if up else F.conv2d(x, w, padding=k // 2)
    if not demodulate:
        return x if noise is None else x + noise
    dcoefs = demodulation_coefficients(weight, styles).to(x.dtype)[:, :, None, None]
    return x * dcoefs if noise is None else torch.addcmul(noise, x, dcoefs)
