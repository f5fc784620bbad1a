"""Readers on small hand-written files in the official raw formats, oddities included.

The `write_*` helpers below write tiny raw layouts (also used by test_prepare.py and test_bad_input.py).
Images are black with a white dot at every landmark so tests can check that a prepared landmark still
sits on its dot.
"""

from pathlib import Path

import numpy as np
from PIL import Image
from scipy.io import savemat

from lead_hsr.data.readers import aflw_m, aflw_r, celeba, mafl, w300

# ----------------------------------------------------------------------------------------------- writers


def dot_image(path: Path, width: int, height: int, points, radius: int = 2, fmt: str = "JPEG") -> None:
    """Black image with a white square of side 2*radius+1 at each 0-based (x, y) point."""
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 2] = 40  # a little colour, so channel order errors would show
    for x, y in np.asarray(points).reshape(-1, 2):
        x, y = int(round(x)), int(round(y))
        image[max(y - radius, 0):y + radius + 1, max(x - radius, 0):x + radius + 1] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, fmt, quality=95) if fmt == "JPEG" else Image.fromarray(image).save(path, fmt)


def celeba_points(index: int, dx: float = 0.0, dy: float = 0.0) -> np.ndarray:
    """5 well-separated integer landmarks for aligned CelebA image `index` (0-based pixels)."""
    base = np.array([[69, 109], [106, 113], [88, 138], [73, 152], [108, 154]], float)
    return base + np.array([index % 3 + dx, index % 2 + dy])


def write_celeba(root: Path, partition: list[int], wild_size=(120, 140)) -> list[str]:
    """CelebA root with len(partition) images; returns the image names. Uses repeated spaces like the original."""
    names = [f"{i + 1:06d}.jpg" for i in range(len(partition))]
    align_rows, wild_rows, box_rows = [], [], []
    for i, name in enumerate(names):
        aligned = celeba_points(i)
        dot_image(root / "img_align_celeba" / name, 178, 218, aligned)
        wild = np.floor(celeba_points(i) * 0.5 + np.array([10, -20]))  # the same face smaller, elsewhere
        dot_image(root / "img_celeba" / name, *wild_size, wild, radius=1)
        align_rows.append(name + "".join(f" {int(v):4d}" for v in aligned.ravel()))
        wild_rows.append(name + "".join(f" {int(v):4d}" for v in wild.ravel()))
        box_rows.append(f"{name}    40  30  40  45")
    header = " ".join(celeba.LANDMARK_HEADER)
    (root / "list_landmarks_align_celeba.txt").write_text(f"{len(names)}\n{header}\n" + "\n".join(align_rows) + "\n")
    (root / "list_landmarks_celeba.txt").write_text(f"{len(names)}\n{header}\n" + "\n".join(wild_rows) + "\n")
    (root / "list_bbox_celeba.txt").write_text(f"{len(names)}\nimage_id x_1 y_1 width height\n"
                                               + "\n".join(box_rows) + "\n")
    (root / "list_eval_partition.txt").write_text("".join(f"{n} {p}\n" for n, p in zip(names, partition)))
    (root / "identity_CelebA.txt").write_text("".join(f"{n} {100 + i // 2}\n" for i, n in enumerate(names)))
    attrs = ["  ".join("1" if (i + j) % 3 == 0 else "-1" for j in range(40)) for i in range(len(names))]
    (root / "list_attr_celeba.txt").write_text(f"{len(names)}\n" + " ".join(celeba.ATTRIBUTE_NAMES) + " \n"
                                               + "".join(f"{n}  {a}\n" for n, a in zip(names, attrs)))
    return names


