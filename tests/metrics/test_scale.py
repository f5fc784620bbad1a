"""Scale sensitivity (thesis Figs. 3.9/3.10): zoom-out protocol constants, zoom binning, the zoom-out crop,
and one tiny end-to-end scale run (regressor fitted, predictions saved, per-bin errors written)."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

from lead_hsr.data import geometry
from lead_hsr.data.store import write_store
from lead_hsr.errors import InputError
from lead_hsr.metrics import scale
from lead_hsr.metrics.landmarks import load_predictions, predictions_path

torch.set_num_threads(1)


def test_zoom_protocol_constants():
    # thesis §3.3.4: train zoom-out U(1, 1.5), test U(1, 2); seen = the training range, unseen = the rest
    assert geometry.ZOOM_RANGE_TRAIN == (1.0, 1.5) and geometry.ZOOM_RANGE_TEST == (1.0, 2.0)
    assert scale.SEEN_ZOOM == (1.0, 1.5) and scale.UNSEEN_ZOOM == (1.5, 2.0)
    np.testing.assert_allclose(scale.zoom_bin_edges(), [1.0, 1.25, 1.5, 1.75, 2.0])
    np.testing.assert_allclose(scale.zoom_bin_edges(0.5), [1.0, 1.5, 2.0])
    with pytest.raises(InputError):
        scale.zoom_bin_edges(0.3)  # does not divide the range: 1.5 would not be an edge


def test_zoom_binning_on_constructed_errors():
    zooms = np.array([1.0, 1.1, 1.3, 1.49, 1.5, 1.6, 1.8, 2.0])
    errors = np.array([1.0, 3.0, 5.0, 7.0, 10.0, 20.0, 30.0, 40.0])
    out = scale.zoom_bin_errors(errors, zooms)
    assert [b["n"] for b in out["bins"]] == [2, 2, 2, 2]  # [1, 1.25) [1.25, 1.5) [1.5, 1.75) [1.75, 2]
    assert [b["iod"] for b in out["bins"]] == [2.0, 6.0, 15.0, 35.0]
    assert [b["seen"] for b in out["bins"]] == [True, True, False, False]
    assert out["iod_seen"] == pytest.approx(4.0) and out["iod_unseen"] == pytest.approx(25.0)
    assert (out["n_seen"], out["n_unseen"]) == (4, 4)
    empty = scale.zoom_bin_errors(errors[:2], zooms[:2])
    assert empty["bins"][3]["iod"] is None and empty["iod_unseen"] is None
    with pytest.raises(InputError):
        scale.zoom_bin_errors([1.0], [2.5])  # outside the test range: wrong protocol


def test_zoom_out_crop_moves_landmarks_where_expected():
    """A box of side 40 at (30, 30): zoom z takes a window of side 40 z around its centre (50, 50), resized."""
    image = np.zeros((120, 120, 3), np.uint8)
    box = (30, 30, 40, 40)
    points = np.array([[50.0, 50.0], [30.0, 30.0], [70.0, 50.0]])  # centre, box corner, right edge
    for zoom, size in ((1.0, 40), (1.5, 60), (2.0, 80)):
        _, moved = geometry.zoomed_box_crop(image, points, box, zoom, size=80)
        scale_factor = 80 / size
        expected = (points - (50 - size / 2)) * scale_factor
        np.testing.assert_allclose(moved, expected, atol=1e-9)
    # zooming out shrinks the face: the box corner moves towards the centre of the output
    _, near = geometry.zoomed_box_crop(image, points, box, 1.0, size=80)
    _, far = geometry.zoomed_box_crop(image, points, box, 2.0, size=80)
    assert np.linalg.norm(far[1] - far[0]) == pytest.approx(np.linalg.norm(near[1] - near[0]) / 2)


def _tiny_unaligned_store(path, n_train=12, n_test=8, size=40):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n_train + n_test, size, size, 3), dtype=np.uint8)
    landmarks = np.stack([rng.uniform(10, 30, (n_train + n_test)) for _ in range(10)], axis=1).reshape(-1, 5, 2)
    landmarks[:, 1, 0] = landmarks[:, 0, 0] + 8  # eyes apart: a valid inter-ocular distance
    zooms = np.concatenate([rng.uniform(1, 1.5, n_train), np.linspace(1.0, 2.0, n_test)])
    table = pd.DataFrame({"file": [f"{i}.jpg" for i in range(n_train + n_test)],
                          "split": ["train"] * n_train + ["test"] * n_test, "zoom": zooms})
    write_store(path, images, landmarks.astype(np.float32), table, {"name": "mafl_unaligned"})
    return zooms[n_train:]


def test_scale_run_writes_bins_and_predictions(tmp_path):
    from lead_hsr.lead.dense_model import build_dense_model, save_dense_weights

    test_zooms = _tiny_unaligned_store(tmp_path / "store")
    weights = save_dense_weights(tmp_path / "w.pt", "hypercolumn", "resnet18", {},
                                 build_dense_model("hypercolumn", "resnet18", {}))
    out = tmp_path / "run" / "metrics.json"
    options = {"crop": 4, "steps": 3, "fewshot_steps": 1, "device": "cpu", "feature_stride": 4,
               "regressor": {"n_intermediate": 2, "batch_size": 4}}
    metrics = scale.scale_run(weights, tmp_path / "store", out, "mafl_unaligned", options)
    assert json.loads(out.read_text()) == json.loads(json.dumps(metrics))
    pred = load_predictions(out, n_test=8)
    assert pred.shape == (8, 5, 2) and predictions_path(out).name == "predictions.npy"
    assert [b["n"] for b in metrics["bins"]] == [2, 2, 2, 2] and metrics["n_unseen"] == 4
    assert metrics["zoom_train"] == [1.0, 1.5] and metrics["iod"] > 0  # the regression metrics are kept
    # the bins are the per-image errors of the saved predictions, grouped by the store's zoom column
    from lead_hsr.metrics.iod import iod_errors
    store_lm = np.load(tmp_path / "store" / "landmarks.npy")[12:] - 4
    expected = scale.zoom_bin_errors(iod_errors(pred, store_lm, (0, 1)), test_zooms)
    assert metrics["bins"] == expected["bins"]


def test_store_without_zoom_column_is_named(tmp_path):
    rng = np.random.default_rng(1)
    table = pd.DataFrame({"file": ["a.jpg", "b.jpg"], "split": ["train", "test"]})
    write_store(tmp_path / "s", rng.integers(0, 255, (2, 16, 16, 3), dtype=np.uint8),
                rng.uniform(0, 16, (2, 5, 2)).astype(np.float32), table, {"name": "mafl"})
    from lead_hsr.data.store import open_store
    with pytest.raises(InputError, match="zoom"):
        scale.zoomed_test_split(open_store(tmp_path / "s"), 2)
