"""Preparers on tiny raw layouts: splits, order, counts, and prepared landmarks sitting on their drawn dots."""

import numpy as np
import pytest

from lead_hsr.data import geometry as geo
from lead_hsr.data.prepare import PAPER_COUNTS, PREPARERS, prepare, store_is_current
from lead_hsr.data.store import open_store
from lead_hsr.errors import InputError
from test_readers import write_aflw_m, write_aflw_r, write_celeba, write_mafl, write_w300

PAPER = {"resize": 136, "crop": 20}


def assert_on_dots(store, indices=None, tolerance=1.5):
    """Every landmark (or those in `indices`) has the centroid of its bright dot within `tolerance` px."""
    for image, landmarks in zip(store.images, store.landmarks):
        for x, y in landmarks if indices is None else landmarks[indices]:
            x0, y0 = int(round(x)) - 5, int(round(y)) - 5
            patch = image[max(y0, 0):y0 + 11, max(x0, 0):x0 + 11, 0].astype(float)
            patch = np.where(patch > 100, patch, 0)
            assert patch.sum() > 0, f"no dot near landmark ({x:.1f}, {y:.1f})"
            ys, xs = np.mgrid[max(y0, 0):max(y0, 0) + patch.shape[0], max(x0, 0):max(x0, 0) + patch.shape[1]]
            centroid = np.array([(xs * patch).sum(), (ys * patch).sum()]) / patch.sum()
            assert np.hypot(*(centroid - [x, y])) < tolerance, (centroid, (x, y))


@pytest.fixture
def celeba_roots(tmp_path):
    names = write_celeba(tmp_path / "celeba", [0, 0, 0, 0, 1, 2, 0, 2])
    write_mafl(tmp_path / "mafl", train=[names[3], names[1], names[4]], test=[names[7], names[2]])
    return {"celeba": tmp_path / "celeba", "mafl": tmp_path / "mafl"}, names


def test_registry_and_paper_counts():
    assert set(PREPARERS) == {"celeba_ssl", "mafl", "mafl_unaligned", "aflw_m", "aflw_r", "w300"}
    assert PAPER_COUNTS["mafl"] == {"train": 19_000, "test": 1_000}
    assert PAPER_COUNTS["aflw_m"] == {"train": 10_122, "test": 2_995}
    assert PAPER_COUNTS["aflw_r"] == {"train": 10_122, "test": 2_991}
    assert PAPER_COUNTS["w300"] == {"train": 3_148, "test": 689}


def test_mafl(tmp_path, celeba_roots):
    roots, names = celeba_roots
    store = prepare("mafl", roots, tmp_path / "out", PAPER, {"train": 3, "test": 2})
    assert store.images.shape == (5, 136, 136, 3) and store.landmarks.shape == (5, 5, 2)
    assert store.table["file"].tolist() == [f"img_align_celeba/{n}" for n in (names[3], names[1], names[4])] + [
        f"img_align_celeba/{n}" for n in sorted([names[7], names[2]])]  # test in sorted order
    assert store.table["identity"].tolist()[:3] == [101, 100, 102]
    # names[3] is image index 3: its landmarks are the base points + (3 % 3, 3 % 2) = (0, 1)
    raw = np.array([[69, 109], [106, 113], [88, 138], [73, 152], [108, 154]]) + [0, 1]
    np.testing.assert_allclose(store.landmarks[0], (raw - [0, 30]) * 136 / 178)  # DESIGN 4.1 formula
    assert_on_dots(store)
    assert store.manifest["counts"] == {"train": 3, "val": 0, "test": 2}
    assert store.manifest["geometry"] == PAPER and len(store.manifest["sources_sha256"]) == 64
    cropped, moved = geo.central_crop(store.images[:2], store.landmarks[:2], 20)
    assert cropped.shape == (2, 96, 96, 3) and np.allclose(moved, store.landmarks[:2] - 20)


def test_celeba_ssl_excludes_every_mafl_image(tmp_path, celeba_roots):
    roots, names = celeba_roots
    store = prepare("celeba_ssl", roots, tmp_path / "out", {"resize": 88, "crop": 12}, {"train": 2})
    # partition 0 = images 0, 1, 2, 3, 6; MAFL holds 1, 2, 3 (and 4, 7 outside partition 0)
    assert store.table["file"].tolist() == [f"img_align_celeba/{names[i]}" for i in (0, 6)]
    assert store.images.shape == (2, 88, 88, 3) and store.manifest["geometry"] == {"resize": 88, "crop": 12}
    assert_on_dots(store)


def test_mafl_unaligned_zoom_is_seeded_and_recorded(tmp_path, celeba_roots):
    roots, _ = celeba_roots
    first = prepare("mafl_unaligned", roots, tmp_path / "a", PAPER, {"train": 3, "test": 2}, seed=3)
    again = prepare("mafl_unaligned", roots, tmp_path / "b", PAPER, {"train": 3, "test": 2}, seed=3)
    other = prepare("mafl_unaligned", roots, tmp_path / "c", PAPER, {"train": 3, "test": 2}, seed=4)
    zoom = first.table["zoom"].to_numpy()
    assert np.array_equal(zoom, again.table["zoom"].to_numpy()) and not np.array_equal(zoom, other.table["zoom"])
    train = first.split("train")
    assert np.all((zoom[train] >= 1.0) & (zoom[train] <= 1.5)) and np.all((zoom >= 1.0) & (zoom <= 2.0))
    np.testing.assert_array_equal(first.images, again.images)
    assert first.table[["bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1"]].iloc[0].tolist() == [40, 30, 80, 75]
    assert_on_dots(first, tolerance=2.0)


