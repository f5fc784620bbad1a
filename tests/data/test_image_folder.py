"""Own data: image folders / zips and landmark CSVs prepared for LEAD (`image_folder`) and GAN training
(`image_folder_gan`), the per-dataset landmark normaliser, the own-data config keys, and bad input."""

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from lead_hsr.config import validate_config
from lead_hsr.data.prepare_all import prepare
from lead_hsr.data.prepare_folder import open_images, read_landmark_csv
from lead_hsr.data.store import open_store
from lead_hsr.errors import InputError
from lead_hsr.metrics.iod import Normaliser, iod_error

REPO = Path(__file__).resolve().parents[2]
LEAD_GEOMETRY = {"resize": 40, "crop": 4}
HEADER = "file,x1,y1,x2,y2"


def _image(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _png(path: Path, image):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, format="PNG")  # lossless: stores can be compared pixel for pixel
    return image


@pytest.fixture
def collection(tmp_path):
    """images/: a.png 40x60 (H x W), b.png 80x80, sub/c.png 50x30, plus files that are not images of the set."""
    root = tmp_path / "images"
    images = {"a.png": _png(root / "a.png", _image(40, 60, 1)), "b.png": _png(root / "b.png", _image(80, 80, 2)),
              "sub/c.png": _png(root / "sub" / "c.png", _image(50, 30, 3))}
    (root / "notes.txt").write_text("not an image")
    _png(root / ".hidden" / "d.png", _image(8, 8, 4))
    _png(root / ".e.png", _image(8, 8, 5))
    return root, images


def _csv(tmp_path, *rows, header=HEADER, name="landmarks.csv"):
    path = tmp_path / name
    path.write_text("\n".join(([header] if header else []) + list(rows)) + "\n")
    return path


GOOD_ROWS = ("a.png,10,20,50,20", "b.png,20,30,60,30", "sub/c.png,5,10,25,10")


