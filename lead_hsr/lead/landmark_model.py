"""A landmark model as one self-contained file: a frozen LEAD feature network + the regressor fitted on its
descriptors, with everything needed to use it on new images.

The file (`torch.load(path, weights_only=True)`: a plain dict of tensors, str, int, float, lists) is

    {"format": FORMAT,
     "features": the stage-1/stage-2 weights dict as `dense_model` writes it (kind, arch, config, state_dict),
     "regressor": `regressor.regressor_payload` (config, state_dict, feature_size, image_size),
     "geometry": {"resize", "crop", "input_size", "mean", "std"}: the store size, the margin removed, the network
                 input side and the normalisation (`data.geometry`),
     "prediction_crop": {"whole_image", "box"} (`data.geometry.PredictionCrop`: how a new image is cropped),
     "landmark_names": K names, "normaliser": the error's normaliser (`{pair: [i, j]}` or "box"),
     "provenance": where it came from (config, run, dataset, store, annotations, seed, the test error and its
                   metric, sha256 of every source file)}

Writing it needs a regression run's metrics (`lead_hsr.metrics.landmark_model.export`); using it needs only this
module: `load_landmark_model(path).predict(image, box)` -> K x 2 landmarks in the image's own pixels.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lead_hsr.data.geometry import NORM_MEAN, NORM_STD, Geometry, PredictionCrop
from lead_hsr.errors import InputError
from lead_hsr.lead.dense_model import (FORMAT as DENSE_FORMAT, DenseFeatureModel, dense_model_from_payload,
                                       extract_features)
from lead_hsr.lead.regressor import LandmarkRegressor, predict, regressor_from_payload
from lead_hsr.train import atomic_save_torch
from lead_hsr.train.atomic import load_torch_file

FORMAT = "lead_hsr.landmark_model/1"
# images per feature-extraction + regression chunk: a multiple of extract_features' and predict's batch (64), so
# every network call sees the batches of the regression run and the predictions equal its predictions.npy
PREDICT_CHUNK = 256
EXPORT_HINT = ("export one with `python -m lead_hsr.metrics.landmark_model export` or the workflow's "
               "export_landmark_model rule (docs/use_lead.md)")


@dataclass
class LandmarkModel:
    """A loaded landmark model: `predict_crops` on network inputs, `predict` on any image."""

    features: DenseFeatureModel
    regressor: LandmarkRegressor
    feature_size: int
    geometry: Geometry
    crop: PredictionCrop
    landmark_names: list[str]
    normaliser: object
    provenance: dict = field(default_factory=dict)

    @property
    def input_size(self) -> int:
        return self.geometry.crop_size

    def to(self, device) -> "LandmarkModel":
        self.features.to(device)
        self.regressor.to(device)
        return self

    def predict_crops(self, crops) -> np.ndarray:
        """uint8 N x S x S x 3 network inputs (the central crop) -> N x K x 2 (x, y) pixels of those crops, as the
        regression run computed its test predictions (same functions, same batches)."""
        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[1:] != (self.input_size, self.input_size, 3):
            raise InputError(f"landmark model: expected uint8 N x {self.input_size} x {self.input_size} x 3 crops, "
                             f"got shape {crops.shape}.")
        device = next(self.regressor.parameters()).device
        out = []
        for start in range(0, len(crops), PREDICT_CHUNK):
            feats = extract_features(self.features, crops[start:start + PREDICT_CHUNK], self.feature_size,
                                     device=device)
            out.append(predict(self.regressor, feats, self.input_size, device=device).numpy())
        k = self.regressor.n_landmarks
        return np.concatenate(out) if out else np.zeros((0, k, 2), dtype=np.float32)

    def prepare(self, image: np.ndarray, box=None, zoom: float | None = None):
        """(network input, `geometry.AxisAffine` from `image` pixels to its pixels): the store's crop."""
        return self.crop.apply(image, self.geometry, box, zoom)

    def predict(self, image: np.ndarray, box=None, zoom: float | None = None) -> np.ndarray:
        """K x 2 (x, y) landmarks of one uint8 H x W x 3 image, in its own pixels."""
        crop, affine = self.prepare(image, box, zoom)
        return affine.inverse(self.predict_crops(crop[None])[0])


