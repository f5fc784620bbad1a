"""Synthetic renderer and raw-layout writers: determinism, landmark/feature consistency, official formats.

Formats are checked two ways: by hand against the official format (count lines, headers, 1-based coordinates,
Windows separators, (y, x) order, DVE's own access patterns), and by running the project's raw readers on the
written trees. Sizes are tiny so the whole file runs in seconds.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import replace
from pathlib import Path

import lmdb
import numpy as np
import pandas as pd
import pytest
import scipy.io
from PIL import Image
from tiny_synthetic import TINY_SPEC

from lead_hsr.data import synthetic
from lead_hsr.data.prepare_all import prepare
from lead_hsr.data.readers import aflw_m as aflw_m_reader, aflw_r as aflw_r_reader, celeba as celeba_reader
from lead_hsr.data.readers import gan_animalface, gan_cub, gan_ffhq, gan_lsun, mafl as mafl_reader
from lead_hsr.data.readers import w300 as w300_reader
from lead_hsr.data.registry import PREPARER_INPUTS
from lead_hsr.data.store import open_store
from lead_hsr.data.synthetic import aflw, celeba, common, face, gan_sets, w300
from lead_hsr.data.synthetic.face import Placement, render_face, sample_identity, sample_view
from lead_hsr.errors import InputError

SEED = 7
PLACEMENT = Placement(centre_x=(60.0, 68.0), centre_y=(56.0, 64.0), eye_distance_px=(34.0, 40.0))


def clean_view(view):
    """No noise, flat light: pixels are exactly the drawn colours (for feature checks)."""
    return replace(view, noise_sigma=0.0, light_strength=0.0, brightness=1.0)


def draw(seed: int, size=(128, 128), **view_changes):
    rng = np.random.default_rng(seed)
    identity = sample_identity(rng)
    view = clean_view(sample_view(rng, identity, PLACEMENT, low_light=False))
    return identity, replace(view, **view_changes), rng


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- renderer


def test_render_is_deterministic_and_seed_dependent():
    def one(seed):
        rng = np.random.default_rng(seed)
        identity = sample_identity(rng)
        return render_face(identity, sample_view(rng, identity, PLACEMENT), 128, 128, rng)

    a, b, c = one(3), one(3), one(4)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.landmarks68, b.landmarks68)
    assert not np.array_equal(a.image, c.image)
    assert a.image.shape == (128, 128, 3) and a.image.dtype == np.uint8


def test_landmarks_sit_on_their_drawn_features():
    """Eye centres are on the iris, the nose tip on its shadow, the mouth centre inside the lips: never skin."""
    for seed in range(40):
        identity, view, rng = draw(seed)
        result = render_face(identity, view, 128, 128, rng)
        skin = np.array(identity.skin_rgb, float)
        p5 = result.landmarks5
        mouth_centre = result.landmarks68[face.MOUTH_OUTER].mean(axis=0)
        for name, (x, y) in [("left eye", p5[0]), ("right eye", p5[1]), ("nose", p5[2]), ("mouth", mouth_centre)]:
            pixel = result.image[int(round(y)), int(round(x))].astype(float)
            assert np.abs(pixel - skin).sum() > 40, (seed, name, pixel, skin)


def test_pupils_are_centred_on_the_eye_landmarks():
    """Sub-pixel check of the drawing convention (pixel i centred at coordinate i): the centroid of the
    pupil's pixels, found by its exact colour in a noise-free render, lies on the 5-point eye landmark."""
    offsets = []
    for seed in range(20):
        identity, view, rng = draw(seed, eye_distance_px=70.0, eyeglasses=False)
        result = render_face(identity, view, 160, 160, rng)
        pupil = np.all(result.image == (10, 8, 8), axis=2)
        for x, y in result.landmarks5[:2]:
            window = np.zeros_like(pupil)
            window[int(y) - 6:int(y) + 7, int(x) - 6:int(x) + 7] = True
            ys, xs = np.nonzero(pupil & window)
            assert len(xs) >= 3
            offsets.append((xs.mean() - x, ys.mean() - y))
    offsets = np.array(offsets)
    # no systematic offset (PIL's truncation alone would give about -0.5 px on both axes) and at most the
    # half-pixel quantisation of a small disc
    assert np.abs(offsets.mean(axis=0)).max() < 0.15 and np.abs(offsets).max() < 0.5, offsets


