"""Frozen feature extractors for HSR, built with timm, returning four feature maps ordered like the G levels
(r/32, r/16, r/8, r/4).

Facts (thesis section 4.3.1 and Table 4.1; DESIGN section 6): ViTs give the outputs of blocks 12, 9, 6, 3 (1-based)
after the final LayerNorm with the CLS token dropped; ResNets give layer4, layer3, layer2, layer1. The generated image
(in [-1, 1]) goes to [0, 1], is resized to the extractor input size (224 in the paper) with area interpolation and
normalised. Weights come from the local cache via `lead_hsr.weights.resolve`; stand-ins are explicit:
"random" (random init) or "state_dict:<path>" (e.g. the LEAD stage-1 ResNet trained by this pipeline).

Where the official code (val-iisc/HSR training/load_fe.py) differs, the default is the official choice:
- `final_norm` (ViTs): its DINO wrapper takes `get_intermediate_layers(x, n=12)` of DINO's ViT, which applies the
  final LayerNorm to every block output; its DeiT wrapper runs the blocks itself and applies no norm. None (default)
  = that choice per extractor (vit_dino / vit_random: True, deit: False).
- `normalize`: CLIP mean with ImageNet std for every extractor (load_fe.py).
- `precision`: "float32": the extractor runs in float32 even inside an autocast region (the official code has no
  autocast); "autocast": in the caller's autocast dtype.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from lead_hsr.errors import InputError
from lead_hsr.train.device import full_precision, outside_autocast
from lead_hsr.weights import HSR_EXTRACTOR_WEIGHTS

# name -> (default timm architecture, kind, weight name in the lead_hsr.weights registry or None); the weight
# names live in lead_hsr.weights.HSR_EXTRACTOR_WEIGHTS (the DAG reads them there without importing torch)
_ARCHS = {
    "vit_dino": ("vit_base_patch16_224.dino", "vit"),
    "deit": ("deit_base_patch16_224.fb_in1k", "vit"),
    "resnet50": ("resnet50.tv_in1k", "resnet"),
    "resnet50_dino": ("resnet50", "resnet"),
    "vit_random": ("vit_base_patch16_224", "vit"),  # random init by definition (Table 4.1 baseline)
}
EXTRACTORS: dict[str, tuple[str, str, str | None]] = {
    name: (*arch, HSR_EXTRACTOR_WEIGHTS[name]) for name, arch in _ARCHS.items()}
PAPER_INPUT_SIZE = 224          # thesis 4.3.1: images resized to 224x224 before the extractor
VIT_BLOCKS = (12, 9, 6, 3)      # thesis 4.3.1: 1-based ViT blocks for G levels r/32, r/16, r/8, r/4
RESNET_STAGES = (4, 3, 2, 1)    # DESIGN 6: layer4/3/2/1 for G levels r/32, r/16, r/8, r/4
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)   # official HSR code (load_fe.py): CLIP mean with ImageNet std
NORMALIZATIONS = {
    "clip_mean_imagenet_std": (CLIP_MEAN, IMAGENET_STD),
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
}
WEIGHT_MODES = ("pretrained", "random", "state_dict:<path>")
PRECISIONS = ("float32", "autocast")
OFFICIAL_FINAL_NORM = {"vit_dino": True, "deit": False, "vit_random": True}   # load_fe.py DINO / DeiT wrappers


@dataclass
class ExtractorSpec:
    """Everything that defines an extractor; recorded in options.json of every run."""
    name: str = "vit_dino"
    weights: str = "pretrained"            # "pretrained" | "random" | "state_dict:<path>"
    arch: str | None = None                # timm architecture override (demo: e.g. "vit_tiny_patch16_224")
    input_size: int = PAPER_INPUT_SIZE
    normalize: str = "clip_mean_imagenet_std"
    vit_blocks: tuple = field(default_factory=lambda: VIT_BLOCKS)
    final_norm: bool | None = None         # ViTs: final LayerNorm on the tapped blocks; None = official choice
    precision: str = "float32"             # "float32" (official) | "autocast"

    def __post_init__(self):
        if self.name not in EXTRACTORS:
            raise InputError(f"unknown HSR extractor {self.name!r}; expected one of {sorted(EXTRACTORS)}")
        if self.normalize not in NORMALIZATIONS:
            raise InputError(f"unknown HSR normalisation {self.normalize!r}; expected one of {sorted(NORMALIZATIONS)}")
        if not (self.weights in ("pretrained", "random") or self.weights.startswith("state_dict:")):
            raise InputError(f"HSR extractor weights {self.weights!r}: expected one of {WEIGHT_MODES}")
        if self.precision not in PRECISIONS:
            raise InputError(f"unknown HSR extractor precision {self.precision!r}; expected one of {PRECISIONS}")
        if self.name == "vit_random" and self.weights == "pretrained":
            self.weights = "random"
        if self.kind != "vit":
            self.final_norm = None             # ResNets have no final LayerNorm: recorded as not applicable
        elif self.final_norm is None:
            self.final_norm = OFFICIAL_FINAL_NORM[self.name]
        else:
            self.final_norm = bool(self.final_norm)
        self.vit_blocks = tuple(int(b) for b in self.vit_blocks)

    @property
    def timm_name(self) -> str:
        return self.arch or EXTRACTORS[self.name][0]

    @property
    def kind(self) -> str:
        return EXTRACTORS[self.name][1]

    def to_dict(self) -> dict:
        return dict(asdict(self), vit_blocks=list(self.vit_blocks), timm_name=self.timm_name)


def _create(spec: ExtractorSpec, pretrained_file: Path | None = None) -> nn.Module:
    import timm
    os.environ.setdefault("HF_HUB_OFFLINE", "1")   # never wait ~45 s on hub retries; weights are local
    kwargs = dict(img_size=spec.input_size) if spec.kind == "vit" else {}
    if pretrained_file is not None:
        kwargs.update(pretrained=True, pretrained_cfg_overlay=dict(file=str(pretrained_file)))
    return timm.create_model(spec.timm_name, num_classes=0, **kwargs)


def _load_state_dict(model: nn.Module, path: Path) -> None:
    """Load a (torchvision/timm-style) backbone state dict; classifier keys may be absent, nothing else."""
    if not path.is_file():
        raise InputError(f"{path}: HSR extractor state dict not found; expected a torch state dict file "
                         "(e.g. the LEAD stage-1 network written by this pipeline)")
    sd = torch.load(path, map_location="cpu", weights_only=True)
    sd = sd.get("state_dict", sd) if isinstance(sd, dict) else sd
    for prefix in ("module.", "backbone.", "encoder."):
        if all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items()}
    missing, _unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.startswith(("fc.", "head."))]
    if missing:
        raise InputError(f"{path}: state dict does not fit architecture {type(model).__name__}: missing "
                         f"{missing[:5]}...; pass the matching architecture with the 'arch' option")


def _load_random(spec: ExtractorSpec, seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _create(spec)


def build_extractor_model(spec: ExtractorSpec, cache_dir: Path | None, seed: int = 0) -> tuple[nn.Module, dict]:
    """(model, record): record says which weights were really used; it goes into options.json and results."""
    weight_name = EXTRACTORS[spec.name][2]
    if spec.weights == "random":
        return _load_random(spec, seed), {"weight": weight_name, "source": "standin:random", "path": None}
    if spec.weights.startswith("state_dict:"):
        path = Path(spec.weights.split(":", 1)[1])
        model = _load_random(spec, seed)
        _load_state_dict(model, path)
        return model, {"weight": weight_name, "source": "standin:file", "path": str(path)}
    from lead_hsr.weights import resolve   # raises InputError naming the file and the fetch command
    path = Path(resolve(weight_name, cache_dir))
    if spec.kind == "resnet":             # torchvision-style file; checked key by key (DINO's has no fc)
        model = _create(spec)
        _load_state_dict(model, path)
    else:
        model = _create(spec, pretrained_file=path)
    return model, {"weight": weight_name, "source": "pretrained", "path": str(path)}


class FeatureExtractor(nn.Module):
    """Frozen network: image in [-1, 1] -> [features at level r/32, r/16, r/8, r/4] as NCHW maps."""

    def __init__(self, spec: ExtractorSpec, cache_dir: Path | None = None, seed: int = 0, model=None):
        super().__init__()
        self.spec = spec
        if model is None:
            model, self.record = build_extractor_model(spec, cache_dir, seed)
        else:
            self.record = {"weight": None, "source": "given", "path": None}
        self.model = model
        self.model.eval().requires_grad_(False)
        mean, std = NORMALIZATIONS[spec.normalize]
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        if spec.kind == "vit":
            depth = len(self.model.blocks)
            if max(spec.vit_blocks) > depth or min(spec.vit_blocks) < 1:
                raise InputError(f"HSR vit_blocks {spec.vit_blocks} out of range for {spec.timm_name} "
                                 f"(depth {depth}); fix the 'vit_blocks' option")
            self.indices = [b - 1 for b in spec.vit_blocks]
        else:
            self.indices = list(RESNET_STAGES)

    def train(self, mode: bool = True):
        super().train(mode)
        self.model.eval()   # frozen: BatchNorm statistics and dropout never change
        return self

    def feature_dims(self) -> list[int]:
        if self.spec.kind == "vit":
            return [self.model.embed_dim] * 4
        channels = [info["num_chs"] for info in self.model.feature_info]   # stem, layer1 .. layer4
        return [channels[i] for i in self.indices]

    def preprocess(self, img: torch.Tensor) -> torch.Tensor:
        x = (full_precision(img) + 1) / 2
        if x.shape[-1] != self.spec.input_size:
            x = F.interpolate(x, size=(self.spec.input_size,) * 2, mode="area")
        return (x - self.mean) / self.std

    def forward(self, img: torch.Tensor) -> list[torch.Tensor]:
        if self.spec.precision == "float32":
            with outside_autocast(img.device.type):
                return self._forward(img)
        return self._forward(img)

    def _forward(self, img: torch.Tensor) -> list[torch.Tensor]:
        x = self.preprocess(img)
        if self.spec.kind == "vit":
            # timm returns the requested blocks in depth order; `norm=True` applies the final LayerNorm and
            # prefix (CLS) tokens are dropped; reorder to our level order.
            feats = self.model.forward_intermediates(x, indices=sorted(self.indices), norm=self.spec.final_norm,
                                                     output_fmt="NCHW", intermediates_only=True)
            by_index = dict(zip(sorted(self.indices), feats))
        else:
            feats = self.model.forward_intermediates(x, indices=sorted(self.indices), intermediates_only=True)
            by_index = dict(zip(sorted(self.indices), feats))
        return [by_index[i] for i in self.indices]


def extractor_feature_dims(spec: ExtractorSpec) -> list[int]:
    """Feature widths per level without loading weights (built on the meta device)."""
    with torch.device("meta"):
        model = _create(spec)
    return FeatureExtractor(spec, model=model).feature_dims()
