"""StyleGAN2 generator (mapping + 'skip' synthesis) and 'resnet' discriminator, with presets.

Architecture facts (StyleGAN2 / StyleGAN2-ADA papers and DESIGN.md section 6): 8 mapping FC layers with lr
multiplier 0.01 and a tracked w_avg for truncation; synthesis blocks from 4x4 up with two modulated 3x3 convs
(one at 4x4), per-layer noise with a learned strength and a ToRGB per block summed into an upsampled skip image;
discriminator blocks with a residual 1x1 skip, minibatch standard deviation and a 4x4 epilogue.
Widths: min(channel_base / resolution, channel_max).
Preset key `conv_clamp` (256 in paper256, as in NVlabs' released networks and HSR's runs; None in the demo):
conv/ToRGB outputs clamped to +-conv_clamp * gain after bias and activation, in every precision, as the official
layers do (the residual skip and the FC layers are never clamped).
`num_fp16_res` (a constructor argument, not a preset key: it changes the precision, not the function): the official
mixed-precision recipe runs the synthesis and discriminator blocks at the N highest resolutions (never below 8) in
float16 (`fp16_resolution`), everything else (mapping, lower blocks, D epilogue, the RGB skip image) in float32;
parameters stay float32.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn

from lead_hsr.errors import InputError
from lead_hsr.gan.layers import (EqualConv2d, EqualLinear, bias_act, fir_filter_2d, modulated_conv2d,
                                 upsample2x)

# Presets. paper256 = the StyleGAN2-ADA 'paper256' config used by HSR (DESIGN section 6; mbstd group 4, 8 mapping
# layers per HSR's runs). demo = tiny widths so one G+D step at batch 8 takes ~0.1 s on one CPU core.
PRESETS: dict[str, dict] = {
    "paper256": dict(resolution=256, z_dim=512, w_dim=512, mapping_layers=8, channel_base=16384,
                     channel_max=512, mbstd_group=4, conv_clamp=256.0),
    "demo": dict(resolution=32, z_dim=64, w_dim=64, mapping_layers=2, channel_base=1024,
                 channel_max=64, mbstd_group=4),
}
MAPPING_LR_MULTIPLIER = 0.01   # StyleGAN2-ADA: mapping lr multiplier
W_AVG_BETA = 0.995             # StyleGAN2-ADA: decay of the tracked w_avg
FIRST_RESOLUTION = 4           # synthesis starts from a learned 4x4 constant
MBSTD_CHANNELS = 1             # minibatch-std features appended by D (StyleGAN2-ADA default)
RESIDUAL_GAIN = math.sqrt(0.5)  # D resnet: skip and main path each scaled by sqrt(0.5)
MIN_FP16_RESOLUTION = 8         # StyleGAN2-ADA: no block below 8x8 runs in float16


def quantise_to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] -> uint8 exactly as StyleGAN2-ADA's generate.py and metric code
    (x * 127.5 + 128, clamp, truncate); the metrics and `lead_hsr.gan.generate` share it."""
    return (images * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def get_preset(name_or_dict) -> dict:
    """A preset by name, or a dict overriding keys of the 'demo' preset; validated."""
    if isinstance(name_or_dict, str):
        if name_or_dict not in PRESETS:
            raise InputError(f"unknown GAN preset {name_or_dict!r}; expected one of {sorted(PRESETS)} "
                             "(or a dict of resolution/z_dim/w_dim/mapping_layers/channel_base/channel_max)")
        return dict(PRESETS[name_or_dict])
    preset = dict(PRESETS["demo"], **dict(name_or_dict))
    r = preset["resolution"]
    if r < 8 or r & (r - 1):
        raise InputError(f"GAN resolution must be a power of two >= 8, got {r}; fix the 'resolution' option")
    return preset


def channels_at(res: int, channel_base: int, channel_max: int) -> int:
    return min(channel_base // res, channel_max)


def block_resolutions(resolution: int) -> list[int]:
    return [2 ** i for i in range(2, int(np.log2(resolution)) + 1)]


def fp16_resolution(resolution: int, num_fp16_res: int) -> int:
    """Lowest block resolution that runs in float16 (StyleGAN2-ADA: the `num_fp16_res` highest, never below 8);
    above `resolution` when num_fp16_res is 0."""
    return max(2 ** (int(np.log2(resolution)) + 1 - num_fp16_res), MIN_FP16_RESOLUTION)


def block_dtype(use_fp16: bool, reference: torch.Tensor) -> torch.dtype:
    """float16 for a mixed-precision block; otherwise the dtype the network runs in (float32, float64 in tests)."""
    return torch.float16 if use_fp16 else reference.dtype


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


class MappingNetwork(nn.Module):
    """z -> w: normalise z, `num_layers` leaky-ReLU FC layers; broadcast to num_ws; truncation around w_avg."""

    def __init__(self, z_dim: int, w_dim: int, num_ws: int, num_layers: int = 8,
                 lr_multiplier: float = MAPPING_LR_MULTIPLIER, w_avg_beta: float = W_AVG_BETA):
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws, self.w_avg_beta = z_dim, w_dim, num_ws, w_avg_beta
        dims = [z_dim] + [w_dim] * num_layers
        self.layers = nn.ModuleList(EqualLinear(a, b, lr_multiplier=lr_multiplier, activation="lrelu")
                                    for a, b in zip(dims[:-1], dims[1:]))
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, update_w_avg: bool = False) -> torch.Tensor:
        """`c` is the class label of StyleGAN2-ADA's interface (`mapping(z, c)`); all our GANs are
        unconditional (c_dim = 0), so it must be None or empty."""
        if c is not None and c.numel():
            raise ValueError(f"this mapping network is unconditional (c_dim = 0), got labels of shape {tuple(c.shape)}")
        x = normalize_2nd_moment(z.to(self.w_avg.dtype))   # the mapping runs in its parameters' precision
        for layer in self.layers:
            x = layer(x)
        if update_w_avg:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().to(self.w_avg.dtype).mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            cut = self.num_ws if truncation_cutoff is None else truncation_cutoff
            ws[:, :cut] = self.w_avg.to(ws.dtype).lerp(ws[:, :cut], truncation_psi)
        return ws


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (+ optional x2 upsampling), per-pixel noise with learned strength, bias, lrelu."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: bool = False,
                 conv_clamp: float | None = None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.register_buffer("resample_filter", fir_filter_2d(), persistent=False)
        self.up, self.resolution = up, resolution

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        styles = self.affine(w)
        # Drawn and scaled in float32, cast to a float16 block's dtype at use (as the official layer: the same seed
        # draws the same noise in every precision).
        if noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device) * self.noise_strength
            noise = noise.to(x.dtype)
        elif noise_mode == "const":
            noise = (self.noise_const * self.noise_strength).to(x.dtype)
        elif noise_mode == "none":
            noise = None
        else:
            raise ValueError(f"unknown noise_mode {noise_mode!r}")
        x = modulated_conv2d(x, self.weight, styles, demodulate=True, up=self.up,
                             resample_filter=self.resample_filter, noise=noise)
        return bias_act(x, self.bias, "lrelu", clamp=self.conv_clamp)


