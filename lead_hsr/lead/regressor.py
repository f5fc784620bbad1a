"""Frozen-feature landmark regressor (DVE `IntermediateKeypointPredictor`, as used by ContrastLandmark and LEAD).

    descriptors (N x C x h x w, frozen, cached)
      -> 1x1 conv without bias, C -> K * 50 "intermediate" heatmaps
      -> spatial softmax of 100 * raw dot products, soft-argmax on a [-1, 1] grid -> K x 50 (x, y) points
      -> per-landmark bias-free Linear(100 -> 2)  -> K landmarks in [-1, 1]
    loss = smooth_l1(10 * pred, 10 * gt) (or "l2": mse of the same; the thesis text says L2).

Coordinates (`coordinates`, a named setting):
- "dve" (default: the DVE/CL code that produced the published numbers): landmark pixel x of an S-px crop is
  u = 2x / (S - 1) - 1 (their kp_normalize) and the soft-argmax grid is torch.linspace(-1, 1, w) over the
  feature map (cell i at 2i / (w - 1) - 1).
- "centres": align_corners=False both ways, u = (2x + 1) / S - 1 and cell i at (2i + 1) / w - 1: the same
  physical point for bilinearly upsampled (align_corners=False) features, whatever h, w and S are.
The two differ by a per-axis scale (S (w - 1) / (w (S - 1)) between the grids, 0.99 for 48 cells of 96 px;
S / (S - 1) between the targets) that the bias-free Linear(100 -> 2) absorbs exactly, so the model family is the
same; what differs is where the smooth-L1 kink falls (1% in u) and the init. IOD errors are ratios of distances
in one convention, unaffected. bench/compare_landmarks.py runs DVE's IntermediateKeypointPredictor beside both.
Checkpoints are never selected on test data (both baselines keep the epoch with the best test error; DESIGN §5):
the regressor trains for a fixed number of steps.

Precision (`precision`: none | bf16 | fp16): autocast covers the 1x1 projection (the one large product, C x
K*50 per cell); the x100 soft-argmax, the Linear and the loss run in full precision. fp16 uses a GradScaler
(checkpointed). The paper config keeps "none": a bf16 projection rounds each dot product by ~2^-9 of its size,
which the x100 multiplier turns into softmax-logit errors of O(1) (bench/compare_landmarks.py, bench/README.md).
"""
from __future__ import annotations

import contextlib
import json
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from lead_hsr.errors import InputError
from lead_hsr.lead import tps
from lead_hsr.train import (RunConfig, atomic_save_torch, autocast_for, batch_indices, grad_scaler_for,
                            seed_everything, step_generator, train)
from lead_hsr.train.atomic import load_torch_file
from lead_hsr.train.device import AUTOCAST_DTYPES

N_INTERMEDIATE = 50       # DVE/CL keypoint configs: num_intermediate_points 50 (thesis: "50 filters")
SOFTARGMAX_MUL = 100.0    # DVE keypoint configs: softargmax_mul 100.0 on raw (unnormalised) dot products
LOSS_SCALE = 10.0         # DVE keypoint configs: regression_loss alpha 10 -> smooth_l1(10 * pred, 10 * gt)
LOSSES = ("smooth_l1", "l2")
COORDINATES = ("dve", "centres")  # see the module docstring; "dve" produced the published numbers
PRECISIONS = tuple(AUTOCAST_DTYPES)
LEARNING_RATE = 1e-3      # CL README eval_face.py: --learning_rate 0.001 (DVE configs: Adam lr 0.001)
WEIGHT_DECAY = 5e-4       # CL README eval_face.py: --weight_decay 0.0005 (DVE configs: 0.0005)
ADAM_BETAS = (0.5, 0.999)  # CL eval_face.py defaults: --beta1 0.5 --beta2 0.999 (with --adam)
BATCH_SIZE = 32           # CL README / DVE configs: batch size 32
# CL eval_face.py --cosine: CosineAnnealingLR with eta_min = lr * lr_decay_rate**3 * 0.1, lr_decay_rate 0.2.
COSINE_MIN_LR_FACTOR = 0.2 ** 3 * 0.1
FILTER_INIT_STD = 1.0     # DVE IntermediateKeypointPredictor: filters = torch.randn(...) (std 1)
FEWSHOT_LEARNING_RATE = 0.01   # CL README "limited annotations": --learning_rate 0.01 --TPS_aug
FEWSHOT_WEIGHT_DECAY = 0.05    # CL README "limited annotations": --weight_decay 0.05
# A fitted regressor as a file (every regression run writes one beside its metrics.json; a landmark model
# export carries it): torch.load(weights_only=True)-loadable plain dict.
REGRESSOR_FORMAT = "lead_hsr.landmark_regressor/1"