def _zip(folder: Path, out: Path) -> Path:
    with zipfile.ZipFile(out, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
        archive.writestr("__MACOSX/._a.png", b"resource fork")
    return out


# ---------------------------------------------------------------- listing and LEAD stores


def test_listing_is_recursive_sorted_and_skips_hidden_and_non_images(collection, tmp_path):
    root, images = collection
    assert open_images(root, "s").files == ["a.png", "b.png", "sub/c.png"]
    assert open_images(_zip(root, tmp_path / "set.zip"), "s").files == ["a.png", "b.png", "sub/c.png"]


def test_ssl_store_holds_every_image_resized_without_landmarks(collection):
    root, images = collection
    store = prepare("image_folder", {"images": root}, root.parent / "ssl", LEAD_GEOMETRY)
    assert store.images.shape == (3, 40, 40, 3) and store.manifest["K"] == 0
    assert store.manifest["counts"]["train"] == 3 and list(store.table["file"]) == ["a.png", "b.png", "sub/c.png"]
    # mixed sizes: each image on its own, PIL bilinear square resize (reference computed here with PIL)
    expected = np.asarray(Image.fromarray(images["a.png"]).resize((40, 40), Image.BILINEAR))
    np.testing.assert_array_equal(store.images[0], expected)


def test_landmarks_follow_each_image_of_mixed_size(collection, tmp_path):
    root, _ = collection
    store = prepare("image_folder", {"images": root, "landmarks": _csv(tmp_path, *GOOD_ROWS)}, tmp_path / "lm",
                    LEAD_GEOMETRY, options={"test_fraction": 0.34})
    by_file = dict(zip(store.table["file"], store.landmarks))
    # resize: x * 40 / W, y * 40 / H, per image (a: 60 x 40, c: 30 x 50)
    np.testing.assert_allclose(by_file["a.png"], [[10 * 40 / 60, 20 * 40 / 40], [50 * 40 / 60, 20]], rtol=1e-6)
    np.testing.assert_allclose(by_file["sub/c.png"], [[5 * 40 / 30, 10 * 40 / 50], [25 * 40 / 30, 8]], rtol=1e-6)
    assert store.manifest["counts"] == {"train": 2, "val": 0, "test": 1}
    again = prepare("image_folder", {"images": root, "landmarks": _csv(tmp_path, *GOOD_ROWS)}, tmp_path / "lm2",
                    LEAD_GEOMETRY, options={"test_fraction": 0.34})
    assert list(again.table["split"]) == list(store.table["split"])  # seeded split


def test_centre_crop_moves_landmarks_and_rejects_ones_outside(collection, tmp_path):
    root, _ = collection
    csv = _csv(tmp_path, "a.png,30,20,40,25", "b.png,20,30,60,30")
    store = prepare("image_folder", {"images": root, "landmarks": csv}, tmp_path / "cc", LEAD_GEOMETRY,
                    options={"transform": "centre_crop", "test_fraction": 0.5})
    a = dict(zip(store.table["file"], store.landmarks))["a.png"]
    # a.png is 60 wide, 40 high: the centred 40 x 40 square starts at x = 10, then 40 -> 40 (scale 1)
    np.testing.assert_allclose(a, [[20, 20], [30, 25]])
    outside = _csv(tmp_path, "a.png,5,20,40,25", "b.png,20,30,60,30", name="outside.csv")
    with pytest.raises(InputError, match=r"outside.csv:2: .*a.png.*centred square.*transform: resize"):
        prepare("image_folder", {"images": root, "landmarks": outside}, tmp_path / "cc2", LEAD_GEOMETRY,
                options={"transform": "centre_crop", "test_fraction": 0.5})


def test_zip_and_folder_give_the_same_store(collection, tmp_path):
    root, _ = collection
    csv = _csv(tmp_path, *GOOD_ROWS)
    folder = prepare("image_folder", {"images": root, "landmarks": csv}, tmp_path / "f", LEAD_GEOMETRY)
    zipped = prepare("image_folder", {"images": _zip(root, tmp_path / "set.zip"), "landmarks": csv},
                     tmp_path / "z", LEAD_GEOMETRY)
    np.testing.assert_array_equal(folder.images, zipped.images)
    np.testing.assert_array_equal(folder.landmarks, zipped.landmarks)
    assert str(tmp_path / "set.zip") in zipped.manifest["annotation_sha256"]  # a changed zip changes the hash


def test_unannotated_images_are_left_out_and_counted(collection, tmp_path):
    root, _ = collection
    store = prepare("image_folder", {"images": root, "landmarks": _csv(tmp_path, *GOOD_ROWS[:2])}, tmp_path / "o",
                    LEAD_GEOMETRY, options={"test_fraction": 0.5})
    assert len(store) == 2 and store.manifest["options"]["unannotated_images"] == 1


# ---------------------------------------------------------------- GAN stores


def test_gan_centre_crop_and_resize_as_dataset_tool(collection, tmp_path):
    root, images = collection
    store = prepare("image_folder_gan", {"images": root}, tmp_path / "g", {"resolution": 16})
    assert store.images.shape == (3, 16, 16, 3) and set(store.table["split"]) == {"train"}
    # dataset_tool center-crop: img[(h - s) // 2:(h + s) // 2, (w - s) // 2:(w + s) // 2], then Lanczos
    a = images["a.png"][:, 10:50]
    np.testing.assert_array_equal(store.images[0], np.asarray(Image.fromarray(a).resize((16, 16), Image.LANCZOS)))
    c = images["sub/c.png"][10:40, :]
    np.testing.assert_array_equal(store.images[2], np.asarray(Image.fromarray(c).resize((16, 16), Image.LANCZOS)))


def test_gan_box_resample_is_the_block_mean(collection, tmp_path):
    root, images = collection
    store = prepare("image_folder_gan", {"images": root}, tmp_path / "g", {"resolution": 16},
                    options={"transform": "resize", "resample": "box"})
    block_mean = images["b.png"].reshape(16, 5, 16, 5, 3).astype(float).mean(axis=(1, 3))
    np.testing.assert_array_equal(store.images[1], np.rint(block_mean).astype(np.uint8))
    assert store.manifest["options"]["upscaled"] == []


def test_gan_bad_options_are_named(collection, tmp_path):
    root, _ = collection
    with pytest.raises(InputError, match="options.resample 'bicubic'"):
        prepare("image_folder_gan", {"images": root}, tmp_path / "g", {"resolution": 16},
                options={"resample": "bicubic"})


# ---------------------------------------------------------------- bad input


def test_unreadable_image_is_named_or_skipped_and_listed(collection, tmp_path):
    root, _ = collection
    good = (root / "a.png").read_bytes()
    (root / "broken.png").write_bytes(good[: len(good) // 2])  # truncated
    with pytest.raises(InputError, match="broken.png: cannot decode image"):
        prepare("image_folder_gan", {"images": root}, tmp_path / "g", {"resolution": 16})
    assert not (tmp_path / "g").exists()
    store = prepare("image_folder_gan", {"images": root}, tmp_path / "g", {"resolution": 16}, skip_corrupt=True)
    assert len(store) == 3 and [entry["file"] for entry in store.manifest["skipped"]] == ["broken.png"]
    ssl = prepare("image_folder", {"images": root}, tmp_path / "s", LEAD_GEOMETRY, skip_corrupt=True)
    assert json.loads((tmp_path / "s" / "manifest.json").read_text())["skipped"][0]["file"] == "broken.png"
    assert len(ssl) == 3


@pytest.mark.parametrize("rows,message", [
    (("a.png,10,20,50,20", "missing.png,1,2,3,4"), r"landmarks.csv:3: image 'missing.png' not found"),
    (("a.png,10,20,50,20", "b.png,1,2,3"), r"landmarks.csv:3: malformed line .*even number"),
    (("a.png,10,20,50,20", "b.png,1,2,3,4,5,6"), r"landmarks.csv:3: 6 values, expected 4"),
    (("a.png,10,20,50,20", "b.png,1,nan,3,4"), r"landmarks.csv:3: y1 = nan is not a finite number"),
    (("a.png,10,20,50,inf",), r"landmarks.csv:2: y2 = inf is not a finite number"),
    (("a.png,10,20,50,20", "b.png,1,2,3,x"), r"landmarks.csv:3: malformed line .*numeric"),
    (("a.png,10,20,50,20", "b.png,1,2,3,4", "./a.png,1,2,3,4"), r"landmarks.csv:4: a.png is annotated twice "
                                                                r"\(first at line 2\)"),
    (("a.png,10,20,500,20", "b.png,1,2,3,4"), r"landmarks.csv:2: landmark 1 at \(x=500.0, y=20.0\) lies outside its image .*a.png"),
])
def test_bad_landmark_rows_are_named_with_file_and_line(collection, tmp_path, rows, message):
    root, _ = collection
    with pytest.raises(InputError, match=message):
        prepare("image_folder", {"images": root, "landmarks": _csv(tmp_path, *rows)}, tmp_path / "out",
                LEAD_GEOMETRY, options={"test_fraction": 0.5})
    assert not (tmp_path / "out").exists()


def test_header_is_optional_and_blank_lines_ignored(collection, tmp_path):
    root, _ = collection
    path = tmp_path / "plain.csv"
    path.write_text("a.png,10,20,50,20\n\n b.png , 1, 2, 3, 4\r\n")
    rows = read_landmark_csv(path, open_images(root, "s"))
    assert rows.files == ["a.png", "b.png"] and rows.landmarks.shape == (2, 2, 2) and rows.lines == [1, 3]


def test_missing_or_empty_sources_are_named(tmp_path):
    with pytest.raises(InputError, match="nowhere: not found"):
        prepare("image_folder", {"images": tmp_path / "nowhere"}, tmp_path / "o", LEAD_GEOMETRY)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no image files found"):
        prepare("image_folder_gan", {"images": tmp_path / "empty"}, tmp_path / "o", {"resolution": 16})
    _png(tmp_path / "one" / "a.png", _image(8, 8))
    with pytest.raises(InputError, match="landmark file not found"):
        prepare("image_folder", {"images": tmp_path / "one", "landmarks": tmp_path / "no.csv"}, tmp_path / "o",
                LEAD_GEOMETRY)


def test_too_few_annotations_for_a_split(collection, tmp_path):
    root, _ = collection
    with pytest.raises(InputError, match="both need at least one"):
        prepare("image_folder", {"images": root, "landmarks": _csv(tmp_path, GOOD_ROWS[0])}, tmp_path / "o",
                LEAD_GEOMETRY)


# ---------------------------------------------------------------- the normaliser


def test_box_normaliser_divides_by_the_landmark_box_size():
    gt = np.array([[[0.0, 0.0], [8.0, 0.0], [8.0, 2.0]]])  # box 8 x 2: sqrt(16) = 4
    pred = gt + np.array([[[3.0, 4.0], [0.0, 0.0], [0.0, 0.0]]])  # errors 5, 0, 0
    assert iod_error(pred, gt, Normaliser.from_config("box")) == pytest.approx(100 * 5 / 4 / 3)
    assert iod_error(pred, gt, Normaliser.from_config({"pair": [0, 1]})) == pytest.approx(100 * 5 / 8 / 3)


def test_normaliser_config_errors_are_named():
    assert Normaliser.from_config("w300").pair == (36, 45)  # a paper store keeps its protocol pair
    for bad in ({"pair": [1, 1]}, {"pair": [0]}, {"eyes": [0, 1]}, "animals"):
        with pytest.raises(InputError):
            Normaliser.from_config(bad)
    with pytest.raises(InputError, match=r"pair \[0, 5\] but the dataset has K = 4"):
        Normaliser.from_config({"pair": [0, 5]}).check(4)


# ---------------------------------------------------------------- config keys


def _config_with(**blocks):
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for key, value in blocks.items():
        config[key] = {**config[key], **value}
    return config


def test_own_data_keys_validate_and_bad_ones_are_named():
    schema = REPO / "config" / "schema.yaml"
    own = {"pets": {"preparer": "image_folder", "images": "pets/", "landmarks": "pets.csv",
                    "options": {"test_fraction": 0.3, "transform": "centre_crop"}},
           "pets_gan": {"preparer": "image_folder_gan", "images": "pets.zip", "options": {"resample": "box"}}}
    config = _config_with(prepared=own)
    config["lead"]["datasets"]["pets"] = {"store": "pets", "normaliser": "box"}
    validate_config(config, schema)
    config["prepared"]["pets_gan"]["landmarks"] = "pets.csv"
    config["prepared"]["pets"]["options"]["transform"] = "crop"
    config["lead"]["datasets"]["pets"]["normaliser"] = {"pair": [0]}
    with pytest.raises(InputError) as error:
        validate_config(config, schema)
    message = str(error.value)
    assert "prepared.pets.options.transform: got 'crop'" in message
    assert "prepared.pets_gan" in message and "lead.datasets.pets.normaliser" in message


def test_exclude_leaves_the_annotated_images_out_of_the_ssl_store(collection, tmp_path):
    root, _ = collection
    csv = _csv(tmp_path, *GOOD_ROWS[:2])
    store = prepare("image_folder", {"images": root, "exclude": csv}, tmp_path / "ssl", LEAD_GEOMETRY)
    assert list(store.table["file"]) == ["sub/c.png"] and store.manifest["options"]["excluded_images"] == 2
    with pytest.raises(InputError, match="names every image"):
        prepare("image_folder", {"images": root, "exclude": _csv(tmp_path, *GOOD_ROWS, name="all.csv")},
                tmp_path / "none", LEAD_GEOMETRY)
    with pytest.raises(InputError, match="not both"):
        prepare("image_folder", {"images": root, "exclude": csv, "landmarks": csv}, tmp_path / "both", LEAD_GEOMETRY)


def test_schema_rejects_landmarks_with_exclude():
    config = _config_with(prepared={"pets": {"preparer": "image_folder", "images": "p", "landmarks": "a.csv",
                                             "exclude": "a.csv"}})
    with pytest.raises(InputError, match="prepared.pets"):
        validate_config(config, REPO / "config" / "schema.yaml")


def test_resize_keeps_landmarks_just_outside_the_image(collection, tmp_path):
    root, _ = collection  # occluded points a little past the border are accepted (readers.common.check_inside)
    store = prepare("image_folder", {"images": root, "landmarks": _csv(tmp_path, "a.png,-3,20,50,20", GOOD_ROWS[1])},
                    tmp_path / "edge", LEAD_GEOMETRY, options={"test_fraction": 0.5})
    assert dict(zip(store.table["file"], store.landmarks))["a.png"][0, 0] == pytest.approx(-3 * 40 / 60)


def test_own_tables_need_own_ids_and_show_no_thesis_column(tmp_path):
    from lead_hsr.report.spec import load_tables
    from lead_hsr.report.tables import build_table

    spec = {"caption": "c", "index": ["Method"], "columns": [{"name": "e", "label": "Error", "metric": "iod"}],
            "rows": [{"label": ["LEAD"], "run": {"dataset": "pets"}}]}
    path = tmp_path / "own.yaml"
    path.write_text(yaml.safe_dump({"tables": {"table_9.9": spec}}))
    with pytest.raises(InputError, match="own tables need ids starting with 'own_'"):
        load_tables(path, own=True)
    path.write_text(yaml.safe_dump({"tables": {"own_pets": spec}}))
    table = build_table(load_tables(path, own=True)["own_pets"], {"dataset~pets": [{"iod": 12.345}]})
    assert list(table.columns) == [("Error", "ours")] and table.iloc[0, 0] == "12.35"
    with pytest.raises(InputError, match="thesis"):  # the thesis's tables still need their numbers
        load_tables(path)
