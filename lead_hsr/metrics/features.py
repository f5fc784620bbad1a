"""Feature extractors for FID / precision-recall / Mahalanobis, and the cached real-set features.

Every extractor takes uint8 images `N x 3 x H x W` (generated images are quantised first, DESIGN §7) and returns
float32 features `N x D`. Each carries a `record` (extractor name + weight source) that goes into every result,
so a number computed with a stand-in can never pass for one computed with the published network.

Kinds:
- "nvlabs-inception": NVlabs' TorchScript `inception-2015-12-05.pt` (2048-d pool3), what the StyleGAN2-ADA / HSR
  papers' FIDs used (the paper configuration's default);
- "nvlabs-vgg16": NVlabs' TorchScript `vgg16.pt` (4096-d fc2), the papers' precision/recall network (default);
- "inception": torch-fidelity's Inception-v3 pool3 (2048-d), TF 2015-12-05 weights from the resolver;
- "vgg16": torch-fidelity's VGG16 fc2 (4096-d), torchvision ImageNet weights from the resolver;
- "random-cnn": a small, seeded, randomly initialised CNN at the images' own resolution, for offline/demo
  runs (cheap on CPU; only comparable with itself).
The torch-fidelity kinds also accept the "random" stand-in (same architecture, random init; benchmarks only); the
NVlabs kinds accept a TorchScript file with the same call signature as a stand-in (tests), never "random".
"""
from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from lead_hsr import weights
from lead_hsr.atomic import atomic_save_npy, atomic_write_json
from lead_hsr.errors import InputError
from lead_hsr.gan.networks import quantise_to_uint8  # noqa: F401 (the metric code's quantisation; its home is gan)
from lead_hsr.train.rng import step_generator

INCEPTION_FEATURE = "2048"  # torch-fidelity's name for Inception-v3 pool3, the FID layer (StyleGAN, TTUR)
VGG16_FEATURE = "fc2"  # Kynkaanniemi et al. 2019: VGG16 fc2 (pre-ReLU in torch-fidelity's and NVIDIA's code)
RANDOM_CNN_WIDTHS = (32, 64, 128, 256)  # stand-in CNN: 4 stride-2 stages, output = 2 * 256 (mean + std pooled)
DEFAULT_BATCH = 64
# NVlabs' TorchScript metric networks: kind -> (weights registry name, the layer its return_features gives).
NVLABS_EXTRACTORS = {kind: (weights.METRIC_EXTRACTOR_WEIGHTS[kind], layer)
                     for kind, layer in (("nvlabs-inception", "pool3"), ("nvlabs-vgg16", "fc2"))}


@dataclass
class Extractor:
    name: str
    network: Callable[[torch.Tensor], torch.Tensor]
    record: dict
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @torch.no_grad()
    def __call__(self, images_uint8: torch.Tensor) -> torch.Tensor:
        if images_uint8.dtype != torch.uint8 or images_uint8.ndim != 4 or images_uint8.shape[1] != 3:
            raise ValueError(f"{self.name}: expected uint8 N x 3 x H x W, got {images_uint8.dtype} "
                             f"{tuple(images_uint8.shape)}")
        return self.network(images_uint8.to(self.device)).float().cpu()

    def extract_nhwc(self, images: np.ndarray, batch_size: int = DEFAULT_BATCH) -> np.ndarray:
        """Features of a uint8 N x H x W x 3 array (a prepared store's memmap works: read batch by batch)."""
        chunks = []
        for start in range(0, len(images), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size]))
            chunks.append(self(batch.permute(0, 3, 1, 2).contiguous()).numpy())  # NCHW memory: faster convs
        return np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)


def _random_inception_weights() -> io.BytesIO:
    """State dict of a randomly initialised torch-fidelity Inception-v3 (the "random" stand-in, benchmarks).

    torch-fidelity always loads a state dict in its constructor (downloading when given no path), so the model
    is built once with loading skipped; convolutions get He-normal init so activations keep their scale through
    the 90-odd layers (the default init shrinks pool3 features to ~1e-8).
    """
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class _KeepInit(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, *args, **kwargs):
            return None  # keep the fresh init

    empty = io.BytesIO()
    torch.save({}, empty)
    empty.seek(0)
    model = _KeepInit("random-init", [INCEPTION_FEATURE], feature_extractor_weights_path=empty)
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    return _serialise(model.state_dict())


