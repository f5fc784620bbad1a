"""LEAD figures (thesis Figs. 3.4-3.11): the cluster/t-SNE helpers recover constructed clusters, every figure
function writes a PNG whose size follows its layout and whose markers land in the right panels, and the figure
jobs run end to end on tiny stores, saved predictions and an untrained extractor."""
import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from lead_hsr.data.store import write_store
from lead_hsr.metrics import lead_figures as jobs
from lead_hsr.metrics.landmarks import save_predictions
from lead_hsr.report import lead_figures as lf

torch.set_num_threads(1)
DPI, CELL = 50, 1.0


def _pixels(path):
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def _layout_size(nrows, ncols, titled_rows, labels=True, cell=CELL, dpi=DPI):
    """Pixel size (width, height) of a panel grid whose `titled_rows` rows have a title band."""
    width = (lf.LABEL_COLUMN * labels + ncols) * cell * dpi
    height = (nrows + lf.TITLE_BAND * titled_rows) * cell * dpi
    return width, height


def _has_size(png_or_pixels, expected):
    # matplotlib truncates the pixel size: allow 1 px
    size = png_or_pixels.shape[1::-1] if isinstance(png_or_pixels, np.ndarray) else Image.open(png_or_pixels).size
    return all(abs(a - b) <= 1 for a, b in zip(size, expected))