def test_five_points_are_derived_from_the_68_in_celeba_order():
    identity, view, rng = draw(11, yaw=0.0, roll=0.0)
    result = render_face(identity, view, 128, 128, rng)
    p68, p5 = result.landmarks68, result.landmarks5
    assert np.allclose(p5[0], p68[36:42].mean(axis=0)) and np.allclose(p5[1], p68[42:48].mean(axis=0))
    assert np.allclose(p5[2], p68[30]) and np.allclose(p5[3], p68[48]) and np.allclose(p5[4], p68[54])
    # image-left before image-right, as in CelebA (lefteye_x < righteye_x) and iBUG (36 outer-left, 45 outer-right)
    assert p68[36, 0] < p68[39, 0] < p68[42, 0] < p68[45, 0] and p5[0, 0] < p5[1, 0] and p5[3, 0] < p5[4, 0]
    assert p68[0, 0] < p68[8, 0] < p68[16, 0] and p68[8, 1] > p68[57, 1] > p68[33, 1] > p68[27, 1]
    assert np.linalg.norm(p5[1] - p5[0]) == pytest.approx(view.eye_distance_px, rel=1e-6)  # unit = eye distance
    x0, y0, x1, y1 = result.face_box
    assert (p68[:, 0] >= x0 - 1e-6).all() and (p68[:, 0] <= x1 + 1e-6).all() and (p68[:, 1] <= y1 + 1e-6).all()


def test_yaw_and_roll_move_the_landmarks_as_described():
    identity, view, rng = draw(5, yaw=0.0, roll=0.0)
    frontal = render_face(identity, view, 128, 128, np.random.default_rng(0)).landmarks68
    turned = render_face(identity, replace(view, yaw=math.radians(30)), 128, 128, np.random.default_rng(0)).landmarks68
    rolled = render_face(identity, replace(view, roll=math.radians(20)), 128, 128, np.random.default_rng(0)).landmarks68
    assert turned[30, 0] - frontal[30, 0] > 0.2 * view.eye_distance_px  # the nose swings towards the turn
    eyes = rolled[45] - rolled[36]
    assert math.degrees(math.atan2(eyes[1], eyes[0])) == pytest.approx(20, abs=0.5)


@pytest.mark.parametrize("change, region", [
    ("eyeglasses", "eyes"), ("bangs", "forehead"), ("smile", "mouth"), ("beard", "chin"), ("male", "face"),
    ("hair_colour", "face"), ("young", "forehead"),
])
def test_attribute_labels_change_the_image_where_expected(change, region):
    """Flipping one attribute (all else fixed) changes pixels in the region where it is drawn."""
    rng = np.random.default_rng(21)
    identity = replace(sample_identity(rng), male=True, young=True, beard=False, hair_colour="black",
                       hair_rgb=face.HAIR_COLOURS["black"], long_hair=False)
    view = replace(clean_view(sample_view(rng, identity, PLACEMENT)), eyeglasses=False, bangs=False, smile=0.1,
                   yaw=0.0, roll=0.0)
    flipped_identity, flipped_view = identity, view
    if change in ("eyeglasses", "bangs"):
        flipped_view = replace(view, **{change: True})
    elif change == "smile":
        flipped_view = replace(view, smile=0.9)
    elif change == "hair_colour":
        flipped_identity = replace(identity, hair_colour="blond", hair_rgb=face.HAIR_COLOURS["blond"])
    else:
        flipped_identity = replace(identity, **{change: not getattr(identity, change)})
    a = render_face(identity, view, 128, 128, np.random.default_rng(1))
    b = render_face(flipped_identity, flipped_view, 128, 128, np.random.default_rng(1))
    p = a.landmarks68
    boxes = {  # (x0, y0, x1, y1) around each region, from the landmarks
        "eyes": (p[36, 0] - 6, p[37, 1] - 8, p[45, 0] + 6, p[41, 1] + 8),
        "forehead": (p[17, 0], a.face_box[1], p[26, 0], p[19, 1] - 1),
        "mouth": (p[48, 0] - 3, p[51, 1] - 6, p[54, 0] + 3, p[57, 1] + 6),
        "chin": (p[4, 0], p[57, 1] + 2, p[12, 0], p[8, 1]),
        "face": a.face_box,
    }
    x0, y0, x1, y1 = (int(round(v)) for v in boxes[region])
    diff = np.abs(a.image[y0:y1, x0:x1].astype(int) - b.image[y0:y1, x0:x1].astype(int)).sum(axis=2)
    assert (diff > 30).sum() >= 30, (change, (diff > 30).sum())  # >= 30 clearly changed pixels in the region
    label = {"eyeglasses": "eyeglasses", "bangs": "bangs", "smile": "smiling", "beard": "beard", "male": "male",
             "hair_colour": "hair_colour", "young": "young"}[change]
    assert a.attributes[label] != b.attributes[label]