class ToRGB(nn.Module):
    """Modulated 1x1 conv to RGB, no demodulation (StyleGAN2 'skip' output branch)."""

    def __init__(self, in_channels: int, w_dim: int, img_channels: int = 3, conv_clamp: float | None = None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(img_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(img_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        return bias_act(modulated_conv2d(x, self.weight, styles, demodulate=False), self.bias, "linear",
                        clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution of the 'skip' generator; returns (features, running RGB image)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 conv_clamp: float | None = None, use_fp16: bool = False):
        super().__init__()
        self.resolution, self.use_fp16 = resolution, use_fp16
        if resolution == FIRST_RESOLUTION:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
            self.convs = nn.ModuleList([SynthesisLayer(out_channels, out_channels, w_dim, resolution,
                                                       conv_clamp=conv_clamp)])
        else:
            self.convs = nn.ModuleList([
                SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=True, conv_clamp=conv_clamp),
                SynthesisLayer(out_channels, out_channels, w_dim, resolution, conv_clamp=conv_clamp)])
        self.torgb = ToRGB(out_channels, w_dim, conv_clamp=conv_clamp)
        self.register_buffer("resample_filter", fir_filter_2d(), persistent=False)
        self.num_conv = len(self.convs)

    def forward(self, x, img, ws: torch.Tensor, noise_mode: str = "random"):
        dtype = block_dtype(self.use_fp16, ws)
        if self.resolution == FIRST_RESOLUTION:
            x = self.const.to(dtype).unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
        else:
            x = x.to(dtype)
        for i, conv in enumerate(self.convs):
            x = conv(x, ws[:, i], noise_mode)
        y = self.torgb(x, ws[:, self.num_conv])
        if self.use_fp16:
            y = y.to(ws.dtype)                  # the RGB skip image stays in the network's precision
        img = y if img is None else upsample2x(img, self.resample_filter) + y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> image in [-1, 1] (unclamped), optionally with per-block features and RGB."""

    def __init__(self, w_dim: int, resolution: int, channel_base: int, channel_max: int,
                 conv_clamp: float | None = None, num_fp16_res: int = 0):
        super().__init__()
        self.resolutions = block_resolutions(resolution)
        self.channels = {r: channels_at(r, channel_base, channel_max) for r in self.resolutions}
        self.blocks = nn.ModuleList()
        fp16_from = fp16_resolution(resolution, num_fp16_res)
        for r in self.resolutions:
            in_ch = self.channels.get(r // 2, 0)
            self.blocks.append(SynthesisBlock(in_ch, self.channels[r], w_dim, r, conv_clamp, use_fp16=r >= fp16_from))
        # Block b reads ws[w_idx : w_idx + num_conv + 1]; its ToRGB shares the next block's first w.
        self.num_ws = sum(b.num_conv for b in self.blocks) + 1

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", return_features: bool = False):
        x = img = None
        features, rgbs = {}, {}
        w_idx = 0
        for block in self.blocks:
            x, img = block(x, img, ws[:, w_idx: w_idx + block.num_conv + 1], noise_mode)
            w_idx += block.num_conv
            features[block.resolution], rgbs[block.resolution] = x, img
        if return_features:
            return img, features, rgbs
        return img


class Generator(nn.Module):
    """G = synthesis(mapping(z)). `forward(z)` returns images; see `synthesis(..., return_features=True)`."""

    def __init__(self, resolution: int, z_dim: int, w_dim: int, mapping_layers: int, channel_base: int,
                 channel_max: int, conv_clamp: float | None = None, num_fp16_res: int = 0, **_unused):
        super().__init__()
        self.resolution, self.z_dim, self.w_dim = resolution, z_dim, w_dim
        self.c_dim = 0  # unconditional (StyleGAN2-ADA's interface: mapping(z, c))
        self.synthesis = SynthesisNetwork(w_dim, resolution, channel_base, channel_max, conv_clamp, num_fp16_res)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, w_dim, self.num_ws, mapping_layers)

    def forward(self, z, truncation_psi: float = 1.0, noise_mode: str = "random", return_features=False):
        return self.synthesis(self.mapping(z, truncation_psi=truncation_psi), noise_mode, return_features)


def minibatch_std(x: torch.Tensor, group_size: int, num_channels: int = MBSTD_CHANNELS) -> torch.Tensor:
    """Append the std over groups of `group_size` samples (averaged over features and pixels) as channels."""
    n, c, h, w = x.shape
    g = min(group_size, n)
    if n % g:
        raise ValueError(f"batch {n} is not divisible by the minibatch-std group size {g}")
    y = x.reshape(g, -1, num_channels, c // num_channels, h, w)
    y = (y - y.mean(dim=0)).square().mean(dim=0)
    y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4])
    y = y.reshape(-1, num_channels, 1, 1).repeat(g, 1, h, w)
    return torch.cat([x, y], dim=1)


class DiscriminatorBlock(nn.Module):
    """Residual block: two 3x3 convs (the second downsamples) + a 1x1 downsampling skip, both scaled by
    sqrt(0.5). The first block also has the 1x1 FromRGB layer ('resnet' architecture)."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, conv_clamp: float | None = None,
                 use_fp16: bool = False):
        super().__init__()
        self.use_fp16 = use_fp16
        self.fromrgb = (EqualConv2d(3, tmp_channels, 1, activation="lrelu", clamp=conv_clamp)
                        if in_channels == 0 else None)
        self.conv0 = EqualConv2d(tmp_channels, tmp_channels, 3, activation="lrelu", clamp=conv_clamp)
        self.conv1 = EqualConv2d(tmp_channels, out_channels, 3, activation="lrelu", down=True, gain=RESIDUAL_GAIN,
                                 clamp=conv_clamp)
        self.skip = EqualConv2d(tmp_channels, out_channels, 1, bias=False, down=True, gain=RESIDUAL_GAIN)

    def forward(self, x, img):
        dtype = block_dtype(self.use_fp16, img)
        x = self.fromrgb(img.to(dtype)) if self.fromrgb is not None else x.to(dtype)
        return self.skip(x) + self.conv1(self.conv0(x))


class Discriminator(nn.Module):
    """'resnet' D: blocks from full resolution down to 8 -> 4x4, then mbstd, 3x3 conv, FC, FC -> 1 logit."""

    def __init__(self, resolution: int, channel_base: int, channel_max: int, mbstd_group: int = 4,
                 conv_clamp: float | None = None, num_fp16_res: int = 0, **_unused):
        super().__init__()
        self.mbstd_group = mbstd_group
        res = [r for r in reversed(block_resolutions(resolution)) if r > FIRST_RESOLUTION]
        ch = {r: channels_at(r, channel_base, channel_max) for r in res + [FIRST_RESOLUTION]}
        fp16_from = fp16_resolution(resolution, num_fp16_res)
        self.blocks = nn.ModuleList(
            DiscriminatorBlock(0 if i == 0 else ch[r], ch[r], ch[r // 2], conv_clamp, use_fp16=r >= fp16_from)
            for i, r in enumerate(res))
        c4 = ch[FIRST_RESOLUTION]
        self.epilogue_conv = EqualConv2d(c4 + MBSTD_CHANNELS, c4, 3, activation="lrelu", clamp=conv_clamp)
        self.epilogue_fc = EqualLinear(c4 * FIRST_RESOLUTION ** 2, c4, activation="lrelu")
        self.epilogue_out = EqualLinear(c4, 1)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = None
        for block in self.blocks:
            x = block(x, img)
        x = minibatch_std(x.to(img.dtype), self.mbstd_group)   # the epilogue runs in the network's precision
        x = self.epilogue_conv(x)
        x = self.epilogue_fc(x.flatten(1))
        return self.epilogue_out(x)


def build_networks(preset: dict, device="cpu", num_fp16_res: int = 0) -> tuple[Generator, Discriminator]:
    preset = get_preset(preset)
    with torch.device(device):
        return Generator(**preset, num_fp16_res=num_fp16_res), Discriminator(**preset, num_fp16_res=num_fp16_res)


def count_parameters(module: nn.Module) -> int:
    """Every parameter (incl. noise strengths), no buffers."""
    return sum(p.numel() for p in module.parameters())