def test_aflw_m(tmp_path):
    write_aflw_m(tmp_path / "raw")
    store = prepare("aflw_m", {"aflw_m": tmp_path / "raw"}, tmp_path / "out", PAPER, {"train": 3, "test": 2})
    assert store.table["split"].tolist() == ["train"] * 3 + ["test"] * 2
    from test_readers import aflw_points

    np.testing.assert_allclose(store.landmarks[3], aflw_points(0) * 136 / 150)  # DVE: (kp - 1) * 136/150
    assert_on_dots(store)


def test_aflw_r_breaks_aspect_ratio(tmp_path):
    truth = write_aflw_r(tmp_path / "raw")
    store = prepare("aflw_r", {"aflw_r": tmp_path / "raw"}, tmp_path / "out", PAPER, {"train": 2, "test": 1})
    np.testing.assert_allclose(store.landmarks[0], truth["train"][0] * [136 / 90, 136 / 120])  # x*136/w, y*136/h
    assert_on_dots(store, tolerance=2.0)


def test_w300(tmp_path):
    write_w300(tmp_path / "raw")
    store = prepare("w300", {"w300": tmp_path / "raw"}, tmp_path / "out", PAPER, {"train": 3, "test": 3})
    assert store.landmarks.shape == (6, 68, 2)
    assert store.table["file"].iloc[-1] == "ibug/image_005.jpg"
    # the box is scaled to 52 px in a 100 px window, then resized to 136: box width = 52 * 1.36 px
    width = store.landmarks[:, 16, 0] - store.landmarks[:, 0, 0]
    assert np.allclose(width, (60 - 6) * 52 / 61 * 1.36, atol=0.01)
    assert_on_dots(store, indices=[0, 16, 30, 67], tolerance=2.0)


def test_paper_counts_are_the_default(tmp_path):
    write_aflw_r(tmp_path / "raw")
    with pytest.raises(InputError, match=r"split 'train' has 2 images, expected 10122; split 'test' has 1 "
                                         r"images, expected 2991"):
        prepare("aflw_r", {"aflw_r": tmp_path / "raw"}, tmp_path / "out", PAPER)
    assert not (tmp_path / "out").exists()


def test_preparers_read_the_synthetic_raw_layouts(tmp_path):
    """The synthetic writers (lead_hsr.data.synthetic) and these readers agree on every official format."""
    from lead_hsr.data.synthetic import write_all

    counts = {"celeba": {"train": 12, "val": 2, "test": 4}, "mafl": {"train": 6, "test": 3},
              "aflw_m": {"train": 4, "test": 2}, "aflw_r": {"train": 4, "test": 2}, "w300": {"train": 4, "test": 3}}
    written = write_all({name: {"root": tmp_path / name, "counts": c, "seed": 1} for name, c in counts.items()})
    roots = {name: tmp_path / name for name in counts}
    demo = {"resize": 88, "crop": 12}
    for name, raw in [("mafl", "mafl"), ("mafl_unaligned", "mafl"), ("aflw_m", "aflw_m"), ("aflw_r", "aflw_r"),
                      ("w300", "w300"), ("celeba_ssl", None)]:
        store = prepare(name, roots, tmp_path / "out" / name, demo, written[raw] if raw else None)
        if raw:
            assert {s: n for s, n in store.manifest["counts"].items() if n} == written[raw], name
        cropped = store.landmarks - demo["crop"]  # faces sit inside the 64 x 64 training crop
        assert np.all((cropped > 0) & (cropped < 64)), name
    ssl = set(open_store(tmp_path / "out" / "celeba_ssl").table["file"])
    mafl_files = set(open_store(tmp_path / "out" / "mafl").table["file"])
    partition_file = tmp_path / "celeba" / "list_eval_partition.txt"
    partition = dict(line.split() for line in partition_file.read_text().splitlines())
    train_files = {f"img_align_celeba/{n}" for n, code in partition.items() if code == "0"}
    assert ssl == train_files - mafl_files and len(ssl) > 0


def test_changed_raw_set_is_detected(tmp_path, celeba_roots):
    roots, names = celeba_roots
    prepare("mafl", roots, tmp_path / "out", PAPER, {"train": 3, "test": 2})
    assert store_is_current(tmp_path / "out", "mafl", roots)
    landmark_file = roots["celeba"] / "list_landmarks_align_celeba.txt"
    original = landmark_file.read_text()
    landmark_file.write_text(original.replace(" 109 ", " 108 ", 1))  # same size, different content
    assert not store_is_current(tmp_path / "out", "mafl", roots)
    landmark_file.write_text(original)
    assert store_is_current(tmp_path / "out", "mafl", roots)
    with open(roots["celeba"] / "img_align_celeba" / names[7], "ab") as image:
        image.write(b"\0")  # an image changed size
    assert not store_is_current(tmp_path / "out", "mafl", roots)


def test_moving_the_raw_data_keeps_the_hash(tmp_path, celeba_roots):
    roots, _ = celeba_roots
    store = prepare("mafl", roots, tmp_path / "out", PAPER, {"train": 3, "test": 2})
    assert "celeba/list_landmarks_align_celeba.txt" in store.manifest["annotation_sha256"]
    moved = {key: root.rename(tmp_path / f"moved_{key}") for key, root in roots.items()}
    assert store_is_current(tmp_path / "out", "mafl", moved)