def _random_vgg16_weights() -> io.BytesIO:
    """torchvision's own VGG16 init (He-normal convs), in the file format torch-fidelity loads."""
    import torchvision

    return _serialise(torchvision.models.vgg16().state_dict())


def _serialise(state_dict: dict) -> io.BytesIO:
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return buffer


def _torch_fidelity_extractor(kind: str, choice: weights.WeightChoice, device, seed: int) -> Extractor:
    if kind == "inception":
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3 as cls
        feature = INCEPTION_FEATURE
    else:
        from torch_fidelity.feature_extractor_vgg16 import FeatureExtractorVGG16 as cls
        feature = VGG16_FEATURE
    if choice.is_random:
        with torch.random.fork_rng(devices=[]):  # seeded init without disturbing the caller's RNG
            torch.manual_seed(seed)
            source = _random_inception_weights() if kind == "inception" else _random_vgg16_weights()
    else:
        source = str(choice.path)
    model = cls(f"{kind}-{feature}", [feature], feature_extractor_weights_path=source).to(device).eval()
    record = {"extractor": kind, "layer": feature, "network": f"torch-fidelity {cls.__name__}", **choice.record()}
    if choice.is_random:
        record["seed"] = seed
    suffix = "" if choice.standin is None else f"-{choice.standin}"  # stand-ins never share a cache name
    return Extractor(f"{kind}-{feature}{suffix}", lambda x: model(x)[0], record, torch.device(device))


class RandomCNN(torch.nn.Module):
    """Seeded random conv net (He init, no training): a cheap, explicitly named stand-in feature extractor.

    Pools each channel's mean and standard deviation over space, so it sees both content and texture statistics.
    """

    def __init__(self, seed: int, widths=RANDOM_CNN_WIDTHS):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        layers, channels = [], 3
        for width in widths:
            conv = torch.nn.Conv2d(channels, width, 3, stride=2, padding=1)
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator)
                                  * math.sqrt(2.0 / (channels * 9)))
                conv.bias.zero_()
            layers += [conv, torch.nn.ReLU()]
            channels = width
        self.body = torch.nn.Sequential(*layers).requires_grad_(False).eval()

    def forward(self, images_uint8: torch.Tensor) -> torch.Tensor:
        x = images_uint8.float() / 127.5 - 1
        features = self.body(x).flatten(2)
        return torch.cat([features.mean(2), features.std(2, unbiased=False)], dim=1)


def _nvlabs_extractor(kind: str, cache_dir, standin, device) -> Extractor:
    weight_name, layer = NVLABS_EXTRACTORS[kind]
    choice = weights.choose(weight_name, cache_dir, standin)
    model = weights.load_torchscript(choice, device)
    record = {"extractor": kind, "layer": layer,
              "network": f"NVlabs TorchScript {weights.spec(weight_name).file_name}", **choice.record()}
    suffix = "" if choice.standin is None else f"-{choice.standin}"
    # NVlabs' detectors take uint8 N x 3 x H x W and resize internally (metric_utils: detector(images, **kwargs)).
    return Extractor(f"{kind}{suffix}", lambda x: model(x, return_features=True), record, torch.device(device))