@dataclass(frozen=True)
class RegressorOptions:
    n_intermediate: int = N_INTERMEDIATE
    softargmax_mul: float = SOFTARGMAX_MUL
    loss: str = "smooth_l1"
    loss_scale: float = LOSS_SCALE
    lr: float = LEARNING_RATE
    weight_decay: float = WEIGHT_DECAY
    betas: tuple[float, float] = ADAM_BETAS
    batch_size: int = BATCH_SIZE
    cosine_schedule: bool = True
    tps_strength: tps.TpsStrength | None = None  # TPS augmentation of the cached descriptor maps
    # std of the 1x1 filters at init. With unit-length descriptor blocks, std 1 x softargmax 100 makes every
    # softmax nearly one-hot at init (slow to learn); a smaller value is a documented demo-scale knob.
    filter_init_std: float = FILTER_INIT_STD
    coordinates: str = "dve"   # [-1, 1] convention of targets and soft-argmax grid (module docstring)
    precision: str = "none"    # autocast of the 1x1 projection: none | bf16 | fp16 (module docstring)

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise InputError(f"regressor loss {self.loss!r}: expected one of {LOSSES}; fix the config value")
        if self.coordinates not in COORDINATES:
            raise InputError(f"regressor coordinates {self.coordinates!r}: expected one of {COORDINATES}; "
                             "fix the config value")
        if self.precision not in PRECISIONS:
            raise InputError(f"regressor precision {self.precision!r}: expected one of {PRECISIONS}; "
                             "fix the config value")
        if self.batch_size < 1 or self.n_intermediate < 1 or not self.filter_init_std > 0:
            raise InputError(f"regressor options: need batch_size >= 1, n_intermediate >= 1, filter_init_std > 0; "
                             f"got {self}")

    @classmethod
    def fewshot(cls, **overrides) -> "RegressorOptions":
        """Few-shot settings (CL README): lr 0.01, weight decay 0.05, TPS augmentation."""
        base = cls(lr=FEWSHOT_LEARNING_RATE, weight_decay=FEWSHOT_WEIGHT_DECAY, tps_strength=tps.FEWSHOT_STRENGTH)
        return replace(base, **overrides)

    def as_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))  # plain JSON types, for write_options_json


def _check_coordinates(coordinates: str) -> None:
    if coordinates not in COORDINATES:
        raise InputError(f"regressor coordinates {coordinates!r}: expected one of {COORDINATES}")


def pixels_to_unit(landmarks: torch.Tensor, image_size: int, coordinates: str) -> torch.Tensor:
    """Pixel (x, y) in an S x S crop -> [-1, 1]: "centres" u = (2x + 1) / S - 1 (align_corners=False),
    "dve" u = 2x / (S - 1) - 1 (DVE/CL kp_normalize)."""
    _check_coordinates(coordinates)
    if coordinates == "dve":
        return 2.0 * landmarks / (image_size - 1) - 1.0
    return (2.0 * landmarks + 1.0) / image_size - 1.0


def unit_to_pixels(points: torch.Tensor, image_size: int, coordinates: str) -> torch.Tensor:
    """Inverse of `pixels_to_unit`."""
    _check_coordinates(coordinates)
    if coordinates == "dve":
        return (points + 1.0) * (image_size - 1) / 2.0
    return ((points + 1.0) * image_size - 1.0) / 2.0


