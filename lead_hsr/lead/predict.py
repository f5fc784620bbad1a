"""Landmarks on a folder of your own images with an exported landmark model (docs/use_lead.md).

    python -m lead_hsr.lead.predict MODEL IMAGES --out predictions.csv [--boxes boxes.csv] [--overlays DIR]

IMAGES: a folder (searched recursively) or a .zip of images, as own-data stores read them. Each image is cropped
the way the model's store was prepared (`data.geometry.PredictionCrop`): without `--boxes`, the whole image
(square resize, centre square or the aligned-CelebA crop, as recorded in the model); with `--boxes`, one crop per
box row. Output: a CSV, one row per image (or per box), columns `file`, the box columns when boxes are given, then
`x_<name>,y_<name>` per landmark, in pixels (0-based, x right, y down) of the ORIGINAL image.

Box CSV: a header row naming `file,bbox_x0,bbox_y0,bbox_x1,bbox_y1` (other columns are ignored, so a prepared
store's table.csv works as it is) and an optional `zoom` (zoom-out of the box square, default 1); `file` relative to
IMAGES; one row per face (an image may have several). Boxes are in the convention of the model's store: a 300W
model takes bb_ground_truth boxes (1-based, inclusive), every other model 0-based x0, y0, x1 = x0 + width, ...
"""
from __future__ import annotations

import argparse
import csv
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lead_hsr.atomic import atomic_write_text
from lead_hsr.data.geometry import BOX_COLUMNS
from lead_hsr.data.images import load_rgb
from lead_hsr.data.prepare_folder import IMAGE_EXTENSIONS, open_images
from lead_hsr.data.readers.common import read_lines
from lead_hsr.errors import command, InputError, located
from lead_hsr.lead.landmark_model import PREDICT_CHUNK, LandmarkModel, load_landmark_model

ZOOM_COLUMN = "zoom"
BOX_FORMAT = f"a header row naming file,{','.join(BOX_COLUMNS)} (optional {ZOOM_COLUMN}), then one row per face"
IMAGES_FIX = f"Fix: pass a folder or .zip of {'/'.join(IMAGE_EXTENSIONS)} images."


@dataclass(frozen=True)
class Face:
    """One prediction to make: an image, and its box (None: the whole image) and zoom."""

    file: str
    box: tuple[float, float, float, float] | None = None
    zoom: float | None = None
    where: str = ""


