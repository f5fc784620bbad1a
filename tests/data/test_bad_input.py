"""One test per class of bad input: each raises InputError naming the file, what was expected, and the fix."""

import io

import numpy as np
import pytest
from PIL import Image, ImageFile

from lead_hsr.data.images import ImageLoader, decode_rgb, load_rgb
from lead_hsr.data.prepare import prepare
from lead_hsr.data.readers import aflw_m, celeba, mafl, w300
from lead_hsr.errors import InputError
from test_readers import write_aflw_m, write_aflw_r, write_celeba, write_mafl, write_pts, write_w300

PAPER = {"resize": 136, "crop": 20}


def _jpeg_bytes(size=32):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def celeba_roots(tmp_path):
    names = write_celeba(tmp_path / "celeba", [0, 0, 0, 2])
    write_mafl(tmp_path / "mafl", train=names[:3], test=names[3:])
    return {"celeba": tmp_path / "celeba", "mafl": tmp_path / "mafl"}, names


def test_good_images_load_as_rgb_uint8(tmp_path):
    Image.fromarray(np.full((5, 7), 9, np.uint8), "L").save(tmp_path / "grey.png")
    image = load_rgb(tmp_path / "grey.png")
    assert image.shape == (5, 7, 3) and image.dtype == np.uint8 and np.all(image == 9)


def test_missing_root_names_layout_and_source(tmp_path):
    with pytest.raises(InputError) as error:
        prepare("aflw_r", {"aflw_r": tmp_path / "nowhere"}, tmp_path / "out", PAPER)
    message = str(error.value)
    assert str(tmp_path / "nowhere") in message and "not found" in message
    assert "aflw_{train,test}_images.txt" in message and "github.com/jamt9000/DVE" in message


def test_unconfigured_root_names_config_key(tmp_path):
    with pytest.raises(InputError, match=r"no raw root configured for 'mafl'.*raw\.mafl"):
        prepare("mafl", {"celeba": tmp_path}, tmp_path / "out", PAPER)


def test_missing_file_names_file_layout_and_source(tmp_path, celeba_roots):
    roots, _ = celeba_roots
    (roots["celeba"] / "list_landmarks_align_celeba.txt").unlink()
    with pytest.raises(InputError) as error:
        prepare("mafl", roots, tmp_path / "out", PAPER, {"train": 3, "test": 1})
    message = str(error.value)
    assert "list_landmarks_align_celeba.txt: not found" in message
    assert "mmlab.ie.cuhk.edu.hk/projects/CelebA" in message and "img_align_celeba/*.jpg" in message
    with pytest.raises(InputError, match=r"w300.*300-W, https://ibug.doc.ic.ac.uk"):
        w300.read_split(tmp_path, "train")  # a root without the 300W files


def test_missing_image_is_named(tmp_path):
    with pytest.raises(InputError, match=r"gone\.jpg: image file not found"):
        load_rgb(tmp_path / "gone.jpg")


def test_corrupt_image_is_named(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"this is not a jpeg at all")
    with pytest.raises(InputError, match=r"bad\.jpg: cannot decode image .*expected a complete JPEG"):
        load_rgb(tmp_path / "bad.jpg")


@pytest.mark.parametrize("cut", [2, 100, 600])
def test_truncated_jpeg_is_refused(tmp_path, cut):
    data = _jpeg_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[:-cut])
    with pytest.raises(InputError, match=r"cut\.jpg: cannot decode image .*truncated"):
        load_rgb(tmp_path / "cut.jpg")


