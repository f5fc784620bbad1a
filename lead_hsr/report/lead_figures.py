"""Drawing and clustering helpers of the LEAD figures (thesis Figs. 3.4-3.11).

Everything here takes arrays and writes one PNG (atomically, `lead_hsr.report.figures.save_figure`); gathering
the arrays (stores, saved predictions, feature extraction, matching) is `lead_hsr.metrics.lead_figures`, so this
module stays torch-free (imports flow metrics -> report). Conventions as in `lead_hsr.report.figures`: images are
uint8 H x W x 3, landmarks (x, y) image pixels, NaN where absent.

Panels are laid out on a fixed grid (`cell_inches` per panel, an optional label column on the left, a title band
above each row that has titles), so a figure's pixel size follows from its layout (the tests rely on it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from lead_hsr.report.figures import PREDICTION_COLOR, save_figure

LABEL_COLUMN = 0.7      # width of the row-label column, as a fraction of a panel
TITLE_BAND = 0.22       # height of the title band above a row, as a fraction of a panel
MAX_COLOURED_LANDMARKS = 10  # up to this many landmarks get one colour each (correspondences readable)
PCA_DIM = 50            # features are reduced to this many dimensions before k-means and t-SNE


# ---- clustering / embedding -------------------------------------------------------------------------------

@dataclass
class PartClusters:
    """k-means parts of dense descriptors: PCA (to `PCA_DIM`) + k-means, clusters numbered top to bottom."""

    pca: object
    kmeans: object
    order: np.ndarray  # order[k] = k-means cluster shown as part k

    @property
    def n_clusters(self) -> int:
        return len(self.order)

    def assign(self, points: np.ndarray) -> np.ndarray:
        """Part index (0..n_clusters-1) of each row of `points` (N x C descriptors)."""
        raw = self.kmeans.predict(self.pca.transform(np.asarray(points, dtype=np.float32)))
        rank = np.empty_like(self.order)
        rank[self.order] = np.arange(len(self.order))
        return rank[raw]


def fit_part_clusters(points: np.ndarray, n_clusters: int, seed: int, positions: np.ndarray | None = None,
                      pca_dim: int = PCA_DIM) -> PartClusters:
    """k-means with `n_clusters` on N x C descriptors (deterministic for a seed).

    positions: N x 2 (x, y) of each descriptor in its image; when given, parts are numbered by the mean (y, x)
    of their members (top of the face first), so the same part gets the same number and colour in every figure.
    """
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    points = np.asarray(points, dtype=np.float32)
    if points.ndim != 2 or len(points) < n_clusters:
        raise ValueError(f"need an N x C array with N >= {n_clusters} points, got shape {points.shape}")
    pca = PCA(n_components=min(pca_dim, *points.shape), svd_solver="full", random_state=seed).fit(points)
    kmeans = KMeans(n_clusters=n_clusters, n_init=4, random_state=seed).fit(pca.transform(points))
    if positions is None:
        order = np.arange(n_clusters)
    else:
        positions = np.asarray(positions, dtype=np.float64)
        means = np.array([positions[kmeans.labels_ == k].mean(axis=0) for k in range(n_clusters)])
        order = np.lexsort((means[:, 0], means[:, 1]))  # by y, then x
    return PartClusters(pca, kmeans, order)


def tsne_embedding(points: np.ndarray, seed: int, perplexity: float = 30.0, pca_dim: int = PCA_DIM) -> np.ndarray:
    """2-D t-SNE of N x C descriptors (after PCA to `pca_dim`, the usual practice for high-dimensional inputs)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    points = np.asarray(points, dtype=np.float32)
    reduced = PCA(n_components=min(pca_dim, *points.shape), svd_solver="full", random_state=seed).fit_transform(points)
    perplexity = min(float(perplexity), (len(points) - 1) / 3.0)  # sklearn needs perplexity < N
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(reduced)


def part_colours(n: int) -> np.ndarray:
    """n distinct RGBA colours (tab10, then tab20) for clusters / landmarks."""
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return np.array([cmap(i % cmap.N) for i in range(n)])


# ---- panel grids ------------------------------------------------------------------------------------------

def _panel_grid(nrows: int, ncols: int, cell_inches: float, row_labels: list[str] | None, titles):
    """Figure with nrows x ncols image panels (+ a label column); returns (figure, axes[r][c], label_axes).

    titles: bool, or one bool per row: rows with titles get a band of TITLE_BAND panels above them."""
    bands = [TITLE_BAND if t else 0.0 for t in (titles if isinstance(titles, (list, tuple)) else [titles] * nrows)]
    label_w = LABEL_COLUMN if row_labels is not None else 0.0
    total_w, total_h = label_w + ncols, nrows + sum(bands)
    figure = plt.figure(figsize=(total_w * cell_inches, total_h * cell_inches))
    axes, labels = [], []
    top = 1.0
    for r in range(nrows):
        bottom = top - (1 + bands[r]) / total_h
        row = []
        for c in range(ncols):
            axis = figure.add_axes(((label_w + c) / total_w, bottom, 1 / total_w, 1 / total_h))
            axis.axis("off")
            row.append(axis)
        axes.append(row)
        if row_labels is not None:
            axis = figure.add_axes((0, bottom, label_w / total_w, 1 / total_h))
            axis.axis("off")
            axis.text(0.95, 0.5, row_labels[r], ha="right", va="center", fontsize=8, wrap=True,
                      transform=axis.transAxes)
            labels.append(axis)
        top = bottom
    return figure, axes, labels


