"""CUB-200-2011 raw layout: `images.txt` ("id relative/path.jpg"), `bounding_boxes.txt` ("id x y w h"),
images under `images/`."""

from __future__ import annotations

import math
from pathlib import Path

from lead_hsr.data.layouts import CUB_FOLDER, CUB_IMAGE_DIR, raw_root_fix
from lead_hsr.data.readers.common import read_text
from lead_hsr.errors import InputError, located

CUB_COUNT = 11_788  # CUB-200-2011 README: 11,788 images (thesis Sec. 4.3.1 "12k images")


def find_cub(root: Path) -> Path:
    """The CUB folder holding images.txt: the root itself, or its `CUB_200_2011/` sub-folder."""
    root = Path(root)
    nested = root / CUB_FOLDER
    return nested if not (root / "images.txt").is_file() and (nested / "images.txt").is_file() else root


def _lines(path: Path) -> list[tuple[int, list[str]]]:
    """(1-based line number, whitespace-split fields) of every non-empty line of a required CUB file."""
    if not path.is_file():
        raise InputError(
            f"{path}: file not found; expected the CUB-200-2011 layout (images.txt, bounding_boxes.txt, images/). "
            f"{raw_root_fix('cub')}"
        )
    rows = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if line.strip():
            rows.append((number, line.split()))
    return rows


def _image_id(field: str, path: Path, number: int, expected: str, seen: dict[int, int]) -> int:
    """The id of one line; an id already seen (at line seen[id]) is an error, not a silent overwrite."""
    try:
        image_id = int(field)
    except ValueError:
        raise InputError(
            f"{located(path, number)}: image id {field!r} is not an integer; expected lines like {expected!r}. "
            "Fix: restore the original file."
        ) from None
    if image_id in seen:
        raise InputError(f"{located(path, number)}: image id {image_id} is listed again (first at line "
                         f"{seen[image_id]}); expected each id once. Fix: restore the original file.")
    seen[image_id] = number
    return image_id


def parse_images_txt(path: Path) -> dict[int, str]:
    """image id -> path relative to `images/`."""
    expected = "1 001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg"
    images, seen = {}, {}
    for number, fields in _lines(path):
        if len(fields) != 2:
            raise InputError(
                f"{located(path, number)}: {len(fields)} fields; expected 'id relative_path' like {expected!r}. "
                "Fix: restore the original file."
            )
        images[_image_id(fields[0], path, number, expected, seen)] = fields[1]
    paths = list(images.values())
    if len(set(paths)) != len(paths):
        twice = next(p for p in paths if paths.count(p) > 1)
        raise InputError(f"{path}: image {twice!r} is listed under two ids; expected each image once. "
                         "Fix: restore the original file.")
    return images


def parse_bounding_boxes(path: Path) -> dict[int, tuple[float, float, float, float]]:
    """image id -> (x, y, width, height) in pixels of the original image."""
    expected = "1 60.0 27.0 325.0 304.0"
    boxes, seen = {}, {}
    for number, fields in _lines(path):
        try:
            x, y, width, height = (float(value) for value in fields[1:])  # ValueError unless exactly 4 numbers
            if not (math.isfinite(x) and math.isfinite(y) and 0 < width < math.inf and 0 < height < math.inf):
                raise ValueError
        except ValueError:
            raise InputError(
                f"{located(path, number)}: {' '.join(fields)!r} is not 'id x y width height' with finite "
                f"numbers and positive size; expected lines like {expected!r}. Fix: restore the original file."
            ) from None
        boxes[_image_id(fields[0], path, number, expected, seen)] = (x, y, width, height)
    return boxes


def square_box(x: float, y: float, width: float, height: float) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of the square with side max(width, height) centred on the box."""
    side = max(width, height)
    centre_x, centre_y = x + width / 2, y + height / 2
    return centre_x - side / 2, centre_y - side / 2, centre_x + side / 2, centre_y + side / 2


def read_cub(root: Path) -> list[tuple[str, tuple[float, float, float, float]]]:
    """(relative image path, square crop box) for every image, in image-id order."""
    root = Path(root)
    images = parse_images_txt(root / "images.txt")
    boxes = parse_bounding_boxes(root / "bounding_boxes.txt")
    if images.keys() != boxes.keys():
        missing = sorted(images.keys() ^ boxes.keys())[:5]
        raise InputError(
            f"{root / 'images.txt'} and {root / 'bounding_boxes.txt'} list different image ids (e.g. {missing}); "
            "expected one box per image. Fix: restore both files from the same CUB-200-2011 archive."
        )
    return [(f"{CUB_IMAGE_DIR}/{images[i]}", square_box(*boxes[i])) for i in sorted(images)]