def _blobs(seed=0, per=80, dim=64):
    """Three well separated Gaussian blobs; blob k sits at image height y = 10 * (2 - k) (blob 2 on top)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (3, dim)) * 6
    labels = np.repeat(np.arange(3), per)
    points = centres[labels] + rng.normal(0, 0.5, (3 * per, dim))
    positions = np.stack([rng.uniform(0, 5, 3 * per), 10.0 * (2 - labels) + rng.uniform(0, 1, 3 * per)], axis=1)
    return points, labels, positions


# ---- helpers --------------------------------------------------------------------------------------------------

def test_part_clusters_recover_blobs_numbered_top_down():
    points, labels, positions = _blobs()
    clusters = lf.fit_part_clusters(points, 3, seed=0, positions=positions)
    # part 0 = the top-most blob (blob 2), part 2 = the bottom one (blob 0): exact recovery, ordered by y
    np.testing.assert_array_equal(clusters.assign(points), 2 - labels)
    again = lf.fit_part_clusters(points, 3, seed=0, positions=positions)
    np.testing.assert_array_equal(again.assign(points), clusters.assign(points))  # deterministic
    unordered = lf.fit_part_clusters(points, 3, seed=0)
    parts = unordered.assign(points)
    assert all(len(set(parts[labels == k])) == 1 for k in range(3)) and len(set(parts)) == 3


def test_tsne_keeps_separable_clusters_apart():
    points, labels, _ = _blobs(seed=1, per=40)
    xy = lf.tsne_embedding(points, seed=0, perplexity=15)
    assert xy.shape == (120, 2)
    distance = np.linalg.norm(xy[:, None] - xy[None], axis=2)
    np.fill_diagonal(distance, np.inf)
    assert (labels[distance.argmin(axis=1)] == labels).mean() == 1.0  # every nearest neighbour in its blob
    centres = np.array([xy[labels == k].mean(axis=0) for k in range(3)])
    spread = max(np.linalg.norm(xy[labels == k] - centres[k], axis=1).max() for k in range(3))
    gaps = [np.linalg.norm(centres[a] - centres[b]) for a in range(3) for b in range(a + 1, 3)]
    assert min(gaps) > spread


def test_yaw_proxy_and_pose_spectrum():
    # 5-point faces: eyes at x = 10 and 20, nose at 15 + offset
    offsets = np.array([3.0, -4.0, 0.5, 1.0, -1.0, 5.0])
    landmarks = np.zeros((6, 5, 2))
    landmarks[:, 0, 0], landmarks[:, 1, 0] = 10, 20
    landmarks[:, 2, 0] = 15 + offsets
    yaw, what = jobs.head_yaw(pd.DataFrame(index=range(6)), landmarks, (0, 1))
    np.testing.assert_allclose(yaw, offsets / 10)
    assert "nose" in what
    reference, queries = jobs.pose_spectrum(yaw, 3)
    assert reference == 2  # the most frontal face
    np.testing.assert_array_equal(queries, [1, 3, 5])  # most negative, middle, most positive of the others
    yaw_col, what_col = jobs.head_yaw(pd.DataFrame({"yaw": np.arange(6.0)}), landmarks, (0, 1))
    assert what_col.startswith("yaw") and yaw_col[3] == 3.0


def test_luminance_and_brighten():
    dark = np.full((2, 4, 4, 3), 20, np.uint8)
    dark[1] = 60
    np.testing.assert_allclose(jobs.luminance(dark), [20 / 255, 60 / 255], rtol=1e-6)
    np.testing.assert_allclose(jobs.luminance(jobs.brighten(dark)), 0.45, atol=0.01)


# ---- drawing: layout and marker placement ---------------------------------------------------------------------

def test_landmark_rows_layout_and_marker_position(tmp_path):
    images = np.zeros((3, 20, 20, 3), np.uint8)
    points = np.full((3, 1, 2), np.nan)
    points[1, 0] = (15.0, 5.0)  # only row 2, panel 2 has a landmark: right, top of its panel
    rows = [{"label": "first", "images": list(images), "titles": ["a", "b", "c"]},
            {"label": "second", "images": list(images), "landmarks": points}]
    path = lf.landmark_rows(rows, tmp_path / "rows.png", cell_inches=CELL, marker_size=30, dpi=DPI)
    pixels = _pixels(path)
    assert _has_size(pixels, _layout_size(2, 3, titled_rows=1))
    coloured = (np.abs(pixels[..., 0] - pixels[..., 1]) > 60) | (np.abs(pixels[..., 1] - pixels[..., 2]) > 60)
    ys, xs = np.nonzero(coloured)
    cell = CELL * DPI
    panel_left = (lf.LABEL_COLUMN + 1) * cell
    row_top = (1 + lf.TITLE_BAND) * cell  # row 2 has no titles: its panel starts right below row 1
    assert abs(xs.mean() - (panel_left + 15.5 / 20 * cell)) < 3 and abs(ys.mean() - (row_top + 5.5 / 20 * cell)) < 3


def test_matching_figure_layout_blank_reference_column_and_colours(tmp_path):
    queries = np.zeros((3, 16, 16, 3), np.uint8)
    reference = np.zeros((16, 16, 3), np.uint8)
    truth = np.tile(np.array([[4.0, 4.0], [12.0, 12.0]]), (3, 1, 1))
    matches = {"LEAD": truth + 1, "CL": truth - 1}
    path = lf.matching_figure(reference, truth[0], queries, truth, matches, tmp_path / "m.png",
                              query_titles=["yaw -1", "yaw 0", "yaw +1"], cell_inches=CELL, dpi=DPI)
    pixels = _pixels(path)
    assert _has_size(pixels, _layout_size(3, 4, titled_rows=1))  # header row + one row per method; reference column
    cell = CELL * DPI
    row = (1 + lf.TITLE_BAND) * cell
    x0 = int(lf.LABEL_COLUMN * cell)
    blank = pixels[int(row) + 2:int(row + cell) - 2, x0 + 2:x0 + int(cell) - 2]
    assert (blank > 240).all()  # method rows leave the reference column empty
    first_colour = np.array(lf.part_colours(2)[0][:3]) * 255
    query = pixels[int(row):int(row + cell), x0 + int(cell):x0 + int(2 * cell)]
    close = np.abs(query - first_colour).sum(axis=2) < 60
    assert close.any()  # landmark 0 is drawn in its own colour in the LEAD row


def test_cluster_mask_figure_highlights_the_part(tmp_path):
    images = np.full((2, 16, 16, 3), 200, np.uint8)
    parts = np.zeros((2, 4, 4), int)
    parts[:, :, 2:] = 1  # left half part 0, right half part 1
    path = lf.cluster_mask_figure(images, parts, 3, tmp_path / "c.png", cell_inches=CELL, dpi=DPI)
    pixels = _pixels(path)
    assert _has_size(pixels, _layout_size(4, 2, titled_rows=0))  # image row + 3 part rows, 2 references
    cell = int(CELL * DPI)
    x0 = int(lf.LABEL_COLUMN * CELL * DPI)
    part0 = pixels[cell + 5:2 * cell - 5, x0 + 3:x0 + cell // 2 - 3]   # row "part 1", left half
    other = pixels[cell + 5:2 * cell - 5, x0 + cell // 2 + 3:x0 + cell - 3]  # right half: dimmed
    assert part0.mean() > other.mean() + 40
    assert (pixels[3 * cell + 5:4 * cell - 5, x0 + 3:x0 + cell - 3] < 100).all()  # part 3 is empty: all dimmed


def test_tsne_and_scale_figures(tmp_path):
    rng = np.random.default_rng(0)
    emb = {"LEAD": (rng.normal(size=(50, 2)), rng.integers(0, 9, 50)),
           "CL": (rng.normal(size=(50, 2)), rng.integers(0, 9, 50))}
    path = lf.tsne_figure(emb, 9, tmp_path / "t.png", panel_inches=2, dpi=DPI)
    assert _has_size(path, (2 * 2 * DPI, 2.5 * DPI))
    bins = [{"lo": 1.0, "hi": 1.5, "iod": 5.0, "n": 3, "seen": True},
            {"lo": 1.5, "hi": 2.0, "iod": None, "n": 0, "seen": False}]
    results = {"LEAD": {"bins": bins, "iod_seen": 5.0, "iod_unseen": None},
               "CL": {"bins": bins, "iod_seen": 6.0, "iod_unseen": 9.0}}
    assert Image.open(lf.scale_figure(results, tmp_path / "s.png", dpi=DPI)).format == "PNG"
    assert [p.name for p in tmp_path.iterdir()] and not list(tmp_path.glob(".tmp-*"))


# ---- figure jobs end to end -------------------------------------------------------------------------------------

def _face_store(path, n_test=8, size=24, zoom=False):
    rng = np.random.default_rng(3)
    n = 4 + n_test
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    images[-1] //= 8  # one dark test image
    landmarks = np.zeros((n, 5, 2), np.float32)
    landmarks[:, 0] = (8, 9)
    landmarks[:, 1] = (16, 9)
    landmarks[:, 2, 0] = 12 + np.linspace(-3, 3, n)  # yaw proxy spread
    landmarks[:, 2, 1] = 13
    landmarks[:, 3] = (9, 17)
    landmarks[:, 4] = (15, 17)
    table = {"file": [f"{i:03d}.jpg" for i in range(n)], "split": ["train"] * 4 + ["test"] * n_test}
    if zoom:
        table["zoom"] = np.linspace(1, 2, n)
    write_store(path, images, landmarks, pd.DataFrame(table), {"name": "tiny"})
    return landmarks[4:] - 2  # central-crop (crop 2) ground truth of the test split


def test_prediction_figure_jobs(tmp_path):
    truth = _face_store(tmp_path / "mafl")
    _face_store(tmp_path / "unaligned", zoom=True)
    for name in ("run", "scale_a", "scale_b"):
        metrics = tmp_path / name / "metrics.json"
        metrics.parent.mkdir()
        metrics.write_text(json.dumps({"bins": [{"lo": 1.0, "hi": 2.0, "iod": 1.0, "n": 4, "seen": True}]}))
        save_predictions(truth + 0.5, metrics)
    options = {"crop": 2, "images": 3}
    run = {"label": "MAFL", "store": tmp_path / "mafl", "metrics": tmp_path / "run" / "metrics.json",
           "dataset": "mafl"}
    png = jobs.regression_figure_job([run, {**run, "label": "again"}], tmp_path / "f37.png", options)
    assert _has_size(png, _layout_size(2, 3, titled_rows=2, cell=1.3, dpi=100))
    png = jobs.annotations_figure_job([{"label": "1 annotation", "metrics": run["metrics"]}], tmp_path / "mafl",
                                      "mafl", tmp_path / "f38.png", options)
    assert Image.open(png).size[0] > Image.open(png).size[1]
    png = jobs.low_light_figure_job(tmp_path / "mafl", run["metrics"], "mafl", tmp_path / "f311.png", options)
    assert Image.open(png).format == "PNG"
    scale_runs = {"LEAD": tmp_path / "scale_a" / "metrics.json", "CL": tmp_path / "scale_b" / "metrics.json"}
    assert Image.open(jobs.scale_figure_job(scale_runs, tmp_path / "f39.png")).format == "PNG"
    png = jobs.scale_examples_figure_job(scale_runs, tmp_path / "unaligned", "mafl_unaligned",
                                         tmp_path / "f310.png", options)
    assert Image.open(png).format == "PNG"
    (tmp_path / "scale_b" / "predictions.npy").unlink()
    with pytest.raises(Exception, match="predictions not found"):
        jobs.scale_examples_figure_job(scale_runs, tmp_path / "unaligned", "mafl_unaligned", tmp_path / "x.png",
                                       options)


def test_feature_figure_jobs_with_an_untrained_extractor(tmp_path):
    from lead_hsr.lead.dense_model import build_dense_model, save_dense_weights

    _face_store(tmp_path / "mafl", n_test=10, size=36)
    weights = str(save_dense_weights(tmp_path / "w.pt", "hypercolumn", "resnet18", {},
                                     build_dense_model("hypercolumn", "resnet18", {})))
    options = {"crop": 2, "device": "cpu", "seed": 0, "queries": 3, "images": 10, "feature_stride": 4,
               "clusters": 3, "kmeans_points": 200, "points": 60, "perplexity": 5, "references": 2}
    png = jobs.matching_figure_job({"A": weights, "B": weights}, tmp_path / "mafl", tmp_path / "f34.png", "mafl",
                                   options)
    assert _has_size(png, _layout_size(3, 4, titled_rows=1, cell=1.3, dpi=100))
    assert Image.open(jobs.tsne_figure_job({"A": weights}, tmp_path / "mafl", tmp_path / "f35.png",
                                           options)).format == "PNG"
    png = jobs.cluster_masks_figure_job(weights, tmp_path / "mafl", tmp_path / "f36.png", options)
    assert _has_size(png, _layout_size(4, 2, titled_rows=0, cell=1.1, dpi=100))
