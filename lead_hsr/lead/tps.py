"""Random thin-plate-spline (TPS) warps of images (or feature maps) AND their landmarks, consistently.

The warp family follows DVE (`utils/tps.py`, used by DVE and ContrastLandmark for matching pairs and for
few-shot augmentation): a random similarity transform (rotation, isotropic scale, translation) plus TPS
kernel weights attached to a 10 x 10 grid of control points on [-1, 1]^2, drawn from normal distributions
whose standard deviations give the warp's strength. A warp is a *backward* map T: for each output location p
it gives the source location T(p) to sample,

    T(p) = S(p) + sum_i w_i * phi(|p - c_i|^2),   phi(d) = d * log(d),   S = similarity transform.

Coordinates are normalised to [-1, 1] with the align_corners=False convention (as F.grid_sample with
align_corners=False and the hypercolumn upsampling): pixel centre x (0-based) <-> u = (2x + 1) / W - 1.
(DVE used align_corners=True, u = 2x / (W - 1) - 1; the difference is a fraction of a pixel and we keep one
convention across the project.) Landmarks move with the forward map T^-1, found by Newton's method from the
nearest output pixel, so a warped landmark sits on the warped image feature to sub-pixel accuracy (DVE snaps
it to the nearest pixel). All warps here are batched: one warp per image, leading dimension B.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F

CONTROL_GRID = 10  # DVE utils/tps.py: nc = 10 -> 10 x 10 control points on [-1, 1]
NEAREST_CHUNK_ELEMENTS = 2**22  # distances per cdist call in TpsWarp.target_of (32 MB of float64)
NEWTON_STEPS = 8   # plenty: T is smooth and we start within half a pixel of the solution
_LOG_EPS = 1e-12


@dataclass(frozen=True)
class TpsStrength:
    """Standard deviations of the random warp parameters (normalised [-1, 1] units; rotation in degrees)."""

    kernel_sd: float          # TPS kernel weights of every control point
    kernel_subset_sd: float   # ...replaced, for a random half of the weights, by this larger spread
    translation_sd: float
    scale_sd: float
    rotation_sd_deg: float

    def scaled(self, factor: float) -> "TpsStrength":
        return TpsStrength(*(factor * value for value in (self.kernel_sd, self.kernel_subset_sd,
                                                          self.translation_sd, self.scale_sd, self.rotation_sd_deg)))


# DVE utils/tps.py `Warper` defaults (warpsd_all 0.001, warpsd_subset 0.01, transsd 0.1, scalesd 0.1, rotsd 5):
# the strength DVE trains its pair warps with.
TRAINING_STRENGTH = TpsStrength(0.001, 0.01, 0.1, 0.1, 5.0)
# DVE test_matching.py: every Warper parameter "* .5" for the matching benchmark (Table 3.1).
MATCHING_STRENGTH = TRAINING_STRENGTH.scaled(0.5)
# ContrastLandmark data_loaders_face.py `--TPS_aug` uses DVE `WarperSingle` defaults (warpsd_all 0.0005,
# warpsd_subset 0, transsd 0.02, scalesd 0.02, rotsd 2) for few-shot regressor training.
FEWSHOT_STRENGTH = TpsStrength(0.0005, 0.0, 0.02, 0.02, 2.0)


@lru_cache(maxsize=1)
def control_points(n: int = CONTROL_GRID) -> torch.Tensor:
    axis = torch.linspace(-1.0, 1.0, n, dtype=torch.float64)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)  # (n*n) x 2, (x, y)


def pixels_to_unit(points: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """0-based pixel (x, y) -> [-1, 1] (align_corners=False)."""
    size = torch.tensor([width, height], dtype=points.dtype, device=points.device)
    return (2.0 * points + 1.0) / size - 1.0


def unit_to_pixels(points: torch.Tensor, width: int, height: int) -> torch.Tensor:
    size = torch.tensor([width, height], dtype=points.dtype, device=points.device)
    return ((points + 1.0) * size - 1.0) / 2.0


def kernel_basis(points: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """phi(|p - c|^2) = d log d for (..., M) points and P centres: (..., M, P) (-> 0 at d = 0)."""
    dist2 = _squared_norm(points[..., :, None, :] - centres)
    return dist2 * torch.log(dist2.clamp_min(_LOG_EPS))


def _squared_norm(diff: torch.Tensor) -> torch.Tensor:
    """x^2 + y^2 of (..., 2) differences. The same sum as `(diff ** 2).sum(-1)`, but a reduction over a last
    dimension of 2 is ~10x slower on the CPU than the two element-wise ops (it was most of a few-shot fit's warps)."""
    return diff[..., 0].square() + diff[..., 1].square()


def _pixel_centres(width: int, height: int) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64),
                            indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)


