"""A regression run exported as one landmark model file: loadable with weights_only, its error on the store's test
split equal to the run's metrics.json, predictions on image files in their own pixels, and the named errors."""
import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from lead_hsr.data.store import write_store
from lead_hsr.errors import InputError
from lead_hsr.lead.landmark_model import FORMAT, load_landmark_model, read_landmark_payload
from lead_hsr.lead.predict import main as predict_main, read_boxes, run as predict_run
from lead_hsr.metrics.landmark_model import CARD_FILE, check, export
from lead_hsr.metrics.landmarks import load_predictions, regression_runs
from tiny_data import random_teacher

SIZE, CROP, K, N_TRAIN, N_TEST = 40, 4, 5, 16, 8


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny own-data store (square resize), random-init features, one all-annotation regression run, exported."""
    root = tmp_path_factory.mktemp("landmark_model")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (N_TRAIN + N_TEST, SIZE, SIZE, 3), dtype=np.uint8)
    points = rng.uniform(SIZE / 4, 3 * SIZE / 4, (N_TRAIN + N_TEST, K, 2)).astype(np.float32)
    table = pd.DataFrame({"file": [f"{i:03d}.png" for i in range(N_TRAIN + N_TEST)],
                          "split": ["train"] * N_TRAIN + ["test"] * N_TEST})
    write_store(root / "store", images, points, table, {"name": "tiny", "preparer": "image_folder",
                                                        "options": {"transform": "resize"}})
    random_teacher(root / "store", root / "weights.pt", crop=SIZE - 2 * CROP, bn_images=16)
    metrics = root / "run" / "metrics.json"
    regression_runs(root / "weights.pt", root / "store", "mafl", {("all", 0): metrics},
                    {"crop": CROP, "steps": 6, "fewshot_steps": 4, "device": "cpu", "feature_stride": 4,
                     "regressor": {"batch_size": 8}})
    export(root / "weights.pt", metrics, root / "store", root / "model" / "model.pt", "mafl",
           {"resize": SIZE, "crop": CROP}, "tiny", ["config/demo.yaml"])
    test_dir = root / "images"
    test_dir.mkdir()
    for i in range(N_TRAIN, N_TRAIN + N_TEST):  # the test images as files of their own (SIZE x SIZE)
        Image.fromarray(images[i]).save(test_dir / table["file"][i])
    return root


def test_export_is_one_weights_only_file_with_its_card(run):
    payload = torch.load(run / "model" / "model.pt", weights_only=True)
    assert payload["format"] == FORMAT and payload["features"]["kind"] == "hypercolumn"
    assert payload["regressor"]["config"]["n_landmarks"] == K and payload["normaliser"] == {"pair": [0, 1]}
    assert payload["geometry"]["input_size"] == SIZE - 2 * CROP and payload["prediction_crop"]["whole_image"] == "resize"
    recorded = json.loads((run / "run" / "metrics.json").read_text())["iod"]
    assert payload["provenance"]["test_error"] == recorded and payload["provenance"]["annotations"] == "all"
    assert len(payload["provenance"]["sources_sha256"]) == 3
    card = (run / "model" / CARD_FILE).read_text()
    assert f"{recorded:.4f}" in card and "config/demo.yaml" in card and not list((run / "model").glob(".tmp*"))


def test_exported_model_reproduces_the_regression_run(run):
    """The key check: the exported file alone gives the run's predictions.npy and its metrics.json error."""
    result = check(run / "model" / "model.pt", run / "store")
    assert result["n_test"] == N_TEST and result["error"] == pytest.approx(result["recorded"], abs=1e-5)
    model = load_landmark_model(run / "model" / "model.pt")
    crops = np.stack([model.prepare(np.asarray(Image.open(run / "images" / f"{i:03d}.png")))[0]
                      for i in range(N_TRAIN, N_TRAIN + N_TEST)])
    np.testing.assert_allclose(model.predict_crops(crops), load_predictions(run / "run" / "metrics.json"), atol=1e-5)