def test_truncated_images_flag_is_not_trusted(monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
        decode_rgb(_jpeg_bytes()[:-50], "x.jpg")


@pytest.mark.parametrize("edit, expected", [
    (lambda t: t.replace("000002.jpg", "000002.jpg 12", 1), r"list_landmarks_align_celeba\.txt:4: malformed line"),
    (lambda t: t.replace(" 109", " 1o9", 1), r"list_landmarks_align_celeba\.txt:3: malformed line"),
    (lambda t: t.replace("lefteye_x", "left_eye_x"), r"list_landmarks_align_celeba\.txt:2: .*expected the header"),
    (lambda t: "5" + t[1:], r"first line declares 5 rows but the file has 4"),
])
def test_malformed_celeba_lines(tmp_path, edit, expected):
    write_celeba(tmp_path, [0, 0, 1, 2])
    path = tmp_path / "list_landmarks_align_celeba.txt"
    path.write_text(edit(path.read_text()))
    with pytest.raises(InputError, match=expected):
        celeba.read_landmarks(tmp_path)


def test_malformed_partition_and_mafl_lines(tmp_path):
    write_celeba(tmp_path, [0, 1])
    (tmp_path / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg 7\n")
    with pytest.raises(InputError, match=r"list_eval_partition\.txt:2: .*expected partition code 0, 1 or 2"):
        celeba.read_partition(tmp_path)
    write_mafl(tmp_path / "mafl", ["000001.jpg", "000002 jpg"], [])
    with pytest.raises(InputError, match=r"training\.txt:2: malformed line .*CelebA image file name"):
        mafl.read_split(tmp_path / "mafl", "train")


def test_malformed_mtfl_and_csv_lines(tmp_path):
    write_aflw_m(tmp_path)
    path = tmp_path / "MTFL" / "testing.txt"
    lines = path.read_text().splitlines()
    path.write_text(lines[0] + "\n" + lines[1].rsplit(" ", 1)[0] + "\n")  # 14 fields on line 2
    with pytest.raises(InputError, match=r"testing\.txt:2: malformed line .*\(15 fields\)"):
        aflw_m.read_test(tmp_path)
    csv = tmp_path / "aflw_cropped" / "facedata_cropped.csv"
    rows = csv.read_text().splitlines()
    rows[2] = rows[2].replace(",1,", ",one,", 1)
    csv.write_text("\n".join(rows) + "\n")
    with pytest.raises(InputError, match=r"facedata_cropped\.csv:3: malformed line"):
        aflw_m.read_train(tmp_path)


def test_malformed_pts_lines(tmp_path):
    path = tmp_path / "a.pts"
    write_pts(path, np.zeros((68, 2)))
    path.write_text(path.read_text().replace("1.000 1.000", "1.000", 1))
    with pytest.raises(InputError, match=r"a\.pts:4: malformed line .*`x y`"):
        w300.read_pts(path)
    path.write_text("version: 1\nn_points: 49\n{\n}\n")
    with pytest.raises(InputError, match=r"a\.pts:2: malformed line .*n_points: 68"):
        w300.read_pts(path)


def test_bad_mat_files_are_named(tmp_path):
    write_aflw_r(tmp_path)
    (tmp_path / "aflw_test_keypoints.mat").write_bytes(b"garbage")
    with pytest.raises(InputError, match=r"aflw_test_keypoints\.mat: cannot read MATLAB file"):
        prepare("aflw_r", {"aflw_r": tmp_path}, tmp_path / "out", PAPER, {"train": 2, "test": 1})
    write_w300(tmp_path / "w")
    (tmp_path / "w" / "Bounding Boxes" / "bounding_boxes_afw.mat").write_bytes(b"garbage")
    with pytest.raises(InputError, match=r"bounding_boxes_afw\.mat: cannot read the 300W box file"):
        w300.read_split(tmp_path / "w", "train")


def test_landmark_outside_image_is_named(tmp_path, celeba_roots):
    roots, _ = celeba_roots
    path = roots["celeba"] / "list_landmarks_align_celeba.txt"
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace("  70 ", " 700 ", 1)  # 000002.jpg (line 4): left eye x far outside 178 px
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"list_landmarks_align_celeba\.txt:4: landmark 0 at \(x=700\.0, y=110\.0\) "
                                         r"lies outside its image .*000002\.jpg \(178 x 218 px\)"):
        prepare("mafl", roots, tmp_path / "out", PAPER, {"train": 3, "test": 1})
    assert not (tmp_path / "out").exists()


def test_count_mismatch_names_split_and_counts(tmp_path, celeba_roots):
    roots, _ = celeba_roots
    with pytest.raises(InputError, match=r"preparer 'mafl': split 'test' has 1 images, expected 2\. "
                                         r"Fix: .*expected_counts"):
        prepare("mafl", roots, tmp_path / "out", PAPER, {"train": 3, "test": 2})
    with pytest.raises(InputError, match=r"unknown splits \['valid'\]"):
        prepare("mafl", roots, tmp_path / "out", PAPER, {"train": 3, "valid": 1})


def test_skip_corrupt_lists_skipped_files(tmp_path, celeba_roots):
    roots, names = celeba_roots
    (roots["celeba"] / "img_align_celeba" / names[1]).write_bytes(_jpeg_bytes()[:-100])  # truncated
    with pytest.raises(InputError, match=rf"{names[1]}: cannot decode image"):
        prepare("mafl", roots, tmp_path / "out", PAPER, {"train": 3, "test": 1})
    store = prepare("mafl", roots, tmp_path / "out", PAPER, {"train": 3, "test": 1}, skip_corrupt=True)
    assert len(store) == 3 and f"img_align_celeba/{names[1]}" not in store.table["file"].tolist()
    assert [entry["file"] for entry in store.manifest["skipped"]] == [f"img_align_celeba/{names[1]}"]
    assert "truncated" in store.manifest["skipped"][0]["reason"]
    assert store.manifest["counts"] == {"train": 2, "val": 0, "test": 1}


def test_image_loader_records_instead_of_raising(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"nope")
    loader = ImageLoader(skip_corrupt=True)
    assert loader.load(tmp_path / "bad.jpg", label="bad.jpg") is None
    assert loader.skipped[0]["file"] == "bad.jpg"


def test_unknown_options_and_preparer_are_refused(tmp_path):
    from lead_hsr.data.prepare import PREPARERS

    with pytest.raises(InputError, match=r"preparer 'mafl' takes no options, got \['subset'\]"):
        PREPARERS["mafl"]("mafl", {}, tmp_path / "out", PAPER, subset="1k")
    with pytest.raises(InputError, match=r"unknown landmark preparer 'mafll'"):
        prepare("mafll", {}, tmp_path / "out", PAPER)


def test_unknown_gan_preparer_option_is_an_input_error(tmp_path):
    from lead_hsr.data.prepare_all import prepare as prepare_any
    with pytest.raises(InputError, match=r"preparer 'cub': unknown option\(s\) \['subset'\]; expected no options"):
        prepare_any("cub", {"cub": tmp_path}, tmp_path / "o", {"resolution": 8}, options={"subset": "1k"})
    with pytest.raises(InputError, match=r"preparer 'ffhq': unknown option\(s\) \['subest'\]; expected one of \['subset'\]"):
        prepare_any("ffhq", {"ffhq": tmp_path}, tmp_path / "o", {"resolution": 8}, options={"subest": "1k"})