def cell_centres(size: int, coordinates: str, device=None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """[-1, 1] coordinates of `size` feature cells: their centres (align_corners=False), or for "dve"
    torch.linspace(-1, 1, size) (DVE's soft-argmax grid)."""
    _check_coordinates(coordinates)
    if coordinates == "dve":
        return torch.linspace(-1.0, 1.0, size, device=device, dtype=dtype)
    return (2.0 * torch.arange(size, device=device, dtype=dtype) + 1.0) / size - 1.0


class LandmarkRegressor(nn.Module):
    """Parameters: `project` (1x1 conv weight, K*I x C x 1 x 1; DVE inner_conv) and `combine` (K x 2 x 2I: the
    per-landmark Linear weights; DVE reg_conv, a grouped 1x1 conv of weight 2K x 2I x 1 x 1)."""

    def __init__(self, in_dim: int, n_landmarks: int, n_intermediate: int = N_INTERMEDIATE,
                 softargmax_mul: float = SOFTARGMAX_MUL, filter_init_std: float = FILTER_INIT_STD,
                 coordinates: str = "dve"):
        super().__init__()
        _check_coordinates(coordinates)
        self.n_landmarks, self.n_intermediate, self.softargmax_mul = n_landmarks, n_intermediate, softargmax_mul
        self.coordinates = coordinates
        self.project = nn.Conv2d(in_dim, n_landmarks * n_intermediate, kernel_size=1, bias=False)
        nn.init.normal_(self.project.weight, std=filter_init_std)
        # one bias-free Linear(2 * n_intermediate -> 2) per landmark, stored as K x 2 x (2 * n_intermediate)
        linear = [nn.Linear(2 * n_intermediate, 2, bias=False).weight.data for _ in range(n_landmarks)]
        self.combine = nn.Parameter(torch.stack(linear))

    def intermediate_points(self, feats: torch.Tensor) -> torch.Tensor:
        """N x K x n_intermediate x 2 soft-argmax points in [-1, 1].

        Descriptors are cast to the parameters' dtype (cached float16 maps -> float32; float64 models stay
        float64). Only the projection runs under a caller's autocast; everything after it in full precision."""
        n, _, height, width = feats.shape
        dtype = self.project.weight.dtype
        dots = self.project(feats.to(dtype))
        with _no_autocast(feats.device):
            logits = dots.to(dtype).flatten(2) * self.softargmax_mul             # N x (K*I) x (h*w)
            weights = logits.softmax(dim=2).view(n, -1, height, width)
            grid_x = cell_centres(width, self.coordinates, feats.device, dtype)
            grid_y = cell_centres(height, self.coordinates, feats.device, dtype)
            xs = (weights.sum(dim=2) * grid_x).sum(dim=2)  # marginal over rows
            ys = (weights.sum(dim=3) * grid_y).sum(dim=2)
            return torch.stack([xs, ys], dim=2).view(n, self.n_landmarks, self.n_intermediate, 2)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """N x C x h x w descriptors -> N x K x 2 landmarks in [-1, 1] (`self.coordinates`)."""
        points = self.intermediate_points(feats).flatten(2)                    # N x K x (2I): x0, y0, x1, ...
        with _no_autocast(feats.device):
            return torch.einsum("nkj,koj->nko", points, self.combine)


def regressor_payload(model: LandmarkRegressor, feature_size: int, image_size: int) -> dict:
    """A fitted regressor as plain data: what rebuilds it (`config`), its weights, and the descriptor grid
    (`feature_size`) and crop side (`image_size`) its predictions are in."""
    config = {"in_dim": int(model.project.in_channels), "n_landmarks": int(model.n_landmarks),
              "n_intermediate": int(model.n_intermediate), "softargmax_mul": float(model.softargmax_mul),
              "coordinates": model.coordinates}
    return {"format": REGRESSOR_FORMAT, "config": config, "feature_size": int(feature_size),
            "image_size": int(image_size),
            "state_dict": {k: v.detach().cpu().float() for k, v in model.state_dict().items()}}


def save_regressor(model: LandmarkRegressor, path, feature_size: int, image_size: int) -> Path:
    """Write `regressor_payload` atomically (the regression run's declared `regressor.pt`)."""
    return atomic_save_torch(regressor_payload(model, feature_size, image_size), path)


def regressor_from_payload(payload, where) -> tuple[LandmarkRegressor, int, int]:
    """(regressor in eval mode, feature_size, image_size) from `regressor_payload` data; InputError naming `where`
    for anything else."""
    if not isinstance(payload, dict) or payload.get("format") != REGRESSOR_FORMAT:
        raise InputError(f"{where}: expected a {REGRESSOR_FORMAT} regressor (written by a regression run of "
                         "lead_hsr.metrics.landmarks); rerun that regression job.")
    try:
        config = payload["config"]
        model = LandmarkRegressor(int(config["in_dim"]), int(config["n_landmarks"]), int(config["n_intermediate"]),
                                  float(config["softargmax_mul"]), coordinates=str(config["coordinates"]))
        model.load_state_dict(payload["state_dict"], strict=True)
        return model.eval(), int(payload["feature_size"]), int(payload["image_size"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise InputError(f"{where}: cannot rebuild the saved regressor ({err}); it was written by an incompatible "
                         "version: rerun the regression job that writes it.") from err


def load_regressor(path) -> tuple[LandmarkRegressor, int, int]:
    """`regressor_from_payload` of a `save_regressor` file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: regressor weights not found; every regression run writes them beside its "
                         "metrics.json: rerun it (`snakemake --forcerun <its metrics.json>`).")
    payload = load_torch_file(path, "a fitted landmark regressor", "rerun the regression job that writes it.")
    return regressor_from_payload(payload, path)


def _no_autocast(device: torch.device):
    if not torch.amp.is_autocast_available(device.type):
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, enabled=False)


def regression_loss(pred: torch.Tensor, target: torch.Tensor, kind: str = "smooth_l1",
                    scale: float = LOSS_SCALE) -> torch.Tensor:
    """Loss on [-1, 1] coordinates, both scaled by `scale`; absent (NaN) targets are left out."""
    present = torch.isfinite(target)
    pred, target = scale * pred[present], scale * target[present]
    if kind == "smooth_l1":
        return F.smooth_l1_loss(pred, target)
    if kind == "l2":
        return F.mse_loss(pred, target)
    raise InputError(f"regressor loss {kind!r}: expected one of {LOSSES}")


def _rows(feats, idx) -> torch.Tensor:
    """feats[idx] as a float32 tensor; feats may be a tensor or a (memory-mapped) numpy array."""
    if isinstance(feats, np.ndarray):
        index = idx.numpy() if isinstance(idx, torch.Tensor) else idx
        return torch.from_numpy(np.array(feats[index], dtype=np.float32))  # a copy: memmaps are read-only
    return feats[idx].float()


def _check_inputs(feats, landmarks: torch.Tensor) -> None:
    if feats.ndim != 4 or landmarks.ndim != 3 or landmarks.shape[2] != 2 or len(feats) != len(landmarks):
        raise ValueError(f"expected N x C x h x w features and N x K x 2 landmarks, got "
                         f"{tuple(feats.shape)} and {tuple(landmarks.shape)}")


def _augment(feats: torch.Tensor, unit_landmarks: torch.Tensor, strength: tps.TpsStrength,
             generator: torch.Generator, image_size: int, coordinates: str) -> tuple[torch.Tensor, torch.Tensor]:
    """TPS-warp descriptor maps and their [-1, 1] landmarks together (warps are resolution independent).

    The warp acts on the physical grid (align_corners=False: the maps' pixels), so "dve" landmarks go through
    crop pixels to "centres" and back."""
    height, width = feats.shape[-2:]
    physical = unit_landmarks.double().cpu()
    if coordinates != "centres":
        physical = pixels_to_unit(unit_to_pixels(physical, image_size, coordinates), image_size, "centres")
    warped, moved = tps.random_warp_batch(feats, tps.unit_to_pixels(physical, width, height), strength, generator)
    moved = tps.pixels_to_unit(moved, width, height)
    if coordinates != "centres":
        moved = pixels_to_unit(unit_to_pixels(moved, image_size, "centres"), image_size, coordinates)
    return warped, moved.to(unit_landmarks)


@contextlib.contextmanager
def flush_denormals():
    """Treat subnormal floats as zero on CPU while fitting/predicting. The soft-argmax of 100 x dot products is
    nearly one-hot, so most softmax weights and their gradients are subnormal (< 1.2e-38), and the x86 slow path
    for them made the 1x1 projection's weight gradient ~10x slower (a demo 960-d 300W fit: 239 CPU-s, 82% in
    backward). Values that small change no result beyond float rounding (Adam's second moment of such a gradient
    is 0 in float32 anyway)."""
    supported = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if supported:
            torch.set_flush_denormal(False)


def fit_regressor(train_feats: torch.Tensor, train_landmarks: torch.Tensor, image_size: int, steps: int,
                  seed: int, options: RegressorOptions = RegressorOptions(), *, work_dir: str | Path | None = None,
                  time_budget_s: float | None = None, device: str | torch.device = "cpu",
                  checkpoint_every: int = 500, log_every: int = 50,
                  validation: tuple | None = None, val_every: int = 500) -> LandmarkRegressor:
    """Train a regressor on cached descriptors for a fixed number of steps (no test-set model selection).

    train_feats: N x C x h x w (tensor or memory-mapped numpy array, any float dtype; moved batch by batch to
    `device`, so cached descriptors may live on disk as float16); train_landmarks:
    N x K x 2 pixels (x, y) in the `image_size` crop, NaN where absent. With `work_dir` the run checkpoints and
    resumes through lead_hsr.train (and stops cleanly on SIGTERM / time budget); without, it uses a temporary dir.
    `validation` = (feats, landmarks) of a validation split (never the test split): its loss is logged as
    `val_loss` every `val_every` steps, for monitoring only; the returned model is always the last one.
    """
    train_landmarks = torch.as_tensor(train_landmarks)
    _check_inputs(train_feats, train_landmarks)
    device = torch.device(device)
    seed_everything(seed)
    model = LandmarkRegressor(train_feats.shape[1], train_landmarks.shape[1], options.n_intermediate,
                              options.softargmax_mul, options.filter_init_std, options.coordinates).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=options.lr, betas=options.betas,
                                 weight_decay=options.weight_decay)
    eta_min = options.lr * COSINE_MIN_LR_FACTOR if options.cosine_schedule else options.lr
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(steps, 1), eta_min=eta_min)
    unit_landmarks = pixels_to_unit(train_landmarks.float(), image_size, options.coordinates)
    state = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
    scaler = None
    if options.precision == "fp16":  # only then, so checkpoints of the other precisions keep their states
        scaler = state["scaler"] = grad_scaler_for(device, "fp16")

    def step_fn(step: int) -> dict[str, float]:
        idx = torch.from_numpy(batch_indices(len(train_feats), options.batch_size, step, seed))
        feats, target = _rows(train_feats, idx), unit_landmarks[idx]
        if options.tps_strength is not None:
            feats, target = _augment(feats, target, options.tps_strength, step_generator(seed, step, stream=1),
                                     image_size, options.coordinates)
        with autocast_for(device, options.precision):
            pred = model(feats.to(device))
        loss = regression_loss(pred, target.to(device), options.loss, options.loss_scale)
        optimizer.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        scheduler.step()
        scalars = {"loss": loss.item(), "lr": scheduler.get_last_lr()[0]}
        if scaler is not None:
            scalars["loss_scale"] = scaler.get_scale()
        if validation is not None and ((step + 1) % val_every == 0 or step + 1 == steps):
            scalars["val_loss"] = _validation_loss(model, *validation, image_size, options, device)
        return scalars

    with tempfile.TemporaryDirectory(prefix="regressor-") as scratch:
        cfg = RunConfig(work_dir=Path(work_dir or scratch), total_steps=steps, seed=seed,
                        checkpoint_every=checkpoint_every, time_budget_s=time_budget_s, log_every=log_every,
                        images_per_step=options.batch_size)
        with flush_denormals():
            train(cfg, state, step_fn)
    return model.eval()


@torch.no_grad()
def _validation_loss(model, feats, landmarks, image_size: int, options: RegressorOptions, device) -> float:
    pred = predict(model, feats, image_size, device=device)
    target = pixels_to_unit(torch.as_tensor(landmarks).float(), image_size, options.coordinates)
    loss = regression_loss(pixels_to_unit(pred, image_size, options.coordinates), target, options.loss,
                           options.loss_scale).item()
    model.train()
    return loss


@torch.no_grad()
def predict(model: LandmarkRegressor, feats: torch.Tensor, image_size: int, batch_size: int = 64,
            device: str | torch.device | None = None) -> torch.Tensor:
    """N x C x h x w descriptors -> N x K x 2 landmark pixels (x, y) in the `image_size` crop (CPU float32)."""
    if feats.ndim != 4:
        raise ValueError(f"expected N x C x h x w features, got {tuple(feats.shape)}")
    device = device or next(model.parameters()).device
    model.eval()
    with flush_denormals():
        out = [model(_rows(feats, slice(i, i + batch_size)).to(device)).cpu()
               for i in range(0, len(feats), batch_size)]
    return unit_to_pixels(torch.cat(out), image_size, model.coordinates)


def regressor_flops(in_dim: int, n_landmarks: int, height: int, width: int,
                    n_intermediate: int = N_INTERMEDIATE, include_backward: bool = False) -> int:
    """FLOPs of one image through the regressor (forward, or forward + backward of a training step),
    measured by torch's FLOP counter (matmul/conv FLOPs; softmax and sums are not counted). Table 3.7."""
    from torch.utils.flop_counter import FlopCounterMode

    model = LandmarkRegressor(in_dim, n_landmarks, n_intermediate)
    feats = torch.zeros(1, in_dim, height, width)
    with FlopCounterMode(display=False) as counter:
        with torch.set_grad_enabled(include_backward):
            pred = model(feats)
            if include_backward:
                regression_loss(pred, torch.zeros_like(pred)).backward()
    return int(counter.get_total_flops())


def fewshot_subset(n_train: int, count: int, seed: int) -> np.ndarray:
    """Sorted indices of `count` training images for a few-shot run: a function of (n_train, count, seed) only.

    The caller saves the chosen file names as the run's manifest (see `load_fewshot_manifest`).
    """
    if not 0 < count <= n_train:
        raise InputError(f"few-shot subset: need 0 < count <= {n_train} training images, got count {count}; "
                         "fix the annotation count in the config")
    return np.sort(np.random.default_rng([n_train, count, seed]).choice(n_train, size=count, replace=False))


def load_fewshot_manifest(path: str | Path, train_files: list[str]) -> np.ndarray:
    """Indices (into `train_files`) of the file names listed in a saved manifest (a JSON list of names)."""
    path = Path(path)
    try:
        names = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise InputError(f"{path}: expected a JSON list of training file names ({error}); delete it to redraw")
    if not isinstance(names, list):
        raise InputError(f"{path}: expected a JSON list of training file names, got {type(names).__name__}; "
                         "delete it to redraw")
    position = {name: i for i, name in enumerate(train_files)}
    missing = [name for name in names if name not in position]
    if missing:
        raise InputError(f"{path}: lists files that are not in the training split (first: {missing[:3]}); "
                         "the prepared dataset changed since the manifest was written: delete it to redraw")
    return np.array([position[name] for name in names], dtype=np.int64)