def test_low_light_images_are_dark():
    rng = np.random.default_rng(2)
    identity = sample_identity(rng)
    dark = render_face(identity, sample_view(rng, identity, PLACEMENT, low_light=True), 96, 96, rng)
    bright = render_face(identity, sample_view(rng, identity, PLACEMENT, low_light=False), 96, 96, rng)
    assert dark.attributes["low_light"] and not bright.attributes["low_light"]
    assert dark.image.mean() < 0.5 * bright.image.mean()


def test_renderer_speed():
    """Thousands of images per minute on one core (loose bound: the CI machine is shared)."""
    start, n = time.perf_counter(), 60
    for i in range(n):
        rng = np.random.default_rng(i)
        identity = sample_identity(rng)
        render_face(identity, sample_view(rng, identity, celeba.ALIGNED_PLACEMENT), 178, 218, rng)
    per_second = n / (time.perf_counter() - start)
    print(f"face renderer: {per_second:.0f} images/s at 178x218")
    assert per_second > 40


# ---------------------------------------------------------------- writers: CelebA / MAFL


@pytest.fixture(scope="module")
def celeba_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("raw") / "celeba"
    assert synthetic.write_dataset("celeba", root, {"train": 24, "val": 4, "test": 8}, SEED) == \
        {"train": 24, "val": 4, "test": 8}
    return root


def _rows(path: Path, header: bool) -> list[list[str]]:
    lines = path.read_text().splitlines()
    if header:
        assert lines[0] == str(len(lines) - 2)  # count line
        return [line.split() for line in lines[2:]]
    return [line.split() for line in lines]


