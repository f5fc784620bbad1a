"""Landmark-protocol geometry: image + landmarks transformed together.

Conventions (from the DVE evaluation code, github jamt9000/DVE `data_loader/data_loaders.py`, which LEAD and
ContrastLandmark follow): landmarks are float (x, y) arrays of shape K x 2 in 0-based pixel coordinates, and they
scale with the image as x' = x * W'/W (DVE's `keypoints *= imwidth / size`). This differs from the
pixel-centre-exact (x + 0.5) * s - 0.5 by at most 0.5 * |1 - s| px; we keep DVE's convention so prepared
landmarks equal the ones the published numbers were measured on.

Prepared stores hold images at `resize` x `resize` (136 in the paper); `central_crop` removes `crop` pixels on
every side at load time (136 - 2 * 20 = 96). The demo uses the same functions with smaller sizes from the config.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
from PIL import Image

from lead_hsr.errors import InputError

# --- protocol constants (each with its source) -------------------------------------------------------------
RESIZE = 136  # DVE/CL landmark configs: imwidth 136
CROP = 20  # DVE/CL landmark configs: crop 20 on every side -> 96 x 96
NORM_MEAN = (0.5084, 0.4224, 0.3769)  # DVE data_loaders.py transforms.Normalize mean (CelebA statistics)
NORM_STD = (0.2599, 0.2371, 0.2323)  # DVE data_loaders.py transforms.Normalize std
CELEBA_ALIGNED_CROP = (30, 0, 178, 178)  # (top, left, height, width): DVE MAFLAligned "move head up a bit"
W300_BOX_WIDTH = 52  # DVE ThreeHundredW: "make the (tightly cropped) face 52px"
W300_WINDOW = 100  # DVE ThreeHundredW: 24 px padding on each side -> 100 x 100 window
W300_VERTICAL_SHIFT = 2  # DVE ThreeHundredW: the window is moved 2 px up (`by - pp - 2`)
AFLW_M_CROP_SIZE = 150  # DVE AFLW_MTFL: all MTFL/aflw_cropped images are 150 x 150 (`imwidth / 150.`)
ZOOM_RANGE_TRAIN = (1.0, 1.5)  # thesis Sec. 3 "sensitivity to scale": train zoom-out factor U(1, 1.5)
ZOOM_RANGE_TEST = (1.0, 2.0)  # thesis Sec. 3 "sensitivity to scale": test zoom-out factor U(1, 2)


@dataclass(frozen=True)
class Geometry:
    """Prepared image size (`resize`) and the margin removed at load time (`crop`)."""

    resize: int = RESIZE
    crop: int = CROP

    @property
    def crop_size(self) -> int:
        return self.resize - 2 * self.crop

    @classmethod
    def from_config(cls, config: dict | None, where: str = "config geometry") -> "Geometry":
        """Build from a config mapping `{resize: int, crop: int}`; missing keys take the paper values."""
        if isinstance(config, Geometry):
            return config
        config = dict(config or {})
        unknown = set(config) - {"resize", "crop"}
        if unknown:
            raise InputError(f"{where}: unknown keys {sorted(unknown)}; expected only 'resize' and 'crop'.")
        geometry = cls(resize=config.get("resize", RESIZE), crop=config.get("crop", CROP))
        if not (isinstance(geometry.resize, int) and isinstance(geometry.crop, int)):
            raise InputError(f"{where}: resize and crop must be integers, got {geometry}.")
        if geometry.crop < 0 or geometry.crop_size < 8:
            raise InputError(f"{where}: need crop >= 0 and resize - 2*crop >= 8, got {geometry}. "
                             f"Fix: the paper uses resize {RESIZE}, crop {CROP}.")
        return geometry


PAPER_GEOMETRY = Geometry(RESIZE, CROP)


def _as_landmarks(landmarks) -> np.ndarray:
    return np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)


def crop(image: np.ndarray, landmarks, top: int, left: int, height: int, width: int):
    """Crop a window (which may extend past the image: zero padding there); landmarks shift with it."""
    out = np.zeros((height, width, image.shape[2]), dtype=image.dtype)
    src_y0, src_x0 = max(top, 0), max(left, 0)
    src_y1, src_x1 = min(top + height, image.shape[0]), min(left + width, image.shape[1])
    if src_y1 > src_y0 and src_x1 > src_x0:
        out[src_y0 - top:src_y1 - top, src_x0 - left:src_x1 - left] = image[src_y0:src_y1, src_x0:src_x1]
    return out, _as_landmarks(landmarks) - np.array([left, top], dtype=np.float64)


def resize(image: np.ndarray, landmarks, height: int, width: int, resample=Image.BILINEAR):
    """Resize (PIL bilinear with antialiasing, as torchvision's Resize on PIL images); landmarks scale."""
    in_height, in_width = image.shape[:2]
    out = np.asarray(Image.fromarray(image).resize((width, height), resample=resample))
    scale = np.array([width / in_width, height / in_height], dtype=np.float64)
    return out, _as_landmarks(landmarks) * scale


def centre_square(image: np.ndarray, landmarks):
    """Largest centred square (side = the shorter image side), as StyleGAN2-ADA's dataset_tool `center-crop`."""
    height, width = image.shape[:2]
    side = min(height, width)
    return crop(image, landmarks, (height - side) // 2, (width - side) // 2, side, side)


def centre_square_resize(image: np.ndarray, landmarks, size: int = RESIZE):
    """`centre_square`, then resize to size x size (keeps the aspect ratio; own-data `transform: centre_crop`)."""
    cropped, moved = centre_square(image, landmarks)
    return resize(cropped, moved, size, size)


def celeba_aligned(image: np.ndarray, landmarks, size: int = RESIZE):
    """Aligned CelebA: crop 178 x 178 at top 30, left 0, then resize to `size` (DVE MAFLAligned)."""
    top, left, height, width = CELEBA_ALIGNED_CROP
    cropped, moved = crop(image, landmarks, top, left, height, width)
    return resize(cropped, moved, size, size)


def square_resize(image: np.ndarray, landmarks, size: int = RESIZE):
    """Resize to size x size, breaking the aspect ratio when the input is not square (AFLW_R, AFLW_M crops)."""
    return resize(image, landmarks, size, size)


def w300_box_crop(image: np.ndarray, landmarks, box, size: int = RESIZE):
    """300W: scale so the ground-truth box is 52 px wide, take the 100 x 100 window at its centre, resize.

    `box` is (xmin, ymin, xmax, ymax) in MATLAB 1-based pixels (bb_ground_truth); `landmarks` are 0-based.
    The arithmetic reproduces DVE's ThreeHundredW.__getitem__ (itself a port of MATLAB code), including the
    floor of the scaled centre and the 2 px upward shift, so prepared landmarks equal DVE's.
    """
    xmin, ymin, xmax, ymax = (float(v) for v in box)
    box_width, box_height = xmax - xmin + 1, ymax - ymin + 1
    centre_x, centre_y = xmin + (box_width + 1) / 2, ymin + (box_height + 1) / 2
    factor = W300_BOX_WIDTH / box_width
    scaled_size = (max(int(image.shape[1] * factor), 1), max(int(image.shape[0] * factor), 1))
    scaled = np.asarray(Image.fromarray(image).resize(scaled_size, resample=Image.BICUBIC))  # PIL default
    pad = (W300_WINDOW - W300_BOX_WIDTH) // 2
    left = int(np.floor(factor * centre_x) - W300_BOX_WIDTH / 2 + 1 - pad) - 1  # 0-based first column
    top = int(np.floor(factor * centre_y) - W300_BOX_WIDTH / 2 + 1 - pad - W300_VERTICAL_SHIFT) - 1
    window, _ = crop(scaled, np.zeros((0, 2)), top, left, W300_WINDOW, W300_WINDOW)
    # DVE: (1-based landmark * factor) - (first 1-based column - 1) - 1, here with 0-based landmarks
    moved = (_as_landmarks(landmarks) + 1) * factor - np.array([left + 1, top + 1], dtype=np.float64)
    return resize(window, moved, size, size)


def zoomed_box_crop(image: np.ndarray, landmarks, box, zoom: float, size: int = RESIZE):
    """Unaligned MAFL: a square window of side zoom * max(w, h) centred on the box, zero-padded, resized.

    `box` is (x, y, width, height) as in list_bbox_celeba.txt. The thesis scales "the side length of the
    bounding box" by the zoom-out factor; we take the square on the longer side so faces keep their aspect.
    """
    x, y, width, height = (float(v) for v in box)
    side = max(int(round(zoom * max(width, height))), 1)
    left = int(round(x + width / 2 - side / 2))
    top = int(round(y + height / 2 - side / 2))
    window, moved = crop(image, landmarks, top, left, side, side)
    return resize(window, moved, size, size)


def central_crop(images, landmarks, crop: int = CROP, channels_last: bool = True):
    """Remove `crop` pixels from every side at load time (136 -> 96); landmarks shift by -crop.

    Works on one image or a batch, numpy or torch; `channels_last=False` for N x 3 x H x W tensors;
    `landmarks` may be None (stores without landmarks).
    """
    if crop == 0:
        return images, landmarks
    moved = None if landmarks is None else landmarks - crop
    if channels_last:
        cropped = images[..., crop:-crop, crop:-crop, :]
    else:
        cropped = images[..., crop:-crop, crop:-crop]
    return cropped, moved


def normalize_images(images_uint8, device="cpu"):
    """uint8 N x H x W x 3 (numpy or torch) -> N x 3 x H x W tensor of torch's default float dtype (float32; float64
    in the exactness tests) normalised with NORM_MEAN/STD."""
    import torch  # local import: geometry stays usable without torch for preparation

    tensor = torch.as_tensor(np.asarray(images_uint8), device=device)
    tensor = tensor.permute(0, 3, 1, 2).to(torch.get_default_dtype()).div_(255.0)
    mean = torch.tensor(NORM_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(NORM_STD, device=device).view(1, 3, 1, 1)
    return (tensor - mean) / std


def inside(landmarks, height: int, width: int) -> np.ndarray:
    """Per-landmark mask: inside the image (NaN landmarks count as inside: they are 'absent')."""
    points = _as_landmarks(landmarks)
    x, y = points[:, 0], points[:, 1]
    ok = (x >= -0.5) & (x <= width - 0.5) & (y >= -0.5) & (y <= height - 0.5)
    return ok | np.isnan(x) | np.isnan(y)


def sample_zoom(rng: np.random.Generator, split: str) -> float:
    """Zoom-out factor for unaligned MAFL: U(1, 1.5) for train, U(1, 2) for test (thesis Sec. 3)."""
    low, high = ZOOM_RANGE_TRAIN if split == "train" else ZOOM_RANGE_TEST
    return float(rng.uniform(low, high))


# --- new images: the store's crop, and the way back to the image's own pixels --------------------------------
# A landmark model predicts on any image the way its store was prepared: without a face box, the store's
# whole-image transform; with one, its box crop; then the central crop. Every step moves landmarks by a per-axis
# scale and shift, so the map from original pixels to crop pixels is affine (`AxisAffine`), found by sending two
# probe points through the same functions the preparers call, and predictions are mapped back through its inverse.
WHOLE_IMAGE_CROPS = {"resize": square_resize, "centre_crop": centre_square_resize, "celeba_aligned": celeba_aligned}
BOX_CROPS = ("w300", "zoom")  # w300_box_crop (1-based inclusive box, DVE), zoomed_box_crop (0-based, zoom-out)
BOX_COLUMNS = ("bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1")  # as the prepared stores' tables name them
DEFAULT_BOX_ZOOM = 1.0  # zoom-out of a box crop when the box list gives none (the box's own square)
# preparer -> (whole-image crop, box crop); own-data stores (`image_folder`) use their `transform` option instead
PREPARER_CROPS = {
    "celeba_ssl": ("celeba_aligned", "zoom"),
    "mafl": ("celeba_aligned", "zoom"),   # aligned CelebA images: top 30, 178 x 178
    "mafl_unaligned": ("resize", "zoom"),  # the store's own crop: a zoomed-out square on list_bbox_celeba's box
    "aflw_m": ("resize", "zoom"),          # MTFL crops are whole 150 x 150 face crops
    "aflw_r": ("resize", "zoom"),
    "w300": ("resize", "w300"),            # the store's own crop: bb_ground_truth boxes
}
OWN_DATA_PREPARER = "image_folder"


@dataclass(frozen=True)
class AxisAffine:
    """crop pixels = scale * original pixels + offset, per axis (x, y)."""

    scale: tuple[float, float]
    offset: tuple[float, float]

    @classmethod
    def of(cls, transform, image: np.ndarray) -> tuple[np.ndarray, "AxisAffine"]:
        """(transformed image, the affine map `transform` applies to landmarks of `image`)."""
        out, probes = transform(image, np.array([[0.0, 0.0], [1.0, 1.0]]))
        scale = probes[1] - probes[0]
        return out, cls((float(scale[0]), float(scale[1])), (float(probes[0][0]), float(probes[0][1])))

    def shifted(self, delta: float) -> "AxisAffine":
        return AxisAffine(self.scale, (self.offset[0] + delta, self.offset[1] + delta))

    def forward(self, points) -> np.ndarray:
        return _as_landmarks(points) * np.array(self.scale) + np.array(self.offset)

    def inverse(self, points) -> np.ndarray:
        return (_as_landmarks(points) - np.array(self.offset)) / np.array(self.scale)


@dataclass(frozen=True)
class PredictionCrop:
    """How a landmark model crops a new image: `whole_image` (a WHOLE_IMAGE_CROPS key) without a box, `box`
    (a BOX_CROPS name) with one; then the geometry's central crop."""

    whole_image: str
    box: str

    def __post_init__(self):
        if self.whole_image not in WHOLE_IMAGE_CROPS or self.box not in BOX_CROPS:
            raise InputError(f"prediction crop {self}: expected whole_image in {sorted(WHOLE_IMAGE_CROPS)} and box "
                             f"in {list(BOX_CROPS)}; the landmark model file is damaged: export it again.")

    @classmethod
    def for_store(cls, preparer: str, options: dict | None = None) -> "PredictionCrop":
        """The crop of a store made by `preparer` (its manifest's `preparer` and `options`)."""
        if preparer == OWN_DATA_PREPARER:
            return cls((options or {}).get("transform", "resize"), "zoom")
        if preparer not in PREPARER_CROPS:
            raise InputError(f"no prediction crop for stores of preparer {preparer!r}; known: "
                             f"{sorted(PREPARER_CROPS) + [OWN_DATA_PREPARER]} (lead_hsr.data.geometry.PREPARER_CROPS).")
        return cls(*PREPARER_CROPS[preparer])

    def transform(self, box=None, zoom: float | None = None, size: int = RESIZE):
        """(image, landmarks) -> (image, landmarks) at the store size: the box crop when `box` (bbox_x0, bbox_y0,
        bbox_x1, bbox_y1 as the store's table has them) is given, else the whole-image crop."""
        if box is None:
            return partial(WHOLE_IMAGE_CROPS[self.whole_image], size=size)
        x0, y0, x1, y1 = (float(v) for v in box)
        if self.box == "w300":
            return partial(w300_box_crop, box=(x0, y0, x1, y1), size=size)
        zoom = DEFAULT_BOX_ZOOM if zoom is None else float(zoom)
        return partial(zoomed_box_crop, box=(x0, y0, x1 - x0, y1 - y0), zoom=zoom, size=size)

    def apply(self, image: np.ndarray, geometry: Geometry, box=None, zoom: float | None = None):
        """(crop_size x crop_size x 3 network input, AxisAffine from `image` pixels to its pixels)."""
        prepared, affine = AxisAffine.of(self.transform(box, zoom, geometry.resize), image)
        cropped, _ = central_crop(prepared, None, geometry.crop)
        return np.ascontiguousarray(cropped), affine.shifted(-geometry.crop)

    def as_dict(self) -> dict:
        return {"whole_image": self.whole_image, "box": self.box}
