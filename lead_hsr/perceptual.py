"""LPIPS distances on VGG16 features: the one home of the perceptual network PPL (`lead_hsr.metrics.ppl`) and the
projector (`lead_hsr.gan.projector`) load. It sits in the bottom layer (beside `weights`) so both can import it.

Two networks, named as the config's `metrics.ppl.distance` / the projector's `--lpips` name them:
- "nvlabs-vgg16": NVlabs' TorchScript vgg16.pt called with `return_lpips=True, resize_images=False` on images in
  [0, 255] (float): unit-normalised, LPIPS-weighted features whose squared difference summed is LPIPS. What
  StyleGAN2-ADA's PPL and projector.py use; no random stand-in (a TorchScript file is code + weights).
- "lpips-vgg": the lpips package (v0.1 linear layers) on torchvision's VGG16 trunk from the weights resolver;
  close to the NVlabs file, not equal; `standin: random` gives a seeded random trunk (tests, offline demo).

Both offer `features(images)` (differentiable, images in [-1, 1] N x 3 x H x W -> N x F, squared difference
summed = LPIPS) and a no-grad `__call__(img0, img1) -> [N]` distance.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from lead_hsr import weights
from lead_hsr.errors import InputError

LPIPS_NET = "vgg"  # LPIPS-VGG16 (lpips package v0.1 linear layers), as StyleGAN's vgg16.pt LPIPS
LPIPS_DISTANCES = ("nvlabs-vgg16", "lpips-vgg")  # the names a config / command line gives; lpips-vgg when not given
LPIPS_MAX_RESOLUTION = 256  # StyleGAN2-ADA (PPL, projector.py) area-downsamples larger images to 256: VGG saw 224


def downsample_for_lpips(images: torch.Tensor) -> torch.Tensor:
    """Images larger than LPIPS_MAX_RESOLUTION area-downsampled to it, as StyleGAN2-ADA before VGG16."""
    if images.shape[-1] <= LPIPS_MAX_RESOLUTION:
        return images
    return F.interpolate(images, size=(LPIPS_MAX_RESOLUTION, LPIPS_MAX_RESOLUTION), mode="area")


class LPIPSDistance:
    """LPIPS-VGG16 between image batches in [-1, 1]; the VGG16 trunk comes from the weights resolver.

    lpips downloads torchvision's VGG16 itself unless pnet_rand=True, so the model is always built with a random
    trunk and then given the resolved trunk weights; the random trunk is kept only for the explicit stand-in.
    """

    def __init__(self, cache_dir: str | Path | None = None, standin: str | None = None,
                 device: str | torch.device = "cpu", seed: int = 0):
        import lpips

        choice = weights.choose(weights.PPL_DISTANCE_WEIGHTS["lpips-vgg"], cache_dir, standin)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # the random-trunk stand-in is reproducible
            self.model = lpips.LPIPS(net=LPIPS_NET, pnet_rand=True, verbose=False)
        if choice.path is not None:
            _load_vgg16_trunk(self.model.net, choice.path)
        self.model = self.model.to(device).eval().requires_grad_(False)
        self.device = torch.device(device)
        self.record = {"distance": f"lpips-{LPIPS_NET}", "network": "lpips package, torchvision VGG16 trunk",
                       **choice.record()}
        if choice.is_random:
            self.record["seed"] = seed

    @torch.no_grad()
    def __call__(self, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:
        return self.model(img0.to(self.device), img1.to(self.device)).flatten().float()

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """N x F features whose squared difference summed is the lpips value: per layer the unit-normalised
        activations times sqrt(linear weight / H W) (the linear layer is a non-negative 1x1 conv, then a spatial
        mean), flattened and concatenated: NVlabs' return_lpips form, so the target's features are computed once."""
        import lpips

        layers = self.model.net.forward(self.model.scaling_layer(images.to(self.device)))
        parts = []
        for layer, linear in zip(layers, self.model.lins):
            weight = linear.model[-1].weight.reshape(1, -1, 1, 1)  # [1, C, 1, 1] of the 1x1 conv to one channel
            scale = (weight.clamp(min=0) / (layer.shape[2] * layer.shape[3])).sqrt()
            parts.append((lpips.normalize_tensor(layer) * scale).flatten(1))
        return torch.cat(parts, dim=1)


class NVlabsLPIPSDistance:
    """LPIPS of NVlabs' TorchScript vgg16.pt, called as StyleGAN2-ADA's perceptual_path_length.py does: images
    scaled from [-1, 1] to [0, 255] (float, not quantised), `vgg16(img, resize_images=False, return_lpips=True)`
    gives unit-normalised, LPIPS-weighted features; distance = squared difference summed over features."""

    def __init__(self, cache_dir: str | Path | None = None, standin: str | None = None,
                 device: str | torch.device = "cpu"):
        name = weights.PPL_DISTANCE_WEIGHTS["nvlabs-vgg16"]
        choice = weights.choose(name, cache_dir, standin)
        self.model = weights.load_torchscript(choice, device)
        self.device = torch.device(device)
        self.record = {"distance": "lpips-nvlabs-vgg16", "network": f"NVlabs TorchScript "
                       f"{weights.spec(name).file_name}", **choice.record()}

    def features(self, images: torch.Tensor) -> torch.Tensor:
        x = (images.to(self.device).float() + 1) * (255 / 2)
        return self.model(x, resize_images=False, return_lpips=True)

    @torch.no_grad()
    def __call__(self, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:
        f0, f1 = self.features(torch.cat([img0, img1])).chunk(2)
        return (f0 - f1).square().sum(1).float()


def make_lpips_distance(name: str | None, cache_dir: str | Path | None = None, standin: str | None = None,
                        device: str | torch.device = "cpu", seed: int = 0, setting: str = "metrics.ppl.distance"):
    """The LPIPS distance `name` (None -> "lpips-vgg"); `setting` names where the value came from (errors)."""
    name = name or weights.DEFAULT_PPL_DISTANCE
    if name == "nvlabs-vgg16":
        return NVlabsLPIPSDistance(cache_dir, standin, device)
    if name == "lpips-vgg":
        return LPIPSDistance(cache_dir, standin, device, seed)
    raise InputError(f"unknown LPIPS distance {name!r}; expected one of {LPIPS_DISTANCES} (fix {setting})")


def _load_vgg16_trunk(trunk: torch.nn.Module, path: Path) -> None:
    """Copy torchvision VGG16 `features.<i>` weights into lpips' slices (its modules keep the index as name)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    for slice_module in (trunk.slice1, trunk.slice2, trunk.slice3, trunk.slice4, trunk.slice5):
        for index, layer in slice_module.named_children():
            if isinstance(layer, torch.nn.Conv2d):
                layer.weight.data.copy_(state[f"features.{index}.weight"])
                layer.bias.data.copy_(state[f"features.{index}.bias"])