def test_celeba_files_follow_the_official_format(celeba_root):
    names = [f"{i:06d}.jpg" for i in range(1, 37)]
    lines = (celeba_root / "list_landmarks_align_celeba.txt").read_text().splitlines()
    assert lines[0] == "36" and lines[1].split() == celeba.LANDMARK_HEADER.split()
    aligned = _rows(celeba_root / "list_landmarks_align_celeba.txt", header=True)
    assert [r[0] for r in aligned] == names and all(len(r) == 11 for r in aligned)
    assert (celeba_root / "list_bbox_celeba.txt").read_text().splitlines()[1].split() == \
        ["image_id", "x_1", "y_1", "width", "height"]
    attr_lines = (celeba_root / "list_attr_celeba.txt").read_text().splitlines()
    assert attr_lines[0] == "36" and attr_lines[1].split() == list(celeba.CELEBA_ATTRIBUTES)
    assert len(celeba.CELEBA_ATTRIBUTES) == 40 and "  1" in attr_lines[2]  # +1 written as ' 1' after a space
    attrs = np.array([r[1:] for r in _rows(celeba_root / "list_attr_celeba.txt", header=True)], int)
    assert attrs.shape == (36, 40) and set(np.unique(attrs)) <= {-1, 1}
    hair = [celeba.CELEBA_ATTRIBUTES.index(h) for h in ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")]
    assert ((attrs[:, hair] == 1).sum(axis=1) == 1).all()  # exactly one hair colour
    partition = _rows(celeba_root / "list_eval_partition.txt", header=False)
    assert [int(r[1]) for r in partition] == [0] * 24 + [1] * 4 + [2] * 8
    identity = {r[0]: int(r[1]) for r in _rows(celeba_root / "identity_CelebA.txt", header=False)}
    part = {r[0]: int(r[1]) for r in partition}
    by_id = {}
    for name, ident in identity.items():
        by_id.setdefault(ident, set()).add(part[name])
    assert all(len(parts) == 1 for parts in by_id.values())  # identities never cross partitions


def test_celeba_aligned_geometry_matches_the_protocol_crop(celeba_root):
    rows = _rows(celeba_root / "list_landmarks_align_celeba.txt", header=True)
    points = np.array([r[1:] for r in rows], float).reshape(-1, 5, 2)
    with Image.open(celeba_root / "img_align_celeba" / rows[0][0]) as image:
        assert image.size == (178, 218) and image.format == "JPEG"
    mid_eye = points[:, :2].mean(axis=1)
    # CelebA's alignment: eyes near (69, 109) and (106, 113); after the crop top=30 178x178 all points inside
    assert np.abs(mid_eye - [88, 111]).max() < 8
    assert (np.linalg.norm(points[:, 1] - points[:, 0], axis=1) > 0.18 * 178).all()
    assert (points[..., 1] - 30 > 10).all() and (points[..., 1] - 30 < 168).all()


def test_celeba_in_the_wild_images_have_the_same_names_and_boxed_landmarks(celeba_root):
    wild = _rows(celeba_root / "list_landmarks_celeba.txt", header=True)
    boxes = _rows(celeba_root / "list_bbox_celeba.txt", header=True)
    for (name, *pts), (box_name, *box) in zip(wild, boxes):
        assert name == box_name and (celeba_root / "img_align_celeba" / name).is_file()
        with Image.open(celeba_root / "img_celeba" / name) as image:
            width, height = image.size
        x, y, w, h = map(int, box)
        p = np.array(pts, float).reshape(5, 2)
        assert 0 <= x and 0 <= y and x + w <= width and y + h <= height
        assert (p[:, 0] >= x).all() and (p[:, 0] <= x + w).all() and (p[:, 1] >= y).all() and (p[:, 1] <= y + h).all()


def test_mafl_lists_are_a_subset_of_celeba_partitions(celeba_root, tmp_path):
    counts = synthetic.write_dataset("mafl", tmp_path / "mafl", {"train": 10, "test": 5}, SEED, celeba_root=celeba_root)
    assert counts == {"train": 10, "test": 5}
    part = {r[0]: int(r[1]) for r in _rows(celeba_root / "list_eval_partition.txt", header=False)}
    train = (tmp_path / "mafl" / "training.txt").read_text().split()
    test = (tmp_path / "mafl" / "testing.txt").read_text().split()
    assert len(train) == 10 and len(test) == 5 and train == sorted(train) and not set(train) & set(test)
    assert {part[n] for n in train + test} == {0}  # both from the CelebA training partition
    with pytest.raises(InputError, match="partition 0"):
        synthetic.write_dataset("mafl", tmp_path / "m2", {"train": 20, "test": 5}, SEED, celeba_root=celeba_root)


def test_celeba_and_mafl_parse_with_the_project_readers(celeba_root, tmp_path):
    aligned = celeba_reader.read_landmarks(celeba_root, aligned=True)
    assert len(aligned.names) == 36 and celeba_reader.read_attributes(celeba_root).values.shape == (36, 40)
    assert celeba_reader.read_bboxes(celeba_root).values.shape == (36, 4)
    assert len(celeba_reader.read_partition(celeba_root).names) == 36
    assert len(celeba_reader.read_identities(celeba_root).names) == 36
    assert len(celeba_reader.read_landmarks(celeba_root, aligned=False).names) == 36
    synthetic.write_dataset("mafl", tmp_path / "mafl", {"train": 6, "test": 3}, SEED, celeba_root=celeba_root)
    assert len(mafl_reader.read_split(tmp_path / "mafl", "test")) == 3


# ---------------------------------------------------------------- writers: AFLW_M / AFLW_R / 300W


def test_aflw_m_layout(tmp_path):
    root = tmp_path / "aflw_m"
    assert synthetic.write_dataset("aflw_m", root, {"train": 5, "test": 3}, SEED) == {"train": 5, "test": 3}
    raw = (root / "MTFL" / "testing.txt").read_bytes()
    lines = raw.decode().split("\r\n")[:-1]
    assert raw.endswith(b"\r\n") and len(lines) == 3
    assert all(line.startswith(" AFLW\\") for line in lines)  # leading space, Windows separator
    test = pd.read_csv(root / "MTFL" / "testing.txt", header=None, sep=r"\s+")  # DVE reads it this way
    assert test.shape == (3, 15)
    coords = test.iloc[:, 1:11].to_numpy(float).reshape(-1, 2, 5).transpose(0, 2, 1)
    for i, path in enumerate(test[0]):
        *_, rendered = aflw._render_aflw_m(SEED, "test", i)
        assert np.allclose(coords[i] - 1, rendered.landmarks5, atol=1e-3)  # 1-based in the file
        with Image.open(root / "MTFL" / path.replace("\\", "/")) as image:
            assert image.size == (150, 150)
    assert set(test[11]) <= {1, 2} and set(test[14]) <= {1, 2, 3, 4, 5}
    csv = pd.read_csv(root / "aflw_cropped" / "facedata_cropped.csv", sep=",", header=0)
    train = csv[csv.set == 1]
    assert len(train) == 5 and {"image_file", "crop_file", "set"} <= set(csv.columns)
    testims = [t.split("-")[-1] for t in test[0]]
    assert all(x in csv.image_file.to_list() for x in testims)  # DVE's assertions
    assert not set(train.image_file) & set(testims)
    points = train.iloc[:, 4:14].to_numpy(float).reshape(-1, 5, 2)
    first = aflw._render_aflw_m(SEED, "train", 0)[2]
    assert np.allclose(points[0] - 1, first.landmarks5, atol=1e-3)  # interleaved x, y, 1-based
    for crop in train.crop_file:
        with Image.open(root / "aflw_cropped" / crop) as image:
            assert image.size == (150, 150)
    reader = aflw_m_reader
    assert len(reader.read_test(root)) == 3 and len(reader.read_train(root)) == 5


def test_aflw_r_layout(tmp_path):
    root = tmp_path / "aflw_r"
    synthetic.write_dataset("aflw_r", root, {"train": 4, "test": 3}, SEED)
    for split, n in (("train", 4), ("test", 3)):
        names = (root / f"aflw_{split}_images.txt").read_text().splitlines()
        mat = scipy.io.loadmat(root / f"aflw_{split}_keypoints.mat")
        assert len(names) == n and mat["gt"].shape == (n, 5, 2) and mat["hw"].shape == (n, 2)
        for index, (name, gt, (h, w)) in enumerate(zip(names, mat["gt"], mat["hw"])):
            with Image.open(root / "output" / name) as image:
                assert image.size == (w, h)  # hw is (height, width)
            rendered = aflw._render_aflw_r(SEED, split, index).landmarks5
            assert np.allclose(gt, rendered[:, ::-1])  # (y, x) order, 0-based
        assert (mat["hw"][:, 0] != mat["hw"][:, 1]).any()  # non-square images: the protocol's resize matters
    reader = aflw_r_reader
    assert len(reader.read_split(root, "test")) == 3


def test_w300_layout_reads_like_dve(tmp_path):
    root = tmp_path / "w300"
    assert synthetic.write_dataset("300w", root, {"train": 6, "test": 6}, SEED) == {"train": 6, "test": 6}
    found = {"train": 0, "test": 0}
    for split, subsets in w300.W300_SUBSETS.items():
        for folder, suffix, _ in subsets:
            mat = scipy.io.loadmat(root / "Bounding Boxes" / f"bounding_boxes_{suffix}.mat")
            entries = mat["bounding_boxes"]
            for i in range(entries.shape[1]):  # DVE's exact access pattern
                name = entries[0, i]["imgName"][0, 0][0]
                box = entries[0, i]["bb_ground_truth"][0, 0][0]
                if suffix == "ibug" and not name.startswith("image"):
                    assert not (root / folder / name).exists()
                    continue
                text = (root / folder / (name[:-3] + "pts")).read_text()
                assert text.splitlines()[:3] == ["version: 1", "n_points:  68", "{"] and text.splitlines()[-1] == "}"
                pts = np.array(text.split()[5:-1], float).reshape(-1, 2)
                rendered = w300._render(SEED, folder, i)[1].landmarks68
                assert np.allclose(pts - 1, rendered, atol=1e-3)  # 68 points, 1-based in the file
                assert np.allclose(box, [*pts.min(axis=0), *pts.max(axis=0)])  # tight box, same 1-based frame
                with Image.open(root / folder / name) as image:
                    assert (pts >= 1).all() and (pts[:, 0] <= image.size[0]).all() and (pts[:, 1] <= image.size[1]).all()
                found[split] += 1
    assert found == {"train": 6, "test": 6}
    reader = w300_reader
    assert len(reader.read_split(root, "train")) == 6 and len(reader.read_split(root, "test")) == 6


# ---------------------------------------------------------------- writers: GAN datasets


def test_ffhq_tree(tmp_path):
    root = tmp_path / "ffhq"
    synthetic.write_dataset("ffhq", root, {"train": 3}, SEED, image_size=32)
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))
    assert files == ["images1024x1024/00000/00000.png", "images1024x1024/00000/00001.png",
                     "images1024x1024/00000/00002.png"]
    assert gan_sets.ffhq_relative_path(1234) == "images1024x1024/01000/01234.png"
    with Image.open(root / files[0]) as image:
        assert image.size == (32, 32)
    reader = gan_ffhq
    assert len(reader.list_ffhq_images(root)) == 3


