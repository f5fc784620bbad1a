"""Figure helpers: PNGs are written atomically and landmarks land where they belong."""

import numpy as np
from PIL import Image

from lead_hsr.report.figures import histogram_plot, image_grid, landmark_grid, line_plot


def _red_mask(png):
    pixels = np.asarray(Image.open(png).convert("RGB")).astype(int)
    return (pixels[..., 0] > 150) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80), pixels.shape[:2]


def test_landmarks_are_drawn_at_their_pixels(tmp_path):
    images = np.zeros((1, 32, 32, 3), np.uint8)  # black image: every red pixel is a landmark marker
    landmarks = np.array([[[24.0, 8.0], [np.nan, np.nan]]])  # top-right point, one absent landmark
    path = landmark_grid(images, landmarks, tmp_path / "fig" / "grid.png", ncols=1, cell_inches=2, dpi=50)
    red, (height, width) = _red_mask(path)
    assert red.any()
    rows, cols = np.nonzero(red)
    assert abs(cols.mean() / width - 24.5 / 32) < 0.06 and abs(rows.mean() / height - 8.5 / 32) < 0.06
    assert [p.name for p in path.parent.iterdir()] == ["grid.png"]  # no temporary file left behind


def test_ground_truth_drawn_in_green_and_grid_layout(tmp_path):
    rng = np.random.default_rng(0)
    images = (rng.random((5, 16, 16, 3)) * 60).astype(np.uint8)  # dark images
    points = rng.uniform(2, 14, (5, 5, 2))
    path = landmark_grid(images, points, tmp_path / "g.png", ground_truth=points + 1, ncols=3,
                         titles=[f"#{i}" for i in range(5)], dpi=40)
    pixels = np.asarray(Image.open(path).convert("RGB")).astype(int)
    assert ((pixels[..., 1] > 150) & (pixels[..., 0] < 80)).any()  # green ground-truth markers
    assert pixels.shape[1] > pixels.shape[0]  # 3 columns x 2 rows


def test_plain_grid_line_and_histogram(tmp_path):
    images = np.full((2, 8, 8, 3), 255, np.uint8)
    assert Image.open(image_grid(images, tmp_path / "i.png", ncols=2, dpi=30)).format == "PNG"
    t = np.linspace(0, 1, 5)
    line = line_plot({"SG2-ADA": (t, t ** 2, 0.1 * t), "+HSR": (t, t)}, tmp_path / "l.png", "t", "ALS",
                     ideal=(t, t), dpi=30)
    assert Image.open(line).size[0] > 50
    hist = histogram_plot({"a": rng_values(0), "b": rng_values(1)}, tmp_path / "h.png", "PPL", dpi=30)
    assert Image.open(hist).format == "PNG"


def rng_values(seed):
    return np.random.default_rng(seed).gamma(2.0, 10.0, 200)
