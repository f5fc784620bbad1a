"""Geometry: protocol constants, and landmarks that stay on their drawn feature through every transform."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from lead_hsr.data import geometry as g
from lead_hsr.errors import InputError

FAST = settings(max_examples=25, deadline=None)


def test_protocol_constants():
    assert (g.RESIZE, g.CROP, g.PAPER_GEOMETRY.crop_size) == (136, 20, 96)
    assert g.NORM_MEAN == (0.5084, 0.4224, 0.3769) and g.NORM_STD == (0.2599, 0.2371, 0.2323)
    assert g.CELEBA_ALIGNED_CROP == (30, 0, 178, 178)
    assert (g.W300_BOX_WIDTH, g.W300_WINDOW) == (52, 100)
    assert g.ZOOM_RANGE_TRAIN == (1.0, 1.5) and g.ZOOM_RANGE_TEST == (1.0, 2.0)
    assert g.Geometry.from_config({"resize": 88, "crop": 12}).crop_size == 64  # demo geometry


def test_bad_geometry_config():
    with pytest.raises(InputError, match="resize - 2\\*crop >= 8"):
        g.Geometry.from_config({"resize": 20, "crop": 10})
    with pytest.raises(InputError, match="unknown keys"):
        g.Geometry.from_config({"size": 3})


def _blob_image(height, width, points, radius=2):
    """Black image with a white square of side 2*radius+1 centred on each (integer) point."""
    image = np.zeros((height, width, 3), np.uint8)
    for x, y in points:
        image[max(y - radius, 0):y + radius + 1, max(x - radius, 0):x + radius + 1] = 255
    return image


def _centroid(image, near, window):
    """Brightness centroid of the blob around `near` (searching a window of half-size `window`)."""
    x0, y0 = int(max(round(near[0]) - window, 0)), int(max(round(near[1]) - window, 0))
    patch = image[y0:int(round(near[1])) + window + 1, x0:int(round(near[0])) + window + 1, 0].astype(float)
    ys, xs = np.mgrid[y0:y0 + patch.shape[0], x0:x0 + patch.shape[1]]
    return np.array([(xs * patch).sum() / patch.sum(), (ys * patch).sum() / patch.sum()])


@FAST
@given(h=st.integers(30, 80), w=st.integers(30, 80), px=st.integers(5, 24), py=st.integers(5, 24),
       dy=st.integers(3, 36), dx=st.integers(3, 36))
def test_crop_keeps_landmark_on_feature(h, w, px, py, dy, dx):
    top, left = py - dy, px - dx  # window may start outside the image (zero padding), blob stays inside it
    image = _blob_image(h, w, [(px, py)])
    out, moved = g.crop(image, [[px, py]], top, left, 40, 40)
    assert out.shape == (40, 40, 3)
    np.testing.assert_allclose(_centroid(out, moved[0], 4), moved[0], atol=1e-9)


@FAST
@given(h=st.integers(40, 120), w=st.integers(40, 120), out_h=st.integers(30, 150), out_w=st.integers(30, 150),
       fx=st.floats(0.25, 0.75), fy=st.floats(0.25, 0.75))
def test_resize_keeps_landmark_on_feature(h, w, out_h, out_w, fx, fy):
    point = (int(fx * w), int(fy * h))
    image = _blob_image(h, w, [point], radius=3)
    out, moved = g.resize(image, [point], out_h, out_w)
    assert out.shape == (out_h, out_w, 3)
    scale = np.array([out_w / w, out_h / h])
    # DVE convention x' = x*s is off the exact pixel-centre mapping by 0.5*|1 - s| (module docstring)
    tolerance = 0.5 * np.abs(1 - scale) + 0.35
    window = int(np.ceil(4 * scale.max())) + 2
    assert np.all(np.abs(_centroid(out, moved[0], window) - moved[0]) <= tolerance)


def test_celeba_aligned_matches_protocol_formula():
    image = _blob_image(218, 178, [(69, 109)], radius=3)
    out, moved = g.celeba_aligned(image, [[69, 109]], 136)
    expected = np.array([69 * 136 / 178, (109 - 30) * 136 / 178])  # DESIGN 4.1: (x, y - 30) * 136/178
    np.testing.assert_allclose(moved[0], expected)
    assert out.shape == (136, 136, 3)
    assert np.all(np.abs(_centroid(out, moved[0], 8) - expected) < 0.5)


def _dve_300w_reference(landmark0, box, image_w, image_h):
    """Independent 1-based transcription of the DVE/MATLAB 300W arithmetic (for one landmark)."""
    xmin, ymin, xmax, ymax = box
    bw, bh = xmax - xmin + 1, ymax - ymin + 1
    bcx, bcy = xmin + (bw + 1) / 2, ymin + (bh + 1) / 2
    fac = 52 / bw
    bx = int(np.floor(fac * bcx) - 26 + 1 - 24)
    by = int(np.floor(fac * bcy) - 26 + 1 - 24 - 2)
    kp1 = np.array(landmark0) + 1  # to MATLAB 1-based
    kp = np.array([kp1[0] * fac - (bx - 1), kp1[1] * fac - (by - 1)]) - 1
    return kp * 136 / 100


@FAST
@given(bw=st.integers(40, 90), bx=st.integers(0, 60), by=st.integers(0, 60), fx=st.floats(0.2, 0.8),
       fy=st.floats(0.2, 0.8))
def test_w300_box_crop_matches_dve_and_feature(bw, bx, by, fx, fy):
    h, w = 160, 170
    box = (bx + 1, by + 1, bx + bw, by + bw)  # 1-based inclusive, a bw x bw box
    point = (bx + int(fx * bw), by + int(fy * bw))
    image = _blob_image(h, w, [point], radius=4)
    out, moved = g.w300_box_crop(image, [point], box, 136)
    assert out.shape == (136, 136, 3)
    np.testing.assert_allclose(moved[0], _dve_300w_reference(point, box, w, h), atol=1e-9)
    assert np.all(np.abs(_centroid(out, moved[0], 10) - moved[0]) < 1.2)


@FAST
@given(zoom=st.floats(1.0, 2.0), x=st.integers(-10, 60), y=st.integers(-10, 60), bw=st.integers(30, 60),
       bh=st.integers(30, 60))
def test_zoomed_box_crop_keeps_feature(zoom, x, y, bw, bh):
    point = (min(max(x + bw // 2, 4), 115), min(max(y + bh // 2, 4), 95))
    image = _blob_image(100, 120, [point], radius=3)
    out, moved = g.zoomed_box_crop(image, [point], (x, y, bw, bh), zoom, 64)
    assert out.shape == (64, 64, 3)
    assert np.all(np.abs(_centroid(out, moved[0], 6) - moved[0]) < 0.8)


def test_central_crop_numpy_and_torch():
    images = np.arange(2 * 10 * 10 * 3, dtype=np.uint8).reshape(2, 10, 10, 3)
    landmarks = np.full((2, 5, 2), 4.0)
    cropped, moved = g.central_crop(images, landmarks, 2)
    assert cropped.shape == (2, 6, 6, 3) and np.all(moved == 2.0)
    np.testing.assert_array_equal(cropped[:, 0, 0], images[:, 2, 2])
    tensors = torch.as_tensor(images).permute(0, 3, 1, 2)
    cropped_t, _ = g.central_crop(tensors, torch.as_tensor(landmarks), 2, channels_last=False)
    assert tuple(cropped_t.shape) == (2, 3, 6, 6)
    assert g.central_crop(images, None, 2)[1] is None  # stores without landmarks


def test_normalize_images_against_manual_formula():
    images = np.random.default_rng(0).integers(0, 256, (2, 4, 5, 3), dtype=np.uint8)
    out = g.normalize_images(images)
    manual = (images.astype(np.float64) / 255 - np.array(g.NORM_MEAN)) / np.array(g.NORM_STD)
    np.testing.assert_allclose(out.permute(0, 2, 3, 1).numpy(), manual, atol=1e-5)


def test_inside_and_zoom_sampling():
    assert g.inside([[0, 0], [9.4, 9.4], [10, 3], [np.nan, np.nan]], 10, 10).tolist() == [True, True, False, True]
    rng = np.random.default_rng(0)
    train = [g.sample_zoom(rng, "train") for _ in range(500)]
    test = [g.sample_zoom(rng, "test") for _ in range(500)]
    assert 1.0 <= min(train) and max(train) <= 1.5 and max(train) > 1.45
    assert max(test) > 1.9 and max(test) <= 2.0


@pytest.mark.parametrize("whole_image,box_crop,box,zoom", [
    ("resize", "zoom", None, None), ("centre_crop", "zoom", None, None), ("celeba_aligned", "zoom", None, None),
    ("resize", "zoom", (30, 40, 110, 130), 1.3), ("resize", "w300", (30, 40, 110, 130), None)])
def test_prediction_crop_maps_landmarks_forward_and_back(whole_image, box_crop, box, zoom):
    """A landmark drawn on a new image lands where the crop's affine map sends it, and maps back exactly."""
    geometry = g.Geometry(88, 12)
    point = np.array([[70.0, 95.0]])  # inside every crop above
    image = _blob_image(218, 178, [tuple(point[0].astype(int))], radius=4)
    crop, affine = g.PredictionCrop(whole_image, box_crop).apply(image, geometry, box, zoom)
    assert crop.shape == (64, 64, 3) and crop.flags["C_CONTIGUOUS"]
    forward = affine.forward(point)
    # the blob's centre in the crop, within the DVE scaling convention's half-pixel (geometry module docstring)
    assert np.all(np.abs(_centroid(crop, forward[0], 6) - forward[0]) <= 0.5 * np.abs(1 - np.array(affine.scale)) + 0.4)
    np.testing.assert_allclose(affine.inverse(forward), point, atol=1e-9)
    # the map is the one the store preparers apply to their landmarks (then the central crop)
    _, moved = g.PredictionCrop(whole_image, box_crop).transform(box, zoom, 88)(image, point)
    np.testing.assert_allclose(forward, moved - 12, atol=1e-9)


def test_prediction_crop_of_each_store():
    assert g.PredictionCrop.for_store("w300") == g.PredictionCrop("resize", "w300")
    assert g.PredictionCrop.for_store("mafl") == g.PredictionCrop("celeba_aligned", "zoom")
    assert g.PredictionCrop.for_store("image_folder", {"transform": "centre_crop"}).whole_image == "centre_crop"
    with pytest.raises(InputError, match="no prediction crop for stores of preparer 'ffhq'"):
        g.PredictionCrop.for_store("ffhq")
    with pytest.raises(InputError, match="damaged"):
        g.PredictionCrop("fisheye", "zoom")
