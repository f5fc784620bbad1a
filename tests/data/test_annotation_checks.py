"""Annotation files that parse but are wrong: non-UTF-8 text, non-finite numbers, an image listed twice, and
files that contradict each other. Each is an InputError at `file:line` (never a traceback or a wrong store)."""
import numpy as np
import pytest
from scipy.io import loadmat, savemat

from lead_hsr.data.prepare import prepare
from lead_hsr.data.readers import aflw_m, aflw_r, celeba, gan_cub, mafl, w300
from lead_hsr.errors import InputError
from test_readers import write_aflw_m, write_aflw_r, write_celeba, write_mafl, write_pts, write_w300

PAPER = {"resize": 136, "crop": 20}


def rewrite(path, edit):
    path.write_text(edit(path.read_text()))


@pytest.mark.parametrize("encoding_damage", [
    lambda data: data.replace(b"000002.jpg", b"00000\xe9.jpg"),  # latin-1 e-acute
    lambda data: data.decode().encode("utf-16"),  # a BOM-prefixed UTF-16 copy
])
def test_non_utf8_text_names_file_and_line(tmp_path, encoding_damage):
    write_celeba(tmp_path, [0, 0, 1, 2])
    path = tmp_path / "list_landmarks_align_celeba.txt"
    path.write_bytes(encoding_damage(path.read_bytes()))
    with pytest.raises(InputError, match=r"list_landmarks_align_celeba\.txt:\d+: byte .* is not UTF-8.*Fix:"):
        celeba.read_landmarks(tmp_path)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", "1e999"])
def test_non_finite_landmarks_are_malformed(tmp_path, value):
    write_celeba(tmp_path, [0, 0, 1, 2])
    rewrite(tmp_path / "list_landmarks_align_celeba.txt", lambda t: t.replace(" 109", f" {value}", 1))
    with pytest.raises(InputError, match=r"list_landmarks_align_celeba\.txt:3: .*finite numbers"):
        celeba.read_landmarks(tmp_path)


def test_non_finite_mtfl_value_is_malformed(tmp_path):
    write_aflw_m(tmp_path)
    rewrite(tmp_path / "MTFL" / "testing.txt", lambda t: t.replace(" 51.00", " nan", 1))
    with pytest.raises(InputError, match=r"testing\.txt:1: .*finite"):
        aflw_m.read_test(tmp_path)


def test_celeba_row_listed_twice_with_the_right_count(tmp_path):
    write_celeba(tmp_path, [0, 0, 1, 2])
    # the 000004 row replaced by a second 000003 row: the count line (4) still holds
    rewrite(tmp_path / "list_landmarks_align_celeba.txt", lambda t: t.replace("000004.jpg", "000003.jpg"))
    with pytest.raises(InputError, match=r"list_landmarks_align_celeba\.txt:6: image '000003\.jpg' is listed "
                                         r"again \(first at .*:5\)"):
        celeba.read_landmarks(tmp_path)
    rewrite(tmp_path / "list_eval_partition.txt", lambda t: t.replace("000002.jpg", "000001.jpg"))
    with pytest.raises(InputError, match=r"list_eval_partition\.txt:2: image '000001\.jpg' is listed again"):
        celeba.read_partition(tmp_path)


def test_mafl_duplicate_and_train_test_overlap(tmp_path):
    names = write_celeba(tmp_path / "celeba", [0, 0, 0, 2])
    write_mafl(tmp_path / "mafl", train=[names[0], names[1], names[0]], test=names[3:])
    with pytest.raises(InputError, match=r"training\.txt:3: image '000001\.jpg' is listed again"):
        mafl.read_split(tmp_path / "mafl", "train")
    write_mafl(tmp_path / "mafl", train=names[:3], test=[names[2]])
    with pytest.raises(InputError, match=r"training\.txt and .*testing\.txt: 1 image\(s\) in both splits"):
        prepare("mafl", {"celeba": tmp_path / "celeba", "mafl": tmp_path / "mafl"}, tmp_path / "o", PAPER,
                {"train": 3, "test": 1})
    assert not (tmp_path / "o").exists()


def test_aflw_duplicates(tmp_path):
    write_aflw_m(tmp_path / "m")
    rewrite(tmp_path / "m" / "MTFL" / "testing.txt", lambda t: t.replace("0001-image90001", "0000-image90000"))
    with pytest.raises(InputError, match=r"testing\.txt:2: image 'MTFL/AFLW/0000-image90000\.jpg' is listed again"):
        aflw_m.read_test(tmp_path / "m")
    write_aflw_r(tmp_path / "r")
    rewrite(tmp_path / "r" / "aflw_train_images.txt", lambda t: t.replace("img1", "img0"))
    with pytest.raises(InputError, match=r"aflw_train_images\.txt:2: image 'output/train/img0\.png' is listed"):
        aflw_r.read_split(tmp_path / "r", "train")


@pytest.mark.parametrize("key, value, expected", [
    ("gt", np.nan, "non-finite"), ("hw", np.nan, "non-finite"), ("hw", 90.5, "fractional"), ("hw", 0, "non-positive"),
])
def test_aflw_r_mat_values(tmp_path, key, value, expected):
    write_aflw_r(tmp_path)
    path = tmp_path / "aflw_train_keypoints.mat"
    mat = {k: v for k, v in loadmat(path).items() if not k.startswith("__")}
    mat[key] = mat[key].astype(float)
    mat[key].flat[1] = value
    savemat(path, mat)
    with pytest.raises(InputError, match=rf"aflw_train_keypoints\.mat: .*{expected}"):
        aflw_r.read_split(tmp_path, "train")