def write_mafl(root: Path, train: list[str], test: list[str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "training.txt").write_text("\n".join(train) + "\n")
    (root / "testing.txt").write_text("\n".join(test) + "\n")


def aflw_points(index: int) -> np.ndarray:
    """5 0-based (x, y) landmarks inside a 150 x 150 crop."""
    return np.array([[50, 60], [100, 60], [75, 85], [55, 110], [95, 110]], float) + index


def write_aflw_m(root: Path, n_train: int = 3, n_test: int = 2) -> None:
    """MTFL/testing.txt (leading space, Windows separators, x1..x5 y1..y5, 1-based) + aflw_cropped csv."""
    lines = []
    for i in range(n_test):
        points = aflw_points(i)
        dot_image(root / "MTFL" / "AFLW" / f"{i:04d}-image{90000 + i}.jpg", 150, 150, points)
        one_based = points + 1
        values = " ".join(f"{v:.2f}" for v in np.concatenate([one_based[:, 0], one_based[:, 1]]))
        lines.append(f" AFLW\\{i:04d}-image{90000 + i}.jpg {values} 1 2 2 3")
    (root / "MTFL" / "testing.txt").write_text("\r\n".join(lines) + "\r\n")
    header = "face_id,image_file,crop_file,set," + ",".join(f"x{k},y{k}" for k in range(1, 6))
    rows = [header]
    for i in range(n_train + 1):  # the last row has set == 2 and must be ignored
        points = aflw_points(10 + i)
        crop = f"crops/face{i:05d}.jpg"
        dot_image(root / "aflw_cropped" / crop, 150, 150, points)
        flat = ",".join(f"{v:.1f}" for v in (points + 1).ravel())  # interleaved x, y, 1-based
        rows.append(f"{i},image{i:05d}.jpg,{crop},{1 if i < n_train else 2},{flat}")
    (root / "aflw_cropped" / "facedata_cropped.csv").write_text("\n".join(rows) + "\n")


def write_aflw_r(root: Path, sizes=((120, 90), (80, 100), (100, 100))) -> dict[str, np.ndarray]:
    """aflw_{split}_images.txt + keypoints.mat with gt in (y, x) order and hw; returns the (x, y) truth."""
    truth = {}
    for split, count in (("train", 2), ("test", 1)):
        names, gt, hw, xy = [], [], [], []
        for i in range(count):
            height, width = sizes[len(truth) * 2 + i]
            points = np.array([[20, 25], [width - 25, 25], [width / 2, height / 2], [25, height - 20],
                               [width - 25, height - 20]], float)
            name = f"{split}/img{i}.png"
            dot_image(root / "output" / name, width, height, points, fmt="PNG")
            names.append(name)
            gt.append(points[:, ::-1])  # stored as (y, x)
            hw.append([height, width])
            xy.append(points)
        (root / f"aflw_{split}_images.txt").write_text("\n".join(names) + "\n")
        savemat(root / f"aflw_{split}_keypoints.mat", {"gt": np.array(gt), "hw": np.array(hw)})
        truth[split] = np.array(xy)
    return truth


W300_SUBSETS = {"afw": "afw", "helen_trainset": "helen/trainset", "lfpw_trainset": "lfpw/trainset",
                "helen_testset": "helen/testset", "lfpw_testset": "lfpw/testset", "ibug": "ibug"}


def w300_points(box) -> np.ndarray:
    """68 0-based points spread over the box (a 17 x 4 grid)."""
    xmin, ymin, xmax, ymax = box
    xs = np.linspace(xmin + 2, xmax - 4, 17)
    ys = np.linspace(ymin + 2, ymax - 4, 4)
    return np.array([[x, y] for y in ys for x in xs])


def write_pts(path: Path, points_0based) -> None:
    body = "\n".join(f"{x + 1:.3f} {y + 1:.3f}" for x, y in points_0based)
    path.write_text(f"version: 1\nn_points:  68\n{{\n{body}\n}}\n")


def write_w300(root: Path) -> None:
    """One image per subset, plus an iBUG box entry whose name does not start with 'image' (no files)."""
    (root / "Bounding Boxes").mkdir(parents=True)
    for k, (subset, folder) in enumerate(W300_SUBSETS.items()):
        name = f"image_{k:03d}.jpg" if subset == "ibug" else f"{subset}_{k}.jpg"
        box = (20.0 + k, 25.0, 20.0 + k + 60, 25.0 + 64)  # xmin ymin xmax ymax, 1-based
        points = w300_points(np.array(box) - 1)
        dot_image(root / folder / name, 130, 120, points[[0, 16, 30, 67]], radius=1)
        write_pts(root / folder / (Path(name).stem + ".pts"), points)
        entries = [(name, box)] + ([("other_999.jpg", box)] if subset == "ibug" else [])
        records = np.zeros((1, len(entries)), dtype=[("imgName", "O"), ("bb_detector", "O"), ("bb_ground_truth", "O")])
        for j, (entry_name, entry_box) in enumerate(entries):
            records[0, j] = (entry_name, np.array(entry_box) + 1, np.array(entry_box, float).reshape(1, 4))
        savemat(root / "Bounding Boxes" / f"bounding_boxes_{subset}.mat", {"bounding_boxes": records})


# ----------------------------------------------------------------------------------------------- tests


def test_celeba_files(tmp_path):
    names = write_celeba(tmp_path, [0, 0, 1, 2])
    rows = celeba.read_landmarks(tmp_path)
    assert rows.names == names
    np.testing.assert_array_equal(celeba.landmarks_xy(rows)[1], celeba_points(1))
    assert rows.where(0).endswith("list_landmarks_align_celeba.txt:3")  # after count and header lines
    assert celeba.read_partition(tmp_path).values[:, 0].tolist() == [0, 0, 1, 2]
    np.testing.assert_array_equal(celeba.read_bboxes(tmp_path).values[0], [40, 30, 40, 45])
    assert celeba.read_identities(tmp_path).values[:, 0].tolist() == [100, 100, 101, 101]
    attributes = celeba.read_attributes(tmp_path)
    assert attributes.values.shape == (4, 40) and attributes.values[0, 0] == 1 and attributes.values[0, 1] == -1
    wild = celeba.landmarks_xy(celeba.read_landmarks(tmp_path, aligned=False))
    np.testing.assert_array_equal(wild[0], np.floor(celeba_points(0) * 0.5 + [10, -20]))


def test_celeba_official_subfolders(tmp_path):
    """The Google-Drive layout keeps the files in Anno/, Eval/ and images in Img/."""
    write_celeba(tmp_path / "flat", [0, 1])
    (tmp_path / "official" / "Anno").mkdir(parents=True)
    (tmp_path / "official" / "Eval").mkdir()
    (tmp_path / "official" / "Img").mkdir()
    for f in (tmp_path / "flat").iterdir():
        target = "Eval" if f.name == "list_eval_partition.txt" else "Img" if f.is_dir() else "Anno"
        f.rename(tmp_path / "official" / target / f.name)
    assert celeba.read_partition(tmp_path / "official").names == ["000001.jpg", "000002.jpg"]
    assert celeba.image_dir(tmp_path / "official").name == "img_align_celeba"


def test_mafl_lists(tmp_path):
    write_mafl(tmp_path, ["000003.jpg", "000001.jpg"], ["000002.jpg"])
    assert mafl.read_split(tmp_path, "train") == ["000003.jpg", "000001.jpg"]
    assert mafl.read_split(tmp_path, "test") == ["000002.jpg"]


def test_aflw_m_windows_separators_leading_spaces_one_based(tmp_path):
    write_aflw_m(tmp_path)
    test = aflw_m.read_test(tmp_path)
    assert test.files == ["MTFL/AFLW/0000-image90000.jpg", "MTFL/AFLW/0001-image90001.jpg"]
    np.testing.assert_allclose(test.landmarks[1], aflw_points(1))  # x1..x5 y1..y5, 1-based -> (x, y) 0-based
    train = aflw_m.read_train(tmp_path)
    assert train.files == [f"aflw_cropped/crops/face{i:05d}.jpg" for i in range(3)]  # set == 2 row dropped
    np.testing.assert_allclose(train.landmarks[2], aflw_points(12))  # interleaved, 1-based
    assert aflw_m.mtfl_source_images(test) == {"image90000.jpg", "image90001.jpg"}


def test_aflw_r_yx_order_and_sizes(tmp_path):
    truth = write_aflw_r(tmp_path)
    train = aflw_r.read_split(tmp_path, "train")
    assert train.files == ["output/train/img0.png", "output/train/img1.png"]
    np.testing.assert_allclose(train.landmarks, truth["train"])  # (y, x) in the .mat -> (x, y)
    assert train.extra["hw"].tolist() == [[120, 90], [80, 100]]


def test_w300_pts_boxes_and_ibug_names(tmp_path):
    write_w300(tmp_path)
    train, test = w300.read_split(tmp_path, "train"), w300.read_split(tmp_path, "test")
    assert train.files == ["afw/afw_0.jpg", "helen/trainset/helen_trainset_1.jpg", "lfpw/trainset/lfpw_trainset_2.jpg"]
    assert test.files[-1] == "ibug/image_005.jpg" and len(test) == 3  # 'other_999.jpg' skipped
    assert train.landmarks.shape == (3, 68, 2)
    np.testing.assert_allclose(train.landmarks[0], w300_points(np.array([20.0, 25, 80, 89]) - 1), atol=1e-3)
    np.testing.assert_allclose(train.extra["box"][0], [20, 25, 80, 89])


def test_pts_parser_reads_official_header_variants(tmp_path):
    path = tmp_path / "a.pts"
    body = "\n".join("1.5 2.5" for _ in range(68))
    path.write_text(f"version: 1\r\nn_points: 68\r\n{{\r\n{body}\r\n}}")  # CRLF, single space, no final newline
    points = w300.read_pts(path)
    assert points.shape == (68, 2) and np.allclose(points[0], [0.5, 1.5])
