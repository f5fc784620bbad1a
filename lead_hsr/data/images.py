"""Safe image decoding: every image becomes uint8 H x W x 3 sRGB with the right scaling, or an `InputError`
naming the file (missing, empty, corrupt, truncated, or in a pixel format we refuse, by name).

PIL refuses truncated files at `load()` time ("image file is truncated") as long as the global
`PIL.ImageFile.LOAD_TRUNCATED_IMAGES` is False; we check that flag on every call because a silently
half-grey training image is exactly the "silent wrong number" the project forbids.

Pixel formats (PIL modes), decided once here:
- 8-bit `RGB`, `L`, `1` (0/255), `P` without transparency, `YCbCr`, `HSV`, `RGBX`: PIL's exact conversion.
- 16-bit greyscale (`I;16*`, and `I` from a PNG): the high byte (v >> 8), the same 16 -> 8 bit rule PIL applies
  to 48-bit RGB PNGs, so an 8-bit picture stored as 16 bits (v * 257) decodes bit-exactly.
  PIL's own `convert("RGB")` clips these to 255 (a white image): never used for them.
- Alpha (`RGBA`, `LA`, `PA`, `RGBa`, `La`, and `P`/`L`/`RGB` with a transparent colour): a fully opaque alpha channel is
  dropped; an image with any transparent pixel is REFUSED, because the colour under a transparent pixel is
  undefined and any background we picked would be a silent choice. Fix: flatten the images on the background
  you want (e.g. ImageMagick `mogrify -background white -flatten`).
- `CMYK` and `LAB`: converted to sRGB with LittleCMS (the embedded ICC profile for CMYK when there is one,
  otherwise PIL's uncalibrated CMYK formula; CIELAB D50 for LAB).
- An embedded ICC profile other than sRGB (Adobe RGB, Display P3, a grey gamma profile, ...): converted to
  sRGB with LittleCMS, perceptual intent. Images tagged sRGB (or untagged) are not touched.
- 32-bit `I` outside PNG, float `F`, and any other mode: refused by name (their value range is not defined).
- Multi-frame files (animated GIF/WebP, multi-page TIFF): refused; a dataset image is one picture.
- EXIF orientation is NOT applied: annotations (landmarks, boxes) and the reference loaders (DVE, StyleGAN's
  dataset_tool, both PIL without `exif_transpose`) use the stored pixel grid.

Preparation code that wants to survive a few broken files uses `ImageLoader(skip_corrupt=True)`,
which records every skipped file (and why) so it ends up in the store manifest instead of vanishing.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageFile, UnidentifiedImageError

from lead_hsr.errors import InputError

_FIX_HINT = "re-download or re-extract the file from the dataset's official source"
_EXACT_MODES = {"RGB", "L", "1", "YCbCr", "HSV", "RGBX"}  # PIL's convert("RGB") is exact for these
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_SIXTEEN_BIT_GREY = {"I;16", "I;16L", "I;16B", "I;16N"}
_SRGB = ImageCms.createProfile("sRGB")


def _refuse_truncated_images() -> None:
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True somewhere in this process; truncated images "
            "would be decoded silently. Unset it before preparing data."
        )


def _refuse(name, what: str, fix: str) -> InputError:
    return InputError(f"{name}: {what}; expected an 8-bit or 16-bit RGB/greyscale image. Fix: {fix}.")


def _icc_to_srgb(image: Image.Image, name) -> Image.Image:
    """Apply a non-sRGB embedded ICC profile (RGB, CMYK or grey image) -> sRGB RGB; untagged/sRGB unchanged."""
    icc = image.info.get("icc_profile")
    if not icc:
        return image
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if "srgb" in ImageCms.getProfileDescription(profile).lower().replace(" ", ""):
            return image
        return ImageCms.profileToProfile(image, profile, _SRGB, outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError) as error:
        raise _refuse(name, f"its embedded ICC colour profile cannot be applied ({error})",
                      "re-save the image as sRGB (e.g. ImageMagick `convert in.jpg -profile sRGB.icc out.jpg`), "
                      "or strip the damaged profile") from error


def _drop_opaque_alpha(image: Image.Image, name) -> Image.Image:
    rgba = image.convert("RGBA")
    alpha = np.asarray(rgba.getchannel("A"))
    if alpha.min() < 255:
        raise _refuse(
            name, f"mode {image.mode} with {int((alpha < 255).sum())} transparent pixel(s); the colour under a "
            "transparent pixel is undefined, so we refuse rather than pick a background",
            "flatten the images on the background you want (e.g. `mogrify -background white -flatten *.png`)")
    return rgba.convert("RGB")


def _sixteen_bit_grey(image: Image.Image) -> Image.Image:
    values = np.asarray(image).astype(np.uint32)
    return Image.fromarray((values >> 8).astype(np.uint8), mode="L").convert("RGB")


def _to_rgb(image: Image.Image, name) -> np.ndarray:
    """uint8 H x W x 3 sRGB from an opened, loaded PIL image (the rules are in the module docstring)."""
    mode = image.mode
    if mode in _ALPHA_MODES or "transparency" in image.info:  # a tRNS colour (P, L, RGB) is alpha too
        rgb = _drop_opaque_alpha(image, name)
    elif mode in _EXACT_MODES or mode == "P":
        base = image if mode in ("RGB", "L") else image.convert("RGB")  # the space an ICC profile describes
        base.info["icc_profile"] = image.info.get("icc_profile")
        rgb = _icc_to_srgb(base, name).convert("RGB")
    elif mode in _SIXTEEN_BIT_GREY or (mode == "I" and image.format == "PNG"):
        rgb = _sixteen_bit_grey(image)
    elif mode == "CMYK":
        converted = _icc_to_srgb(image, name)
        rgb = converted if converted.mode == "RGB" else converted.convert("RGB")
    elif mode == "LAB":
        lab_to_srgb = ImageCms.buildTransform(ImageCms.createProfile("LAB"), _SRGB, "LAB", "RGB")
        rgb = ImageCms.applyTransform(image, lab_to_srgb)
    else:
        raise _refuse(name, f"PIL mode {mode!r} ({image.format}) has no defined 0-255 range",
                      "convert the images to 8-bit or 16-bit RGB/greyscale PNG or JPEG")
    return np.asarray(rgb, dtype=np.uint8)


def decode_rgb(data: bytes, name: str | Path) -> np.ndarray:
    """Decode encoded image bytes (JPEG/PNG/WebP/...) to uint8 HxWx3; `name` is used in error messages."""
    _refuse_truncated_images()
    if len(data) == 0:
        raise InputError(f"{name}: the file is empty (0 bytes); expected a JPEG/PNG/WebP image. Fix: {_FIX_HINT}.")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # forces the full decode: truncated data raises here
            if getattr(image, "n_frames", 1) > 1:
                raise _refuse(name, f"it holds {image.n_frames} frames (animation or multi-page file)",
                              "extract the frame you want as a single PNG/JPEG")
            array = _to_rgb(image, name)
    except InputError:
        raise
    except UnidentifiedImageError as error:
        raise InputError(
            f"{name}: cannot decode image (not an image format PIL can read; it starts with {bytes(data[:8])!r}); "
            f"expected a complete JPEG/PNG/WebP file. Fix: {_FIX_HINT}."
        ) from error
    except MemoryError:
        raise
    except Exception as error:  # PIL raises OSError, SyntaxError, ValueError, struct.error, ... on damaged data
        raise InputError(
            f"{name}: cannot decode image ({type(error).__name__}: {error}); expected a complete JPEG/PNG/WebP "
            f"file. Fix: {_FIX_HINT}."
        ) from error
    if array.ndim != 3 or array.shape[2] != 3 or array.shape[0] == 0 or array.shape[1] == 0:
        raise InputError(f"{name}: decoded to shape {array.shape}, expected H x W x 3. Fix: {_FIX_HINT}.")
    return array


def load_rgb(path, named_by: str | None = None) -> np.ndarray:
    """Load an image file as uint8 HxWx3, raising `InputError` naming the file if missing/corrupt/truncated;
    `named_by` (an annotation `file:line`) says who asked for a missing file.

    `path` is a str / os.PathLike, or any path-like with `is_file()` and `read_bytes()` (a `zipfile.Path`)."""
    path = Path(path) if isinstance(path, (str, os.PathLike)) else path
    if not path.is_file():
        asked = f" (named by {named_by})" if named_by else ""
        raise InputError(f"{path}: image file not found{asked}. Fix: check the dataset root and that the annotation "
                         f"names an existing image, or {_FIX_HINT}.")
    return decode_rgb(path.read_bytes(), path)


@dataclass
class ImageLoader:
    """Loads images for a preparation run; with `skip_corrupt=True` broken files are recorded, not raised.

    `load` returns None for a skipped file; the caller drops that item and `skipped` lists
    `{"file": ..., "reason": ...}` entries for the manifest.
    """

    skip_corrupt: bool = False
    skipped: list[dict[str, str]] = field(default_factory=list)

    def load(self, path: str | Path, label: str | None = None, named_by: str | None = None) -> np.ndarray | None:
        try:
            return load_rgb(path, named_by)
        except InputError as error:
            if not self.skip_corrupt:
                raise
            self.skipped.append({"file": str(label if label is not None else path), "reason": str(error)})
            return None