@lru_cache(maxsize=8)
def _pixel_grid_basis(width: int, height: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised pixel centres (H*W x 2) and their kernel basis (H*W x P), shared by every warp of a size."""
    grid = pixels_to_unit(_pixel_centres(width, height), width, height)
    return grid, kernel_basis(grid, control_points())


@dataclass(frozen=True)
class TpsWarp:
    """B backward warps T (float64 parameters on the CPU)."""

    linear: torch.Tensor          # B x 2 x 2: S(p) = linear @ p + translation
    translation: torch.Tensor     # B x 2
    kernel_weights: torch.Tensor  # B x P x 2

    def __len__(self) -> int:
        return self.linear.shape[0]

    @staticmethod
    def cat(warps: list["TpsWarp"]) -> "TpsWarp":
        return TpsWarp(*(torch.cat([getattr(w, name) for w in warps])
                         for name in ("linear", "translation", "kernel_weights")))

    def source_of(self, points: torch.Tensor, phi: torch.Tensor | None = None) -> torch.Tensor:
        """T(p) for B x M x 2 normalised points (or M x 2 shared by all warps); `phi` = their kernel basis."""
        if phi is None:
            phi = kernel_basis(points, control_points())
        if points.ndim == 2:  # shared points: broadcast over the warps
            points, phi = points.expand(len(self), -1, -1), phi.expand(len(self), -1, -1)
        return (torch.einsum("bmj,bij->bmi", points, self.linear) + self.translation[:, None]
                + torch.einsum("bmp,bpi->bmi", phi, self.kernel_weights))

    def jacobian(self, points: torch.Tensor) -> torch.Tensor:
        """dT/dp for B x M x 2 points: B x M x 2 x 2 (rows: output x/y, columns: d/dx, d/dy)."""
        diff = points[..., :, None, :] - control_points()                         # B x M x P x 2
        dist2 = _squared_norm(diff)[..., None]
        dphi = 2.0 * (torch.log(dist2.clamp_min(_LOG_EPS)) + 1.0) * diff
        return self.linear[:, None] + torch.einsum("bmpj,bpi->bmij", dphi, self.kernel_weights)

    def target_of(self, sources: torch.Tensor, width: int, height: int) -> torch.Tensor:
        """T^-1: where B x M x 2 normalised source points land in the warped W x H output."""
        grid, phi = _pixel_grid_basis(width, height)
        sampled = self.source_of(grid, phi)            # B x H*W x 2: the input point each output pixel samples
        group = max(1, NEAREST_CHUNK_ELEMENTS // (sources.shape[1] * len(grid)))  # bounds the B x M x H*W cdist
        nearest = torch.cat([torch.cdist(sources[b:b + group], sampled[b:b + group]).argmin(dim=2)
                             for b in range(0, len(self), group)])             # B x M
        points = grid[nearest]  # Newton's starting points: the output pixels sampling nearest to each source
        for _ in range(NEWTON_STEPS):
            residual = self.source_of(points) - sources
            points = points - torch.linalg.solve(self.jacobian(points), residual[..., None])[..., 0]
        return points

    def __getitem__(self, index: int) -> "TpsWarp":
        return TpsWarp(self.linear[index:index + 1], self.translation[index:index + 1],
                       self.kernel_weights[index:index + 1])


def random_warps(n: int, strength: TpsStrength, generator: torch.Generator) -> TpsWarp:
    """Draw n warps; all randomness from `generator` (CPU) so warps are a function of its seed."""
    n_points = len(control_points())

    def normal(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64)

    weights = normal(n, n_points, 2) * strength.kernel_sd
    subset = torch.rand(n, n_points, 2, generator=generator, dtype=torch.float64) > 0.5
    weights = torch.where(subset, normal(n, n_points, 2) * strength.kernel_subset_sd, weights)
    angle = normal(n) * strength.rotation_sd_deg * math.pi / 180.0
    scale = 1.0 + normal(n) * strength.scale_sd
    translation = normal(n, 2) * strength.translation_sd
    cos, sin = torch.cos(angle), torch.sin(angle)
    linear = scale[:, None, None] * torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], 1)
    return TpsWarp(linear=linear, translation=translation, kernel_weights=weights)


def identity_warp(n: int = 1) -> TpsWarp:
    return TpsWarp(torch.eye(2, dtype=torch.float64).repeat(n, 1, 1), torch.zeros(n, 2, dtype=torch.float64),
                   torch.zeros(n, len(control_points()), 2, dtype=torch.float64))


def translation_warp(dx_pixels: float, dy_pixels: float, width: int, height: int) -> TpsWarp:
    """A pure shift: content moves by (+dx, +dy) pixels (handy for tests and sanity checks)."""
    shift = torch.tensor([[-2.0 * dx_pixels / width, -2.0 * dy_pixels / height]], dtype=torch.float64)
    base = identity_warp()
    return TpsWarp(base.linear, shift, base.kernel_weights)


def sampling_grid(warp: TpsWarp, height: int, width: int) -> torch.Tensor:
    """B x H x W x 2 grid for F.grid_sample(align_corners=False)."""
    grid, phi = _pixel_grid_basis(width, height)
    return warp.source_of(grid, phi).reshape(len(warp), height, width, 2)


def warp_maps(maps: torch.Tensor, warp: TpsWarp, mode: str = "bilinear") -> torch.Tensor:
    """Warp N x C x H x W images or feature maps, one warp each (zeros outside, as DVE)."""
    if len(warp) != maps.shape[0]:
        raise ValueError(f"{len(warp)} warps for {maps.shape[0]} maps")
    height, width = maps.shape[-2:]
    grid = sampling_grid(warp, height, width).to(device=maps.device, dtype=maps.dtype)
    return F.grid_sample(maps, grid, mode=mode, padding_mode="zeros", align_corners=False)


def warp_landmarks(landmarks: torch.Tensor, warp: TpsWarp, height: int, width: int) -> torch.Tensor:
    """N x K x 2 pixel landmarks of the input -> their pixel positions in the warped output (NaN stays NaN)."""
    present = torch.isfinite(landmarks).all(dim=-1, keepdim=True)
    unit = pixels_to_unit(landmarks.detach().cpu().double().nan_to_num(0.0), width, height)
    moved = unit_to_pixels(warp.target_of(unit, width, height), width, height)
    return torch.where(present, moved.to(landmarks), torch.full_like(landmarks, float("nan")))


def random_warp_batch(maps: torch.Tensor, landmarks: torch.Tensor, strength: TpsStrength,
                      generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Warp each map and its pixel landmarks with its own random warp. Landmark pixels are in map pixels."""
    warp = random_warps(maps.shape[0], strength, generator)
    height, width = maps.shape[-2:]
    return warp_maps(maps, warp), warp_landmarks(landmarks, warp, height, width)
