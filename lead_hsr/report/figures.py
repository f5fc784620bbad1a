"""Small shared matplotlib helpers for the thesis figures: headless (Agg), atomic PNG saves, image grids.

Images are uint8 H x W x 3 (or float in [0, 1]); landmarks are (x, y) in image pixels, NaN where absent,
the convention of the prepared store.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures are built by batch jobs without a display

import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
import numpy as np  # noqa: E402

from lead_hsr.atomic import atomic_write_with  # noqa: E402

PREDICTION_COLOR = "#ff0000"  # predicted landmarks
GROUND_TRUTH_COLOR = "#00ff00"  # ground-truth landmarks (when drawn as well)


def save_figure(figure, path: str | Path, dpi: int = 100) -> Path:
    """Save as PNG through a temporary sibling + rename (no half-written PNG), then close the figure."""
    try:
        return atomic_write_with(path, lambda handle: figure.savefig(handle, format="png", dpi=dpi))
    finally:
        plt.close(figure)


def _grid_axes(count: int, ncols: int, cell_inches: float, title_space: bool):
    ncols = max(1, min(ncols, count))
    nrows = -(-count // ncols)
    height = cell_inches * (1.2 if title_space else 1.0)
    figure, axes = plt.subplots(nrows, ncols, figsize=(ncols * cell_inches, nrows * height), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    return figure, axes.flat


def image_grid(images, path: str | Path, ncols: int = 8, titles: list[str] | None = None,
               cell_inches: float = 1.5, dpi: int = 100) -> Path:
    """Images in a grid (row-major), optional per-image titles."""
    return landmark_grid(images, None, path, ncols=ncols, titles=titles, cell_inches=cell_inches, dpi=dpi)


def landmark_grid(images, landmarks, path: str | Path, ground_truth=None, ncols: int = 8,
                  titles: list[str] | None = None, cell_inches: float = 1.5, marker_size: float = 12,
                  dpi: int = 100) -> Path:
    """Images with landmarks drawn on them (red), and optional ground truth (green), saved as one PNG.

    images: N x H x W x 3; landmarks, ground_truth: N x K x 2 (x, y) pixels or None.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be N x H x W x 3, got {images.shape}")
    figure, axes = _grid_axes(len(images), ncols, cell_inches, titles is not None)
    for index, (axis, image) in enumerate(zip(axes, images)):
        axis.imshow(image, interpolation="nearest")
        for points, color in ((landmarks, PREDICTION_COLOR), (ground_truth, GROUND_TRUTH_COLOR)):
            if points is not None:
                xy = np.asarray(points[index], dtype=np.float64).reshape(-1, 2)
                axis.scatter(xy[:, 0], xy[:, 1], s=marker_size, c=color, marker="o", linewidths=0)
        axis.set_xlim(-0.5, image.shape[1] - 0.5)
        axis.set_ylim(image.shape[0] - 0.5, -0.5)  # image coordinates: y grows downwards
        if titles is not None:
            axis.set_title(titles[index], fontsize=7)
    figure.subplots_adjust(left=0, right=1, bottom=0, top=0.92 if titles is not None else 1, wspace=0.02,
                           hspace=0.15 if titles is not None else 0.02)
    return save_figure(figure, path, dpi=dpi)


def line_plot(series: dict[str, tuple], path: str | Path, xlabel: str, ylabel: str, title: str | None = None,
              ideal: tuple | None = None, dpi: int = 100) -> Path:
    """One line per label: series = {label: (x, y)} or {label: (x, y, y_std)} (std drawn as a band).

    `ideal` = (x, y) draws a dotted reference line (e.g. the straight line of the ALS figure).
    """
    figure, axis = plt.subplots(figsize=(4, 3))
    for label, values in series.items():
        x, y = np.asarray(values[0], dtype=float), np.asarray(values[1], dtype=float)
        axis.plot(x, y, marker="o", markersize=3, label=label)
        if len(values) > 2:
            std = np.asarray(values[2], dtype=float)
            axis.fill_between(x, y - std, y + std, alpha=0.2)
    if ideal is not None:
        axis.plot(ideal[0], ideal[1], linestyle=":", color="black", label="ideal")
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    if title:
        axis.set_title(title)
    axis.legend(fontsize=7)
    figure.tight_layout()
    return save_figure(figure, path, dpi=dpi)


def histogram_plot(samples: dict[str, np.ndarray], path: str | Path, xlabel: str, bins: int = 50,
                   title: str | None = None, dpi: int = 100) -> Path:
    """Overlaid histograms (e.g. the per-sample PPL distributions of Fig. 4.2)."""
    figure, axis = plt.subplots(figsize=(4, 3))
    for label, values in samples.items():
        axis.hist(np.asarray(values, dtype=float), bins=bins, alpha=0.5, label=label)
    axis.set_xlabel(xlabel)
    axis.set_ylabel("count")
    if title:
        axis.set_title(title)
    axis.legend(fontsize=7)
    figure.tight_layout()
    return save_figure(figure, path, dpi=dpi)