def test_celeba_wild_landmarks_against_their_box(tmp_path):
    names = write_celeba(tmp_path / "celeba", [0, 0, 0, 2])
    write_mafl(tmp_path / "mafl", train=names[:3], test=names[3:])
    # the box of 000002 moved far from its face: the landmark file and the box file contradict each other
    rewrite(tmp_path / "celeba" / "list_bbox_celeba.txt",
            lambda t: t.replace("000002.jpg    40  30", "000002.jpg    70  90"))
    with pytest.raises(InputError, match=r"list_landmarks_celeba\.txt:4: landmark 0 of 000002\.jpg .* outside its "
                                         r"face box .*list_bbox_celeba\.txt:4"):
        prepare("mafl_unaligned", {"celeba": tmp_path / "celeba", "mafl": tmp_path / "mafl"}, tmp_path / "o",
                PAPER, {"train": 3, "test": 1})


def test_celeba_box_without_area(tmp_path):
    write_celeba(tmp_path, [0, 0, 1, 2])
    rewrite(tmp_path / "list_bbox_celeba.txt", lambda t: t.replace("40  45", "0  45", 1))
    with pytest.raises(InputError, match=r"list_bbox_celeba\.txt:3: .*positive width and height"):
        celeba.read_bboxes(tmp_path)


def test_300w_pts_against_its_box(tmp_path):
    write_w300(tmp_path)
    write_pts(tmp_path / "afw" / "afw_0.pts", np.full((68, 2), 110.0))  # a .pts of another face
    with pytest.raises(InputError, match=r"afw_0\.pts \(box entry 1 of bounding_boxes_afw\.mat\): point 1 .* "
                                         r"outside its bb_ground_truth"):
        w300.read_split(tmp_path, "train")


def test_300w_entry_listed_twice(tmp_path):
    write_w300(tmp_path)
    path = tmp_path / "Bounding Boxes" / "bounding_boxes_afw.mat"
    records = loadmat(path)["bounding_boxes"]
    savemat(path, {"bounding_boxes": np.concatenate([records, records], axis=1)})
    with pytest.raises(InputError, match=r"afw_0\.pts \(box entry 2 of .*\): image 'afw/afw_0\.jpg' is listed again"):
        w300.read_split(tmp_path, "train")


def test_300w_box_with_nan(tmp_path):
    write_w300(tmp_path)
    path = tmp_path / "Bounding Boxes" / "bounding_boxes_afw.mat"
    records = loadmat(path)["bounding_boxes"]
    records[0, 0]["bb_ground_truth"] = np.full((1, 4), np.nan)
    savemat(path, {"bounding_boxes": records})
    with pytest.raises(InputError, match=r"bounding_boxes_afw\.mat: entry 1 \(afw_0\.jpg\) .*expected finite"):
        w300.read_split(tmp_path, "train")


def test_cub_id_listed_twice_and_non_finite_box(tmp_path):
    (tmp_path / "images.txt").write_text("1 a/1.jpg\n2 a/2.jpg\n1 a/3.jpg\n")
    with pytest.raises(InputError, match=r"images\.txt:3: image id 1 is listed again \(first at line 1\)"):
        gan_cub.parse_images_txt(tmp_path / "images.txt")
    (tmp_path / "images.txt").write_text("1 a/1.jpg\n2 a/1.jpg\n")
    with pytest.raises(InputError, match=r"images\.txt: image 'a/1\.jpg' is listed under two ids"):
        gan_cub.parse_images_txt(tmp_path / "images.txt")
    (tmp_path / "bounding_boxes.txt").write_text("1 1 2 3 4\n2 nan 2 3 4\n")
    with pytest.raises(InputError, match=r"bounding_boxes\.txt:2: .*finite"):
        gan_cub.parse_bounding_boxes(tmp_path / "bounding_boxes.txt")
    (tmp_path / "bounding_boxes.txt").write_bytes(b"1 1 2 3 4\n2 \xff 2 3 4\n")
    with pytest.raises(InputError, match=r"bounding_boxes\.txt:2: byte .* is not UTF-8"):
        gan_cub.parse_bounding_boxes(tmp_path / "bounding_boxes.txt")


def test_nul_byte_in_text(tmp_path):
    write_mafl(tmp_path, train=["000001.jpg", "000002.jpg"], test=["000003.jpg"])
    (tmp_path / "training.txt").write_bytes(b"000001.jpg\n\x00\x00\x00\n")
    with pytest.raises(InputError, match=r"training\.txt:2: a NUL byte"):
        mafl.read_split(tmp_path, "train")


def test_aflw_r_hw_against_the_decoded_image(tmp_path):
    write_aflw_r(tmp_path)
    path = tmp_path / "aflw_train_keypoints.mat"
    mat = {k: v for k, v in loadmat(path).items() if not k.startswith("__")}
    mat["hw"][0] = mat["hw"][0][::-1]  # (width, height): the swap a wrong export would make
    savemat(path, mat)
    with pytest.raises(InputError, match=r"aflw_train_images\.txt:1: the annotations give image .*img0\.png the size "
                                         r"120 x 90 px .* the file is 90 x 120"):
        prepare("aflw_r", {"aflw_r": tmp_path}, tmp_path / "o", PAPER, {"train": 2, "test": 1})
    assert not (tmp_path / "o").exists()