def landmark_colours(k: int):
    """One colour per landmark for up to MAX_COLOURED_LANDMARKS, else the prediction colour for all."""
    return part_colours(k) if k <= MAX_COLOURED_LANDMARKS else np.array([PREDICTION_COLOR] * k, dtype=object)


def draw_landmarks(axis, image: np.ndarray, points=None, marker_size: float = 14, marker: str = "o") -> None:
    """Show one image with its (x, y) landmarks, coloured per landmark (absent = NaN points skipped)."""
    image = np.asarray(image)
    axis.imshow(image, interpolation="nearest")
    if points is not None:
        _scatter_landmarks(axis, points, marker_size, marker)
    axis.set_xlim(-0.5, image.shape[1] - 0.5)
    axis.set_ylim(image.shape[0] - 0.5, -0.5)


def _scatter_landmarks(axis, points, marker_size: float, marker: str = "o") -> None:
    xy = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    axis.scatter(xy[:, 0], xy[:, 1], s=marker_size, c=list(landmark_colours(len(xy))), marker=marker,
                 linewidths=0.4, edgecolors="white")


def landmark_rows(rows: list[dict], path: str | Path, cell_inches: float = 1.3, marker_size: float = 14,
                  dpi: int = 100) -> Path:
    """Rows of images with landmarks, one label per row, saved as one PNG.

    rows: [{"label": str, "images": [H x W x 3 | None (blank panel)], "landmarks": [K x 2 | None] | None,
    "titles": [str] | None, "marker": matplotlib marker (default "o")}]; rows may differ in length.
    """
    ncols = max(len(row["images"]) for row in rows)
    titles = [bool(row.get("titles")) for row in rows]
    figure, axes, _ = _panel_grid(len(rows), ncols, cell_inches, [row["label"] for row in rows], titles)
    for r, row in enumerate(rows):
        landmarks, names = row.get("landmarks"), row.get("titles")
        for c, image in enumerate(row["images"]):
            if image is None:
                continue
            draw_landmarks(axes[r][c], image, None if landmarks is None else landmarks[c], marker_size,
                           row.get("marker", "o"))
            if names and names[c]:
                axes[r][c].set_title(names[c], fontsize=7, pad=2)
    return save_figure(figure, path, dpi=dpi)


# ---- the figures ------------------------------------------------------------------------------------------

def matching_figure(reference: np.ndarray, reference_landmarks: np.ndarray, queries: np.ndarray,
                    query_landmarks: np.ndarray, matches: dict[str, np.ndarray], path: str | Path,
                    query_titles: list[str] | None = None, cell_inches: float = 1.3, dpi: int = 100) -> Path:
    """Fig. 3.4: the annotated reference (first panel) and the queries with their ground truth (first row),
    then one row per method with the landmarks it matched in each query (colour = landmark, as in the reference).

    queries: Q x H x W x 3; query_landmarks: Q x K x 2; matches: method -> Q x K x 2.
    """
    titles = ["reference", *(query_titles or [f"query {i + 1}" for i in range(len(queries))])]
    rows = [{"label": "annotated\n(ground truth)", "images": [reference, *queries],
             "landmarks": [reference_landmarks, *query_landmarks], "titles": titles}]
    rows += [{"label": method, "images": [None, *queries], "landmarks": [None, *points], "marker": "X"}
             for method, points in matches.items()]
    return landmark_rows(rows, path, cell_inches=cell_inches, marker_size=26, dpi=dpi)


def tsne_figure(embeddings: dict[str, tuple[np.ndarray, np.ndarray]], n_clusters: int, path: str | Path,
                panel_inches: float = 3.2, dpi: int = 100) -> Path:
    """Fig. 3.5: one t-SNE scatter per feature source, points coloured by their k-means part.

    embeddings: source label -> (N x 2 embedding, N part indices in 0..n_clusters-1).
    """
    colours = part_colours(n_clusters)
    figure, axes = plt.subplots(1, len(embeddings), figsize=(panel_inches * len(embeddings), panel_inches + 0.5),
                                squeeze=False)
    for axis, (label, (xy, parts)) in zip(axes[0], embeddings.items()):
        xy, parts = np.asarray(xy), np.asarray(parts)
        for k in range(n_clusters):
            member = parts == k
            axis.scatter(xy[member, 0], xy[member, 1], s=3, color=colours[k], label=f"part {k + 1}",
                         linewidths=0)
        axis.set_title(label, fontsize=9)
        axis.set_xticks([])
        axis.set_yticks([])
    handles, names = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, names, loc="lower center", ncol=min(n_clusters, 9), fontsize=7, markerscale=3,
                  frameon=False, handletextpad=0.1, columnspacing=0.8)
    figure.subplots_adjust(left=0.02, right=0.98, top=0.9, bottom=0.12, wspace=0.05)
    return save_figure(figure, path, dpi=dpi)


