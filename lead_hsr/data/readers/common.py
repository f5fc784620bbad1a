"""Shared helpers for the landmark-dataset readers: located errors, strict line parsing, the result type."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lead_hsr.data.layouts import raw_root_fix
from lead_hsr.errors import InputError, located


@dataclass
class Annotations:
    """Parsed annotations of one split: image files, landmarks and where each row came from."""

    files: list[str]  # image paths relative to the dataset root, POSIX separators
    landmarks: np.ndarray  # N x K x 2 float64, (x, y), 0-based pixels of the raw image
    where: list[str]  # "annotation_file:line" of each row, for error messages
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # boxes, sizes, ...

    def __len__(self) -> int:
        return len(self.files)


def missing(path: Path, dataset: str, layout: str) -> InputError:
    """Error for a missing raw file or folder: what, the expected layout, and where to get the dataset."""
    return InputError(
        f"{path}: not found. Expected layout under `raw.{dataset}.root`: {layout}. {raw_root_fix(dataset)}"
    )


def require_root(root, dataset: str, layout: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise missing(root, dataset, layout)
    return root


def require_file(path: Path, dataset: str, layout: str) -> Path:
    if not path.is_file():
        raise missing(path, dataset, layout)
    return path


def malformed(path, line: int | None, expected: str, got: str) -> InputError:
    shown = got if len(got) <= 120 else got[:117] + "..."
    return InputError(
        f"{located(path, line)}: malformed line {shown!r}; expected {expected}. "
        "Fix: restore the file from the dataset's official distribution."
    )


def read_text(path: Path) -> str:
    """The file as text (UTF-8, BOM tolerated); any other encoding is an InputError at `file:line`."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise InputError(
            f"{located(path, line)}: byte {data[error.start:error.start + 1]!r} at offset {error.start} is not "
            "UTF-8 text; expected the plain ASCII/UTF-8 file of the official distribution. Fix: restore the file, "
            "or re-encode it (e.g. `iconv -f latin1 -t utf-8`)."
        ) from None


def read_lines(path: Path) -> list[tuple[int, str]]:
    """(1-based line number, line) for every non-blank line; tolerates a UTF-8 BOM and CRLF endings."""
    text = read_text(path)
    if "\0" in text:
        raise InputError(f"{located(path, text[: text.index(chr(0))].count(chr(10)) + 1)}: a NUL byte in a text "
                         "file; expected plain text. Fix: restore the file from the dataset's official distribution.")
    return [(number, line) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]


def parse_numbers(tokens: list[str], path, line: int, expected: str, raw: str, kind=float) -> list:
    """Numbers of one line; text, nan and inf (which float() accepts) are malformed."""
    try:
        values = [kind(token) for token in tokens]
    except ValueError:
        raise malformed(path, line, expected, raw) from None
    if not all(math.isfinite(value) for value in values):
        raise malformed(path, line, expected + " (finite numbers: no nan or inf)", raw)
    return values


def check_unique(names: list[str], where: list[str], what: str) -> None:
    """InputError at the second row of the first name listed twice: one row per image, one image per row."""
    first: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in first:
            raise InputError(
                f"{where[index]}: {what} {name!r} is listed again (first at {where[first[name]]}); expected each "
                "image once. Fix: restore the file from the dataset's official distribution."
            )
        first[name] = index


def check_row_count(path: Path, declared: int, found: int) -> None:
    if declared != found:
        raise InputError(
            f"{path}: the first line declares {declared} rows but the file has {found}. "
            "Fix: the file is truncated or edited; restore it from the dataset's official distribution."
        )


# How far a landmark may sit outside its image before we call the annotation wrong. Real 300W/AFLW
# annotations put occluded points slightly past the border; swapped (x, y), wrong scale or wrong files
# land far outside.
OUTSIDE_TOLERANCE = 0.1  # fraction of the image side


def check_inside(landmarks: np.ndarray, height: int, width: int, where: str, image: str) -> None:
    """InputError naming the annotation row and image when a landmark lies outside the image."""
    points = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    margin_x, margin_y = OUTSIDE_TOLERANCE * width, OUTSIDE_TOLERANCE * height
    x, y = points[:, 0], points[:, 1]
    bad = (x < -margin_x) | (x > width - 1 + margin_x) | (y < -margin_y) | (y > height - 1 + margin_y)
    if np.any(bad):
        index = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{where}: landmark {index} at (x={x[index]:.1f}, y={y[index]:.1f}) lies outside its image {image} "
            f"({width} x {height} px). Expected 0-based (x, y) pixel coordinates inside the image. "
            "Fix: check that the annotation file matches the images (right file, right dataset version)."
        )