def test_lsun_lmdb(tmp_path):
    root = tmp_path / "lsun"
    synthetic.write_dataset("lsun_church", root, {"train": 4}, SEED, image_size=24)
    env = lmdb.open(str(root / "church_outdoor_train_lmdb"), readonly=True, lock=False)
    with env.begin() as txn:
        items = list(txn.cursor())
    env.close()
    assert len(items) == 4 and all(len(key) == 40 for key, _ in items)
    import io
    with Image.open(io.BytesIO(items[0][1])) as image:
        assert image.format == "WEBP" and image.size == (32, 24)
    reader = gan_lsun
    env = reader.open_lsun(root / "church_outdoor_train_lmdb")
    assert len(reader.list_lsun_keys(env)) == 4
    env.close()


def test_animalface_and_cub(tmp_path):
    synthetic.write_dataset("animalface", tmp_path / "af", {"dog": 2, "cat": 3}, SEED, image_size=32)
    assert len(list((tmp_path / "af" / "Image" / "DogHead").glob("*.jpg"))) == 2
    assert len(list((tmp_path / "af" / "Image" / "CatHead").glob("*.jpg"))) == 3
    assert synthetic.write_dataset("cub", tmp_path / "cub", {"train": 3, "test": 1}, SEED, image_size=48) == \
        {"train": 3, "test": 1}
    base = tmp_path / "cub" / "CUB_200_2011"
    images = [line.split() for line in (base / "images.txt").read_text().splitlines()]
    boxes = [line.split() for line in (base / "bounding_boxes.txt").read_text().splitlines()]
    split = [line.split() for line in (base / "train_test_split.txt").read_text().splitlines()]
    assert [i for i, _ in images] == ["1", "2", "3", "4"] and [s for _, s in split] == ["1", "1", "1", "0"]
    for (image_id, relative), (box_id, *box) in zip(images, boxes):
        x, y, w, h = map(float, box)
        with Image.open(base / "images" / relative) as image:
            assert image_id == box_id and image.size[0] == 48
            assert x >= 0 and y >= 0 and x + w <= image.size[0] and y + h <= image.size[1] and w > 5 and h > 5
    cub_reader = gan_cub
    assert len(cub_reader.read_cub(base)) == 4
    af_reader = gan_animalface
    assert len(af_reader.list_animalface_images(tmp_path / "af", "animalface_cat")) == 3


