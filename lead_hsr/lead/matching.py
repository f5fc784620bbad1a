"""Landmark matching benchmark (thesis Table 3.1, following DVE `test_matching.py`).

Protocol (DESIGN §5): MAFL test images in sorted order, taken two at a time (image 2i, 2i+1). Each image gets
a TPS warp T1 at half the DVE training strength (source view), and its target view is warped once more,
T2(T1(image)), as in DVE's pair warper. For each pair:
  * "same":      query the source view of image 2i, search the target view of image 2i;
  * "different": query the source view of image 2i, search the target view of image 2i+1.
Query = the descriptor at the ground-truth landmark cell of the source view; match = argmax of cosine
similarity over the target's feature map upsampled (bilinear, align_corners=False) to the crop size (96);
error = pixel distance scaled to a 70-px canonical image (x 70 / crop size).
DVE searched raw dot products at the descriptors' own stride; the thesis specifies cosine similarity on the
upsampled map, which is what we do.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from lead_hsr.lead import tps
from lead_hsr.lead.hypercolumns import normalize_blocks
from lead_hsr.train.rng import step_generator

CANONICAL_SIZE = 70  # DVE test_matching.py compute_pixel_err: errors "as though they occurred in a 70x70 image"
SOURCE_STREAM, TARGET_STREAM = 0, 1  # generator streams: the two warps of one image are independent draws


def matching_order(file_names: list[str]) -> np.ndarray:
    """Indices that put the test images in sorted file-name order (the order pairs are formed in)."""
    return np.argsort(np.asarray(file_names, dtype=object), kind="stable")


def prepare_descriptors(feats: torch.Tensor, size: int, block_dims: list[int] | None = None) -> torch.Tensor:
    """N x C x h x w -> N x C x size x size, unit length per location (optionally per channel block first)."""
    if feats.ndim != 4:
        raise ValueError(f"features must be N x C x h x w, got shape {tuple(feats.shape)}")
    feats = feats.float()
    if feats.shape[-2:] != (size, size):
        feats = F.interpolate(feats, size=(size, size), mode="bilinear", align_corners=False)
    if block_dims is not None:
        feats = normalize_blocks(feats, block_dims)
    return F.normalize(feats, dim=1)


def match_landmarks(source: torch.Tensor, source_landmarks: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Best-matching target pixel for each source landmark.

    source, target: C x S x S unit descriptors (from `prepare_descriptors`); source_landmarks: K x 2 pixels
    (x, y) in the S x S crop. Returns K x 2 pixel coordinates (NaN where the source landmark is absent).
    """
    channels, size, _ = source.shape
    present = torch.isfinite(source_landmarks).all(dim=1)
    cells = source_landmarks.nan_to_num(0.0).round().long().clamp(0, size - 1)  # the landmark's cell
    queries = source[:, cells[:, 1], cells[:, 0]].T                        # K x C
    locations = target.permute(1, 2, 0).reshape(size * size, channels)    # a view for channels-last maps
    similarity = queries @ locations.T                                      # cosine (unit vectors)
    best = similarity.argmax(dim=1)
    matches = torch.stack([best % size, best // size], dim=1).to(source_landmarks.dtype)
    matches[~present] = float("nan")
    return matches


def canonical_pixel_error(pred: torch.Tensor, gt: torch.Tensor, crop_size: int) -> torch.Tensor:
    """Euclidean error in pixels of a 70-px canonical image (elementwise over leading dims)."""
    return (pred - gt).norm(dim=-1) * (CANONICAL_SIZE / crop_size)


@dataclass
class MatchingResult:
    same: float          # mean canonical-pixel error, same identity
    different: float     # mean canonical-pixel error, different identity
    n_pairs: int

    def as_dict(self) -> dict:
        return {"same": self.same, "different": self.different, "n_pairs": self.n_pairs}

    @classmethod
    def from_errors(cls, same: torch.Tensor, different: torch.Tensor) -> "MatchingResult":
        """Means over every present landmark of every pair; same/different: n_pairs x K errors (NaN if absent)."""
        return cls(same=float(np.nanmean(same.numpy())), different=float(np.nanmean(different.numpy())),
                   n_pairs=int(same.shape[0]))


def matching_errors(source_feats: torch.Tensor, source_landmarks: torch.Tensor, target_feats: torch.Tensor,
                    target_landmarks: torch.Tensor, crop_size: int, block_dims: list[int] | None = None,
                    device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Per-landmark errors (n_pairs x K, canonical pixels) of pairs (2i, 2i+1) of already sorted images.

    *_feats: N x C x h x w descriptors of the source/target views; *_landmarks: N x K x 2 pixels in the crop.
    An odd last image is dropped (as DVE's drop_last). Returns (same identity, different identity).
    """
    n = source_feats.shape[0] - source_feats.shape[0] % 2
    if n == 0:
        raise ValueError("matching needs at least 2 images")
    same, different = [], []
    for i in range(0, n, 2):
        src = prepare_descriptors(source_feats[i:i + 1].to(device), crop_size, block_dims)[0]
        targets = prepare_descriptors(target_feats[i:i + 2].to(device), crop_size, block_dims)
        query = source_landmarks[i].to(device).float()
        same.append(canonical_pixel_error(match_landmarks(src, query, targets[0]),
                                          target_landmarks[i].to(device).float(), crop_size).cpu())
        different.append(canonical_pixel_error(match_landmarks(src, query, targets[1]),
                                               target_landmarks[i + 1].to(device).float(), crop_size).cpu())
    return torch.stack(same), torch.stack(different)


def evaluate_matching(source_feats: torch.Tensor, source_landmarks: torch.Tensor, target_feats: torch.Tensor,
                      target_landmarks: torch.Tensor, crop_size: int, block_dims: list[int] | None = None,
                      device: str | torch.device = "cpu") -> MatchingResult:
    """Mean same / different errors of `matching_errors` (all pairs in memory at once)."""
    return MatchingResult.from_errors(*matching_errors(source_feats, source_landmarks, target_feats,
                                                       target_landmarks, crop_size, block_dims, device))


def matching_views(images: torch.Tensor, landmarks: torch.Tensor, first_index: int, seed: int, crop: int,
                   strength: tps.TpsStrength = tps.MATCHING_STRENGTH):
    """Warped source/target views of full prepared images (N x 3 x H x W float), then the central crop.

    Warps depend only on (seed, first_index + i), so images can be processed in any batching. Landmarks are
    N x K x 2 pixels of the full image; the returned landmarks are pixels of the cropped views.
    Returns (source_images, source_landmarks, target_images, target_landmarks).
    """
    height, width = images.shape[-2:]
    first = tps.TpsWarp.cat([tps.random_warps(1, strength, step_generator(seed, first_index + i, SOURCE_STREAM))
                             for i in range(len(images))])
    second = tps.TpsWarp.cat([tps.random_warps(1, strength, step_generator(seed, first_index + i, TARGET_STREAM))
                              for i in range(len(images))])
    source = tps.warp_maps(images, first)
    source_lm = tps.warp_landmarks(landmarks.double(), first, height, width)
    target = tps.warp_maps(source, second)
    target_lm = tps.warp_landmarks(source_lm, second, height, width)

    def cut(maps):
        return maps[..., crop:height - crop, crop:width - crop]

    return cut(source), (source_lm - crop).float(), cut(target), (target_lm - crop).float()