def landmark_model_payload(features: dict, regressor: dict, geometry: Geometry, crop: PredictionCrop,
                           landmark_names: list[str], normaliser, provenance: dict) -> dict:
    """The file's dict (module docstring); checks that its parts fit together."""
    k = int(regressor["config"]["n_landmarks"])
    if len(landmark_names) != k:
        raise InputError(f"landmark model: {len(landmark_names)} landmark names for a regressor of K = {k}.")
    if int(regressor["image_size"]) != geometry.crop_size:
        raise InputError(f"landmark model: the regressor predicts in {regressor['image_size']}-px crops, the geometry "
                         f"{geometry} gives {geometry.crop_size}-px crops; export from the run's own config.")
    return {"format": FORMAT, "features": features, "regressor": regressor,
            "geometry": {"resize": geometry.resize, "crop": geometry.crop, "input_size": geometry.crop_size,
                         "mean": list(NORM_MEAN), "std": list(NORM_STD)},
            "prediction_crop": crop.as_dict(), "landmark_names": [str(name) for name in landmark_names],
            "normaliser": normaliser, "provenance": provenance}


def save_landmark_model(payload: dict, path) -> Path:
    """Write a `landmark_model_payload` atomically."""
    return atomic_save_torch(payload, path)


def _refuse_other_kinds(payload, path: Path) -> None:
    if isinstance(payload, dict) and payload.get("format") == DENSE_FORMAT:
        raise InputError(f"{path}: a LEAD feature network ({payload.get('kind')!r}) without its regressor, not a "
                         f"landmark model ({FORMAT}); {EXPORT_HINT}.")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        what = (f"a dict with keys {sorted(map(str, payload))[:6]}" if isinstance(payload, dict)
                else type(payload).__name__)
        raise InputError(f"{path}: expected a landmark model ({FORMAT}), got {what} (a file of another kind, e.g. a "
                         f"GAN network.pt); {EXPORT_HINT}.")
    missing = [key for key in ("features", "regressor", "geometry", "prediction_crop", "landmark_names")
               if key not in payload]
    if missing:
        raise InputError(f"{path}: landmark model without its {', '.join(missing)}; {EXPORT_HINT}.")


def read_landmark_payload(path) -> dict:
    """The checked dict of a landmark model file (InputError naming the file for anything else)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: landmark model not found; {EXPORT_HINT}.")
    payload = load_torch_file(path, "a landmark model", f"{EXPORT_HINT}.")
    _refuse_other_kinds(payload, path)
    return payload


def load_landmark_model(path, device: str | torch.device = "cpu") -> LandmarkModel:
    """Rebuild a landmark model file (eval mode, on `device`)."""
    payload = read_landmark_payload(path)
    features = dense_model_from_payload(payload["features"], f"{path} (features)")
    regressor, feature_size, image_size = regressor_from_payload(payload["regressor"], f"{path} (regressor)")
    try:
        geometry = Geometry.from_config({k: payload["geometry"][k] for k in ("resize", "crop")}, f"{path} geometry")
        crop = PredictionCrop(**payload["prediction_crop"])
    except (KeyError, TypeError) as err:
        raise InputError(f"{path}: damaged geometry or prediction_crop ({err}); {EXPORT_HINT}.") from err
    if image_size != geometry.crop_size or regressor.project.in_channels != features.dim:
        raise InputError(f"{path}: the regressor (crop {image_size} px, {regressor.project.in_channels}-d input) does "
                         f"not fit the features ({features.dim}-d) and geometry ({geometry}); {EXPORT_HINT}.")
    model = LandmarkModel(features, regressor, feature_size, geometry, crop, list(payload["landmark_names"]),
                          payload.get("normaliser"), dict(payload.get("provenance", {})))
    return model.to(device)