# ---------------------------------------------------------------- determinism, atomicity, errors


SMALL_SPEC = TINY_SPEC


def _spec(base: Path, seed: int) -> dict:
    return {name: {**entry, "root": base / name, "seed": seed} for name, entry in SMALL_SPEC.items()}


def test_write_all_is_deterministic_to_the_byte(tmp_path):
    first = synthetic.write_all(_spec(tmp_path / "a", SEED))
    synthetic.write_all(_spec(tmp_path / "b", SEED))
    synthetic.write_all(_spec(tmp_path / "c", SEED + 1))
    assert first["mafl"] == {"train": 2, "test": 1} and first["w300"] == {"train": 3, "test": 3}
    a, b, c = tree_digest(tmp_path / "a"), tree_digest(tmp_path / "b"), tree_digest(tmp_path / "c")
    assert a == b and len(a) > 50
    shared = a.keys() & c.keys()
    assert sum(a[k] != c[k] for k in shared) > 0.8 * len(shared)  # another seed gives other images


def test_a_failed_write_leaves_no_layout(tmp_path, monkeypatch):
    root = tmp_path / "aflw_r"
    calls = []

    def failing_save(path, image):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(aflw, "save_jpeg", failing_save)
    with pytest.raises(KeyboardInterrupt):
        synthetic.write_dataset("aflw_r", root, {"train": 5}, SEED)
    assert not root.exists() and list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    synthetic.write_dataset("aflw_r", root, {"train": 2}, SEED)
    synthetic.write_dataset("aflw_r", root, {"train": 1}, SEED)  # rewriting replaces the old tree
    assert len((root / "aflw_train_images.txt").read_text().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["aflw_r"]


@pytest.mark.parametrize("call, message", [
    (lambda r: synthetic.write_dataset("imagenet", r, {}, 0), "unknown synthetic dataset"),
    (lambda r: synthetic.write_dataset("celeba", r, {"training": 3}, 0), "unknown count keys"),
    (lambda r: synthetic.write_dataset("aflw_r", r, {"train": -1}, 0), "non-negative integer"),
    (lambda r: synthetic.write_dataset("celeba", r, {"train": 1}, 0, image_size=64), "image_size must be null"),
    (lambda r: synthetic.write_dataset("mafl", r, {"train": 1}, 0), "celeba_root"),
    (lambda r: synthetic.write_dataset("mafl", r, {"train": 1}, 0, celeba_root=r / "nowhere"), "list_eval_partition"),
])
def test_bad_requests_raise_input_errors(tmp_path, call, message):
    with pytest.raises(InputError, match=message):
        call(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_every_preparer_reads_the_synthetic_layouts(tmp_path):
    """End to end as the workflow wires it: raw root = <synthetic root>/<dataset>, then each preparer."""
    written = synthetic.write_all(_spec(tmp_path / "raw", SEED))
    raw_roots = {name: tmp_path / "raw" / name for name in written}
    ssl_train = written["celeba"]["train"] - sum(written["mafl"].values())  # partition 0 minus every MAFL image
    expected = {
        "celeba_ssl": {"train": ssl_train}, "mafl": written["mafl"], "mafl_unaligned": written["mafl"],
        "aflw_m": written["aflw_m"], "aflw_r": written["aflw_r"], "w300": written["w300"],
        "celeba_attributes": written["celeba"], "ffhq": written["ffhq"], "lsun_church": written["lsun_church"],
        "animalface_dog": {"train": written["animalface"]["dog"]},
        "animalface_cat": {"train": written["animalface"]["cat"]},
        "cub": {"train": sum(written["cub"].values())},
    }
    assert set(expected) == set(PREPARER_INPUTS)
    for name, counts in expected.items():
        geometry = {"resize": 40, "crop": 4, "resolution": 16}  # the workflow passes the whole config geometry
        prepare(name, {raw: raw_roots[raw] for raw in PREPARER_INPUTS[name]}, tmp_path / "prepared" / name,
                geometry, expected_counts=counts)
        store = open_store(tmp_path / "prepared" / name)
        assert len(store.images) == sum(counts.values()), name


def test_allocate_splits_exactly():
    assert common.allocate(400, [337, 2000, 811]) == [43, 254, 103]
    assert sum(common.allocate(7, [1, 1, 1])) == 7 and common.allocate(0, [1, 2]) == [0, 0]
