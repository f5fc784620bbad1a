"""One weights format for every dense feature extractor of LEAD, and the one feature-extraction function.

A weights file (written atomically by stage1/stage2, loaded with torch.load(weights_only=True)) is a dict:
  {"format": FORMAT, "kind": "hypercolumn" | "fpn" | "cl" | "nmf", "arch": str,
   "config": {...kind-specific ints/strs...}, "state_dict": {...}}
- hypercolumn: a stage-1 backbone (BYOL, MoCo or random init); features = its hypercolumns (960/3840-d);
- fpn: a stage-2 DenseNet (encoder + FPN + head, trained with the LEAD or the CL objective); features = its
  C-d output upsampled;
- cl: frozen stage-1 backbone + CLProjector applied to its hypercolumns (config `softargmax_mul`, default 7);
- nmf: frozen stage-1 backbone + NMF codes of its hypercolumns.
Evaluation (regressor, matching) only calls `load_dense_model` and `extract_features`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lead_hsr.data.geometry import normalize_images
from lead_hsr.errors import InputError
from lead_hsr.lead.backbones import build_backbone
from lead_hsr.lead.dense_objectives import CL_SOFTARGMAX_MUL, CLProjector
from lead_hsr.lead.fpn import DenseNet
from lead_hsr.lead.hypercolumns import hypercolumns
from lead_hsr.lead.nmf import NMFProjector
from lead_hsr.train import atomic_save_torch
from lead_hsr.train.atomic import load_torch_file

FORMAT = "lead_hsr.dense_features/1"
KINDS = ("hypercolumn", "fpn", "cl", "nmf")


class DenseFeatureModel(nn.Module):
    """Normalised image batch -> B x dim x size x size dense features, for every kind of LEAD extractor."""

    def __init__(self, kind: str, arch: str, config: dict, backbone_or_net: nn.Module,
                 projector: nn.Module | None = None):
        super().__init__()
        self.kind, self.arch, self.config = kind, arch, dict(config)
        self.net = backbone_or_net
        self.projector = projector

    @property
    def dim(self) -> int:
        if self.kind == "hypercolumn":
            return sum(self.net.stage_dims)
        return self.projector.dim if self.projector is not None else self.net.dim

    def forward(self, x: torch.Tensor, size: int) -> torch.Tensor:
        if self.kind == "fpn":
            return _resize(self.net(x), size)
        stages = self.net(x)
        norm = self.config.get("hypercolumn_norm", "none")
        if self.kind == "hypercolumn":
            return hypercolumns(stages, size, norm)
        if self.kind == "cl":  # CL projects hypercolumns at the output size (96x96 in their matching)
            return self.projector(hypercolumns(stages, size, norm))
        # nmf: codes at a fixed grid (NMF solves per vector; 96x96 x 3840-d would be slow), then upsampled
        code_size = int(self.config["code_size"])
        return _resize(self.projector(hypercolumns(stages, code_size, norm)), size)


def _resize(feat: torch.Tensor, size: int) -> torch.Tensor:
    if feat.shape[-2:] == (size, size):
        return feat
    return F.interpolate(feat, size=(size, size), mode="bilinear", align_corners=False)


def save_dense_weights(path, kind: str, arch: str, config: dict, model: DenseFeatureModel | nn.Module) -> Path:
    payload = {"format": FORMAT, "kind": kind, "arch": arch, "config": dict(config),
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    return atomic_save_torch(payload, path)


def build_dense_model(kind: str, arch: str, config: dict, state_dict: dict | None = None) -> DenseFeatureModel:
    """The empty (or loaded) model of a kind; `config` carries the sizes needed to rebuild it."""
    if kind not in KINDS:
        raise InputError(f"unknown dense model kind {kind!r}; expected one of {KINDS}.")
    if kind == "fpn":
        net = DenseNet(build_backbone(arch), int(config["dim"]), str(config["proj_head"]), int(config["fpn_dim"]))
        model = DenseFeatureModel(kind, arch, config, net)
    else:
        backbone = build_backbone(arch)
        projector = None
        if kind == "cl":
            # files written before the multiplier was a setting used 7 (CL_SOFTARGMAX_MUL) at every width
            projector = CLProjector(sum(backbone.stage_dims), int(config["dim"]),
                                    float(config.get("softargmax_mul", CL_SOFTARGMAX_MUL)))
        elif kind == "nmf":
            projector = NMFProjector(torch.zeros(int(config["dim"]), sum(backbone.stage_dims)))
        model = DenseFeatureModel(kind, arch, config, backbone, projector)
    if state_dict is not None:
        model.load_state_dict(state_dict, strict=True)
    return model


def read_dense_payload(weights_path) -> dict:
    """The saved dict of a stage-1/stage-2 weights file (format checked; InputError naming the file otherwise)."""
    path = Path(weights_path)
    if not path.exists():
        raise InputError(f"{path}: dense-feature weights not found; run the LEAD stage-1/stage-2 rule that "
                         "writes it (or check the path in the config).")
    payload = load_torch_file(path, "LEAD stage-1/stage-2 weights", "delete it and rerun the rule that writes it.")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(f"{path}: expected a {FORMAT} weights file written by lead_hsr.lead.stage1/stage2; "
                         "rerun that rule.")
    return payload


def dense_model_from_payload(payload: dict, where) -> DenseFeatureModel:
    """Rebuild the model of a `read_dense_payload` dict (CPU, eval mode); InputError naming `where`."""
    try:
        model = build_dense_model(payload["kind"], payload["arch"], payload["config"], payload["state_dict"])
    except (InputError, KeyError, RuntimeError, TypeError) as err:
        raise InputError(f"{where}: cannot rebuild the saved {payload.get('kind')!r} model ({err}); it was "
                         "written by an incompatible version: rerun the rule that writes it.") from err
    return model.eval()


def load_dense_model(weights_path, device: str | torch.device = "cpu") -> DenseFeatureModel:
    """Rebuild the feature extractor saved by stage 1 or stage 2 (eval mode, on `device`)."""
    return dense_model_from_payload(read_dense_payload(weights_path), Path(weights_path)).to(device).eval()


@torch.no_grad()
def extract_features(model: DenseFeatureModel, images, size: int, batch: int = 64,
                     device: str | torch.device | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Dense features (N x dim x size x size, CPU, `dtype`) of uint8 N x H x W x 3 images (numpy or torch).

    Images are the network inputs already (e.g. the 96x96 central crop); they are normalised here with the
    protocol mean/std. The model runs in eval mode (frozen BatchNorm statistics).
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model = model.to(device).eval()
    images = images if isinstance(images, torch.Tensor) else np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise InputError(f"extract_features: expected uint8 N x H x W x 3 images, got shape {tuple(images.shape)}.")
    # channels-last like the hypercolumns (copying those into the default layout would cost a transpose)
    out = torch.empty(len(images), model.dim, size, size, dtype=dtype, memory_format=torch.channels_last)
    for start in range(0, len(images), batch):
        chunk = images[start:start + batch]
        x = normalize_images(chunk.cpu().numpy() if isinstance(chunk, torch.Tensor) else np.array(chunk), device)
        out[start:start + len(chunk)] = model(x, size).to("cpu", dtype)
    return out


class FrozenFeatures:
    """Descriptors of a frozen extractor, computed when indexed instead of held in memory.

    Behaves like an N x dim x size x size tensor for the regressor (`len`, `shape`, `ndim`, `[rows]`): at paper
    scale the cached alternative does not fit (MAFL train, 3840-d hypercolumns at 48x48: ~670 GB in float32), so
    each batch is extracted when the regressor asks for it, as the DVE/CL evaluation code does. The extractor is
    frozen and in eval mode, so the values equal the cached ones.
    """

    ndim = 4

    def __init__(self, model: DenseFeatureModel, images: np.ndarray, size: int,
                 device: str | torch.device | None = None):
        self.model, self.images, self.size, self.device = model, images, int(size), device
        self.shape = torch.Size((len(images), int(model.dim), self.size, self.size))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows) -> torch.Tensor:
        rows = rows.cpu().numpy() if isinstance(rows, torch.Tensor) else rows
        return extract_features(self.model, np.asarray(self.images[rows]), self.size, device=self.device)

    def subset(self, rows) -> "FrozenFeatures":
        """The same lazy descriptors restricted to `rows` (nothing is extracted yet)."""
        return FrozenFeatures(self.model, self.images[np.asarray(rows)], self.size, self.device)


def descriptor_bytes(model: DenseFeatureModel, count: int, size: int) -> int:
    """Memory of `count` float32 descriptor maps of `model` at `size` x `size`."""
    return 4 * count * int(model.dim) * size * size


def dense_descriptors(model: DenseFeatureModel, images: np.ndarray, size: int, cache_bytes: float,
                      device: str | torch.device | None = None) -> torch.Tensor | FrozenFeatures:
    """Descriptors of `images`: extracted once if they fit in `cache_bytes`, otherwise `FrozenFeatures`."""
    if descriptor_bytes(model, len(images), size) <= cache_bytes:
        return extract_features(model, images, size, device=device)
    return FrozenFeatures(model, images, size, device)


def select_rows(feats: torch.Tensor | FrozenFeatures, rows: np.ndarray) -> torch.Tensor | FrozenFeatures:
    """feats[rows] for cached descriptors; a lazy subset (nothing extracted) for `FrozenFeatures`."""
    return feats.subset(rows) if isinstance(feats, FrozenFeatures) else feats[rows]