def make_extractor(kind: str, cache_dir: str | Path | None = None, standin: str | None = None,
                   device: str | torch.device = "cpu", seed: int = 0) -> Extractor:
    """The named feature extractor; pretrained weights come from `weights` (no download), stand-ins only if asked."""
    if kind in NVLABS_EXTRACTORS:
        return _nvlabs_extractor(kind, cache_dir, standin, device)
    if kind in ("inception", "vgg16"):
        choice = weights.choose(weights.METRIC_EXTRACTOR_WEIGHTS[kind], cache_dir, standin)
        return _torch_fidelity_extractor(kind, choice, device, seed)
    if kind == "random-cnn":
        network = RandomCNN(seed).to(device)
        return Extractor(f"random-cnn-s{seed}", network,
                         {"extractor": "random-cnn", "source": "standin:random", "seed": seed},
                         torch.device(device))
    raise InputError(f"unknown feature extractor {kind!r}; expected one of {sorted(NVLABS_EXTRACTORS)}, 'inception', "
                     "'vgg16' or 'random-cnn' "
                     f"(fix the metrics.extractor value in the config)")


def real_features(images: np.ndarray, dataset_key: str, extractor: Extractor, cache_dir: str | Path,
                  max_items: int | None = None, batch_size: int = DEFAULT_BATCH,
                  source_id: str | None = None) -> np.ndarray:
    """Features of a real image set (uint8 N x H x W x 3), cached as `<dataset_key>~<extractor>.npy`.

    A JSON sidecar records the extractor, the image count and `source_id` (pass the store manifest's
    `sources_sha256`); the cache is recomputed when any of them changes. `max_items` takes the first items
    (StyleGAN's max_real); None = the full set.
    """
    count = len(images) if max_items is None else min(max_items, len(images))
    cache = Path(cache_dir) / f"{dataset_key}~{extractor.name}.npy"
    sidecar = cache.with_suffix(".json")
    expected = {"dataset": dataset_key, "count": count, "source": source_id, "extractor": extractor.record}
    if cache.is_file() and sidecar.is_file() and json.loads(sidecar.read_text()) == expected:
        return np.load(cache)
    features = extractor.extract_nhwc(images[:count], batch_size)
    cache.parent.mkdir(parents=True, exist_ok=True)
    atomic_save_npy(features, cache)
    atomic_write_json(expected, sidecar)
    return features


NOISE_STREAM = 1  # step_generator stream of the generated images' per-image noise (the z come from `seed` itself)


def latent_batches(z_dim: int, num: int, batch_size: int, seed: int) -> Iterable[torch.Tensor]:
    """Seeded standard-normal z in batches; the same (seed, num, batch_size) always gives the same z."""
    generator = torch.Generator().manual_seed(seed)
    for start in range(0, num, batch_size):
        yield torch.randn([min(batch_size, num - start), z_dim], generator=generator)


@torch.no_grad()
def generated_features(G, extractor: Extractor, num: int, batch_size: int = 32, seed: int = 0,
                       device: str | torch.device = "cpu", noise_mode: str = "random",
                       return_latents: bool = False):
    """Features of `num` generated images: z ~ N(0, I) -> G.mapping -> G.synthesis -> uint8 -> extractor.

    noise_mode="random" matches StyleGAN2-ADA's metric code (G called with default kwargs), its per-image noise
    drawn from the global RNG seeded by `seed` (the official code draws from whatever state that RNG is in); no
    truncation.
    Unconditional generators get c = zeros [N, c_dim] (c_dim = 0 by default). With return_latents, also the
    z of every image (so figures can redraw e.g. the worst images).
    """
    chunks, latents = [], []
    device = torch.device(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        # noise_mode="random" draws each image's noise from the global RNG: seed it (on its own stream, not the
        # z stream) so a metric is a function of (network, seed), and leave the caller's RNG state as it was
        torch.manual_seed(step_generator(seed, 0, NOISE_STREAM).initial_seed())
        for z in latent_batches(G.z_dim, num, batch_size, seed):
            latents.append(z)
            z = z.to(device)
            c = torch.zeros([len(z), getattr(G, "c_dim", 0)], device=device)
            images = G.synthesis(G.mapping(z, c), noise_mode=noise_mode)
            if images.shape[1] == 1:
                images = images.repeat(1, 3, 1, 1)
            chunks.append(extractor(quantise_to_uint8(images)).numpy())
    output = np.concatenate(chunks)
    return (output, torch.cat(latents).numpy()) if return_latents else output