def read_boxes(path, files: list[str] | None = None) -> list[Face]:
    """Parse a box CSV (module docstring); InputError at `file:line` for a malformed row or an unknown image."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: box file not found; expected a CSV with {BOX_FORMAT}.")
    known = set(files) if files is not None else None
    lines = read_lines(path)
    if not lines:
        raise InputError(f"{path}: empty; expected a CSV with {BOX_FORMAT}.")
    header = [name.strip() for name in next(csv.reader([lines[0][1]]))]
    missing = [name for name in ("file", *BOX_COLUMNS) if name not in header]
    if missing:
        raise InputError(f"{located(path, lines[0][0])}: header {header} lacks {missing}; expected {BOX_FORMAT}.")
    faces = []
    for number, line in lines[1:]:
        tokens = next(csv.reader([line], skipinitialspace=True))
        if len(tokens) != len(header):
            raise InputError(f"{located(path, number)}: {len(tokens)} values for {len(header)} header columns in "
                             f"{line!r}; expected {BOX_FORMAT}. Fix: one value per column.")
        row = dict(zip(header, tokens))
        faces.append(_face(row, path, number, line, known))
    if not faces:
        raise InputError(f"{path}: no box rows after the header; expected {BOX_FORMAT}.")
    return faces


def _face(row: dict, path: Path, number: int, line: str, known: set | None) -> Face:
    where = located(path, number)
    file = row["file"].strip()
    if known is not None and file not in known:
        raise InputError(f"{where}: image {file!r} is not among the images to predict on (names are relative to "
                         "the images folder/zip). Fix: correct the name or add the image.")
    columns = list(BOX_COLUMNS) + ([ZOOM_COLUMN] if row.get(ZOOM_COLUMN, "").strip() else [])
    try:
        values = [float(row[name]) for name in columns]
    except ValueError:
        raise InputError(f"{where}: malformed line {line!r}; expected numbers in {columns}.") from None
    if not all(math.isfinite(v) for v in values) or values[2] <= values[0] or values[3] <= values[1] or (
            len(values) == 5 and values[4] <= 0):
        raise InputError(f"{where}: box {values[:4]} in {line!r}; expected finite numbers with bbox_x1 > bbox_x0, "
                         "bbox_y1 > bbox_y0 (and zoom > 0). Fix: correct the box.")
    return Face(file, tuple(values[:4]), values[4] if len(values) == 5 else None, where)


def landmark_columns(names: list[str]) -> list[str]:
    return [f"{axis}_{name}" for name in names for axis in ("x", "y")]


def predict_faces(model: LandmarkModel, images, faces: list[Face], log_every_s: float = 30.0) -> list[dict]:
    """One output row per face, in `faces` order: file, the box columns when boxed, x_/y_ per landmark in original
    pixels. Crops of up to PREDICT_CHUNK faces (across images) go through the networks together."""
    rows, start, last_log = [], time.time(), time.time()
    columns = landmark_columns(model.landmark_names)
    for first in range(0, len(faces), PREDICT_CHUNK):
        chunk = faces[first:first + PREDICT_CHUNK]
        crops, affines, image, loaded = [], [], None, None
        for face in chunk:
            if face.file != loaded:  # faces of one image are consecutive in a box file: decode it once
                image, loaded = load_rgb(images.path(face.file), named_by=face.where or None), face.file
            crop, affine = model.prepare(image, face.box, face.zoom)
            crops.append(crop)
            affines.append(affine)
        for face, affine, crop_points in zip(chunk, affines, model.predict_crops(np.stack(crops))):
            box = dict(zip(BOX_COLUMNS, face.box)) if face.box is not None else {}
            rows.append({"file": face.file, **box,
                         **dict(zip(columns, affine.inverse(crop_points).reshape(-1).tolist()))})
        if time.time() - last_log > log_every_s:
            last_log = time.time()
            print(f"{len(rows)} / {len(faces)} faces, {len(rows) / (last_log - start):.1f} faces/s", file=sys.stderr)
    return rows


def write_predictions(rows: list[dict], out) -> Path:
    """The rows as one CSV, written atomically."""
    import pandas as pd

    return atomic_write_text(pd.DataFrame(rows).to_csv(index=False, float_format="%.4f"), out)


def read_predictions(path) -> list[dict]:
    """The rows of a predictions CSV (`write_predictions`)."""
    import pandas as pd

    return pd.read_csv(path, keep_default_na=False, dtype={"file": str}).to_dict("records")


def draw_overlays(rows: list[dict], images, out_dir) -> Path:
    """One PNG per image (`<out_dir>/<file>.png`) with every face's landmarks (and box) of `rows` drawn on it. The
    directory is drawn beside `out_dir` and moved into place whole (an earlier one is replaced)."""
    from lead_hsr.report.lead_figures import landmark_overlay  # matplotlib only when drawing

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{out_dir.name}-", dir=out_dir.parent))
    try:
        by_file: dict[str, list[dict]] = {}
        for row in rows:
            by_file.setdefault(str(row["file"]), []).append(row)
        for file, group in by_file.items():
            names = [column[2:] for column in group[0] if column.startswith("x_")]
            faces = [np.array([[row[f"x_{n}"], row[f"y_{n}"]] for n in names], dtype=np.float64) for row in group]
            boxes = [tuple(float(row[c]) for c in BOX_COLUMNS) if BOX_COLUMNS[0] in row else None for row in group]
            landmark_overlay(load_rgb(images.path(file)), faces, staging / f"{file}.png", boxes)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def run(model_path, images_path, out, boxes=None, overlays=None, device: str = "cpu") -> dict:
    """Predict and write `out` (and `overlays`/); returns counts and the wall time."""
    start = time.time()
    model = load_landmark_model(model_path, device)
    images = open_images(images_path, "predict", fix=IMAGES_FIX)
    try:
        faces = read_boxes(boxes, images.files) if boxes else [Face(file) for file in images.files]
        rows = predict_faces(model, images, faces)
        write_predictions(rows, out)
        if overlays:
            draw_overlays(rows, images, overlays)
    finally:
        images.close()
    return {"images": len({face.file for face in faces}), "faces": len(faces), "seconds": time.time() - start}


@command
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lead_hsr.lead.predict", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n\n", 1)[0] + "\n\n" + __doc__.split("\n\n", 2)[2])
    parser.add_argument("model", help="landmark model file (model.pt of export_landmark_model)")
    parser.add_argument("images", help="folder (recursive) or .zip of images")
    parser.add_argument("--out", required=True, help="CSV to write: file[, box], x_<name>, y_<name> per landmark")
    parser.add_argument("--boxes", help="face box CSV (file,bbox_x0,bbox_y0,bbox_x1,bbox_y1[,zoom]); default: "
                                        "the whole image")
    parser.add_argument("--overlays", help="directory to draw each image with its landmarks into (PNG per image)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    args = parser.parse_args(argv)
    done = run(args.model, args.images, args.out, args.boxes, args.overlays, args.device)
    print(f"{args.out}: {done['faces']} faces on {done['images']} images in {done['seconds']:.1f} s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