def test_predict_command_writes_landmarks_in_original_pixels(run, tmp_path):
    """Whole images (SIZE px: the square resize is the identity) and a box CSV of the whole image (zoom 1) both give
    the run's crop predictions shifted by the crop margin; overlays are one PNG per image."""
    expected = load_predictions(run / "run" / "metrics.json") + CROP
    assert predict_main([str(run / "model" / "model.pt"), str(run / "images"), "--out", str(tmp_path / "p.csv"),
                         "--overlays", str(tmp_path / "overlays")]) == 0
    table = pd.read_csv(tmp_path / "p.csv", dtype={"file": str})
    columns = [c for c in table.columns if c != "file"]
    assert columns == [f"{axis}_{n}" for n in range(1, K + 1) for axis in "xy"]  # own data: landmarks numbered
    np.testing.assert_allclose(table[columns].to_numpy().reshape(-1, K, 2), expected, atol=1e-3)
    assert sorted(p.name for p in (tmp_path / "overlays").iterdir()) == sorted(table["file"] + ".png")
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("file,split,bbox_x0,bbox_y0,bbox_x1,bbox_y1\n"
                     + "".join(f"{f},test,0,0,{SIZE},{SIZE}\n" for f in table["file"]))
    predict_run(run / "model" / "model.pt", run / "images", tmp_path / "b.csv", boxes=boxes)
    boxed = pd.read_csv(tmp_path / "b.csv", dtype={"file": str})
    assert list(boxed.columns[:5]) == ["file", "bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1"]
    np.testing.assert_allclose(boxed[columns].to_numpy().reshape(-1, K, 2), expected, atol=1e-3)


def test_unreadable_photo_is_named_and_nothing_is_written(run, tmp_path):
    images = tmp_path / "photos"
    images.mkdir()
    Image.open(run / "images" / f"{N_TRAIN:03d}.png").save(images / "a.png")
    (images / "b.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="b.png"):
        predict_run(run / "model" / "model.pt", images, tmp_path / "out.csv", overlays=tmp_path / "overlays")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]  # no CSV, no overlays, no temporaries


def test_files_of_another_kind_are_refused(run, tmp_path):
    torch.save({"G_ema": {"w": torch.zeros(1)}, "options": {}}, tmp_path / "network.pt")
    with pytest.raises(InputError, match=r"network.pt: expected a landmark model .*another kind"):
        load_landmark_model(tmp_path / "network.pt")
    with pytest.raises(InputError, match=r"weights.pt: a LEAD feature network .* without its regressor"):
        load_landmark_model(run / "weights.pt")
    payload = read_landmark_payload(run / "model" / "model.pt")
    del payload["regressor"]
    torch.save(payload, tmp_path / "no_regressor.pt")
    with pytest.raises(InputError, match=r"no_regressor.pt: landmark model without its regressor"):
        load_landmark_model(tmp_path / "no_regressor.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(InputError, match=r"text.pt: not a readable torch file"):
        load_landmark_model(tmp_path / "text.pt")


@pytest.mark.parametrize("rows,message", [
    ("file,x0,y0\n", r"boxes.csv:1: header .* lacks \['bbox_x0'"),
    ("file,bbox_x0,bbox_y0,bbox_x1,bbox_y1\na.png,1,2,30,40\na.png,1,two,30,40\n", r"boxes.csv:3: malformed line"),
    ("file,bbox_x0,bbox_y0,bbox_x1,bbox_y1\na.png,30,2,10,40\n", r"boxes.csv:2: box .* bbox_x1 > bbox_x0"),
    ("file,bbox_x0,bbox_y0,bbox_x1,bbox_y1\nz.png,1,2,30,40\n", r"boxes.csv:2: image 'z.png' is not among"),
    ("file,bbox_x0,bbox_y0,bbox_x1,bbox_y1\na.png,1,2,30\n", r"boxes.csv:2: 4 values for 5 header columns"),
])
def test_malformed_box_files_name_the_line(tmp_path, rows, message):
    (tmp_path / "boxes.csv").write_text(rows)
    with pytest.raises(InputError, match=message):
        read_boxes(tmp_path / "boxes.csv", ["a.png"])