def cluster_mask_figure(images: np.ndarray, parts: np.ndarray, n_clusters: int, path: str | Path,
                        cell_inches: float = 1.1, alpha: float = 0.6, dpi: int = 100) -> Path:
    """Fig. 3.6: reference images (columns) and, one row per part, where that part's cluster lies on them.

    images: R x H x W x 3; parts: R x h x w part index per feature cell (upsampled to H x W by nearest).
    """
    images, parts = np.asarray(images), np.asarray(parts)
    height, width = images.shape[1:3]
    colours = part_colours(n_clusters)
    labels = ["image"] + [f"part {k + 1}" for k in range(n_clusters)]
    figure, axes, label_axes = _panel_grid(1 + n_clusters, len(images), cell_inches, labels, False)
    for c, (image, cells) in enumerate(zip(images, parts)):
        rows_idx = np.minimum((np.arange(height) * cells.shape[0]) // height, cells.shape[0] - 1)
        cols_idx = np.minimum((np.arange(width) * cells.shape[1]) // width, cells.shape[1] - 1)
        full = cells[rows_idx][:, cols_idx]
        axes[0][c].imshow(image, interpolation="nearest")
        for k in range(n_clusters):
            dimmed = (image.astype(np.float32) * 0.35).astype(np.uint8)
            overlay = np.where((full == k)[..., None],
                               (1 - alpha) * image + alpha * 255 * colours[k][:3], dimmed).astype(np.uint8)
            axes[1 + k][c].imshow(overlay, interpolation="nearest")
    for k, axis in enumerate(label_axes[1:]):
        axis.texts[0].set_color(colours[k])
    return save_figure(figure, path, dpi=dpi)


def scale_figure(results: dict[str, dict], path: str | Path, dpi: int = 100) -> Path:
    """Fig. 3.9: IOD error per zoom-out bin (grouped bars, one colour per method); unseen zooms shaded.

    results: method -> scale metrics (`lead_hsr.metrics.scale.zoom_bin_errors` output: bins, iod_seen, ...).
    """
    methods = list(results)
    bins = results[methods[0]]["bins"]
    figure, axis = plt.subplots(figsize=(1.2 + 1.1 * len(bins), 3.2))
    width = 0.8 / len(methods)
    x = np.arange(len(bins))
    for m, method in enumerate(methods):
        values = [b["iod"] if b["iod"] is not None else np.nan for b in results[method]["bins"]]
        seen, unseen = results[method].get("iod_seen"), results[method].get("iod_unseen")
        label = f"{method} (seen {seen:.2f}, unseen {unseen:.2f})" if seen is not None and unseen is not None \
            else method
        axis.bar(x + (m - (len(methods) - 1) / 2) * width, values, width, label=label)
    unseen_bins = [i for i, b in enumerate(bins) if not b["seen"]]
    if unseen_bins:
        axis.axvspan(min(unseen_bins) - 0.5, max(unseen_bins) + 0.5, color="0.9", zorder=0)
        axis.text(np.mean(unseen_bins), 0.97, "unseen zoom-outs", transform=axis.get_xaxis_transform(),
                  ha="center", va="top", fontsize=8)
    axis.set_xticks(x, [f"{b['lo']:g}-{b['hi']:g}\n(n={b['n']})" for b in bins], fontsize=8)
    axis.set_xlim(-0.5, len(bins) - 0.5)
    axis.set_xlabel("zoom-out factor")
    axis.set_ylabel("IOD error (%)")
    axis.legend(fontsize=7, loc="upper left")
    axis.set_ylim(0, np.nanmax([b["iod"] or 0 for r in results.values() for b in r["bins"]]) * 1.35 + 1e-9)
    figure.tight_layout()
    return save_figure(figure, path, dpi=dpi)


def landmark_overlay(image: np.ndarray, faces: list, path: str | Path, boxes: list | None = None,
                     dpi: int = 100) -> Path:
    """One image at its own pixel size with the landmarks of each face drawn on it (`faces`: K x 2 arrays in
    image pixels; `boxes`: (x0, y0, x1, y1) per face or None), saved as one PNG (`lead_hsr.lead.predict --overlays`)."""
    image = np.asarray(image)
    height, width = image.shape[:2]
    figure = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    axis = figure.add_axes((0, 0, 1, 1))
    axis.set_axis_off()
    marker_size = max(9.0, (min(height, width) / 40) ** 2)  # visible on thumbnails and on photos
    draw_landmarks(axis, image)
    for index, points in enumerate(faces):
        _scatter_landmarks(axis, points, marker_size)
        if boxes and boxes[index] is not None:
            x0, y0, x1, y1 = boxes[index]
            axis.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=PREDICTION_COLOR,
                                         linewidth=1))
    axis.set_xlim(-0.5, width - 0.5)
    axis.set_ylim(height - 0.5, -0.5)
    return save_figure(figure, path, dpi=dpi)
