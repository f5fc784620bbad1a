"""GAN dataset preparation on tiny files written in each dataset's real raw layout."""

import io

import lmdb
import numpy as np
import pytest
from PIL import Image

from lead_hsr.data import prepare_gan
from lead_hsr.data.prepare_gan import PREPARERS_GAN
from lead_hsr.data.readers import gan_animalface, gan_cub, gan_ffhq, gan_lsun
from lead_hsr.data.store import open_store
from lead_hsr.errors import InputError


def _random_image(rng, height, width):
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def _save(path, image, fmt="PNG"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, format=fmt)


def _encoded(image, fmt="PNG"):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt)
    return buffer.getvalue()


# ---------------------------------------------------------------- protocol constants


def test_paper_counts_and_subsets():
    assert gan_ffhq.FFHQ_COUNT == 70_000
    assert gan_lsun.LSUN_CHURCH_TRAIN_COUNT == 126_227
    assert gan_animalface.ANIMALFACE_CLASSES == {"animalface_dog": ("Image/DogHead", 389),
                                                 "animalface_cat": ("Image/CatHead", 160)}
    assert gan_cub.CUB_COUNT == 11_788
    assert gan_ffhq.parse_subset("1k") == (1_000, False) and gan_ffhq.parse_subset("10k") == (10_000, False)
    assert gan_ffhq.parse_subset("140k") == (None, True) and gan_ffhq.parse_subset("70k") == (None, False)
    assert prepare_gan.FFHQ_RESAMPLE == Image.Resampling.BOX
    assert gan_ffhq.parse_subset(100) == (100, False)  # demo scale: an image count
    with pytest.raises(InputError, match="subset '5k'"):
        gan_ffhq.parse_subset("5k")
    with pytest.raises(InputError, match="subset 0"):
        gan_ffhq.parse_subset(0)


def test_subset_is_ada_choice():
    chosen = gan_ffhq.subset_indices(70_000, 1_000, seed=0)
    reference = np.sort(np.random.RandomState(0).permutation(70_000)[:1_000])  # independent: permutation API
    np.testing.assert_array_equal(chosen, reference)
    assert len(np.unique(chosen)) == 1_000
    assert not np.array_equal(chosen, gan_ffhq.subset_indices(70_000, 1_000, seed=1))
    # ADA subsets are nested: 1k = first 1k of the same seeded shuffle whose first 2k make the 2k subset
    assert set(chosen) <= set(gan_ffhq.subset_indices(70_000, 2_000, seed=0))


# ---------------------------------------------------------------- geometry


def _block_mean_loops(image, factor):
    """Independent reference: average every factor x factor block with plain loops, round half to even."""
    out = np.zeros((image.shape[0] // factor, image.shape[1] // factor, 3))
    for y in range(out.shape[0]):
        for x in range(out.shape[1]):
            out[y, x] = image[y * factor:(y + 1) * factor, x * factor:(x + 1) * factor].reshape(-1, 3).mean(0)
    return np.rint(out).astype(np.uint8)


def test_box_filter_is_block_average():
    rng = np.random.default_rng(0)
    image = _random_image(rng, 16, 16)
    np.testing.assert_array_equal(prepare_gan.box_downsample(image, 4), _block_mean_loops(image, 4))
    lanczos = prepare_gan.resize_square(image, 4, Image.Resampling.LANCZOS)
    assert np.abs(lanczos.astype(int) - _block_mean_loops(image, 4)).max() > 2  # the check tells filters apart
    odd = prepare_gan.box_downsample(_random_image(rng, 10, 10), 4)  # non-integer factor: PIL BOX fallback
    assert odd.shape == (4, 4, 3)


def test_centre_crop_and_box_crop():
    image = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    np.testing.assert_array_equal(prepare_gan.centre_crop_square(image), image[:, 1:5])
    padded = prepare_gan.crop_box(image, (-1, 0, 3, 4))
    assert padded.shape == (4, 4, 3) and (padded[:, 0] == 0).all()
    np.testing.assert_array_equal(padded[:, 1:], image[:, 0:3])
    assert gan_cub.square_box(10, 20, 30, 10) == (10, 10, 40, 40)


# ---------------------------------------------------------------- FFHQ


def _ffhq_tree(root, n, size=16, seed=0):
    rng = np.random.default_rng(seed)
    images = []
    for i in range(n):
        images.append(_random_image(rng, size, size))
        _save(root / "images1024x1024" / f"{i // 1000 * 1000:05d}" / f"{i:05d}.png", images[-1])
    return images


def test_ffhq_prepare_subset_and_xflip_flag(tmp_path):
    images = _ffhq_tree(tmp_path / "raw", 12)
    geometry = {"resolution": 4}
    store = PREPARERS_GAN["ffhq"]("ffhq_1k", {"ffhq": tmp_path / "raw"}, tmp_path / "s", geometry,
                                  expected_counts={"train": 12}, subset=5, seed=0)
    assert store.manifest["name"] == "ffhq_1k"  # the store's name, the raw root of the preparer
    chosen = gan_ffhq.subset_indices(12, 5, seed=0)
    assert store.table["file"].tolist() == [f"images1024x1024/00000/{i:05d}.png" for i in chosen]
    np.testing.assert_array_equal(store.images[2], _block_mean_loops(images[chosen[2]], 4))
    assert store.manifest["options"]["xflip"] is False and store.manifest["counts"]["train"] == 5

    full = PREPARERS_GAN["ffhq"]("ffhq", {"ffhq": tmp_path / "raw"}, tmp_path / "f", geometry,
                                 expected_counts={"train": 12}, subset="140k")
    assert len(full) == 12 and full.manifest["options"]["xflip"] is True
    assert open_store(tmp_path / "f").manifest["options"]["subset"] == "140k"


def test_ffhq_count_mismatch_and_missing_root(tmp_path):
    _ffhq_tree(tmp_path / "raw", 3)
    with pytest.raises(InputError, match=r"found 3 train images for ffhq, expected 70000"):
        PREPARERS_GAN["ffhq"]("ffhq", {"ffhq": tmp_path / "raw"}, tmp_path / "s", {"resolution": 4})
    with pytest.raises(InputError, match="ffhq-dataset"):
        PREPARERS_GAN["ffhq"]("ffhq", {"ffhq": tmp_path / "nowhere"}, tmp_path / "s", {"resolution": 4})
    with pytest.raises(InputError, match="raw root configured for 'ffhq'"):
        PREPARERS_GAN["ffhq"]("ffhq", {}, tmp_path / "s", {"resolution": 4})
    assert not (tmp_path / "s").exists()


def test_ffhq_corrupt_png_raises_or_is_skipped(tmp_path):
    _ffhq_tree(tmp_path / "raw", 4)
    broken = tmp_path / "raw/images1024x1024/00000/00002.png"
    broken.write_bytes(broken.read_bytes()[:40])  # truncated PNG
    args = ("ffhq", {"ffhq": tmp_path / "raw"}, tmp_path / "s", {"resolution": 4}, {"train": 4})
    with pytest.raises(InputError, match="00002.png"):
        PREPARERS_GAN["ffhq"](*args)
    assert not (tmp_path / "s").exists()
    store = PREPARERS_GAN["ffhq"](*args, skip_corrupt=True)
    assert len(store) == 3 and "00002.png" not in " ".join(store.table["file"])
    assert [entry["file"] for entry in store.manifest["skipped"]] == ["images1024x1024/00000/00002.png"]


# ---------------------------------------------------------------- LSUN


def _lsun_lmdb(path, images, corrupt_key=None):
    env = lmdb.open(str(path), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for i, image in enumerate(images):
            key = f"{i:040x}".encode()
            txn.put(key, b"not an image" if key == corrupt_key else _encoded(image, "WEBP" if i % 2 else "PNG"))
    env.close()


def test_lsun_prepare_centre_crop(tmp_path):
    rng = np.random.default_rng(1)
    images = [_random_image(rng, 8, 12) for _ in range(3)]
    images[0] = np.zeros((8, 12, 3), np.uint8)
    images[0][:, 2:10] = 200  # only the centre 8x8 is bright: a correct crop gives a uniform image
    _lsun_lmdb(tmp_path / "church_outdoor_train_lmdb", images)
    store = PREPARERS_GAN["lsun_church"]("lsun_church", {"lsun_church": tmp_path / "church_outdoor_train_lmdb"},
                                         tmp_path / "s", {"resolution": 4}, {"train": 3})
    assert len(store) == 3 and store.table["file"].iat[0] == f"{0:040x}"
    assert (store.images[0] == 200).all()
    expected = np.asarray(Image.fromarray(images[2][:, 2:10]).resize((4, 4), Image.Resampling.LANCZOS))
    np.testing.assert_array_equal(store.images[2], expected)  # index 2 is PNG (lossless)


def test_lsun_corrupt_value_and_missing_lmdb(tmp_path):
    rng = np.random.default_rng(2)
    bad_key = f"{1:040x}".encode()
    _lsun_lmdb(tmp_path / "db", [_random_image(rng, 8, 8) for _ in range(3)], corrupt_key=bad_key)
    args = ("lsun_church", {"lsun_church": tmp_path / "db"}, tmp_path / "s", {"resolution": 4}, {"train": 3})
    with pytest.raises(InputError, match=bad_key.decode()):
        PREPARERS_GAN["lsun_church"](*args)
    store = PREPARERS_GAN["lsun_church"](*args, skip_corrupt=True)
    assert len(store) == 2 and store.manifest["skipped"][0]["file"] == bad_key.decode()
    with pytest.raises(InputError, match="fyu/lsun"):
        PREPARERS_GAN["lsun_church"]("lsun_church", {"lsun_church": tmp_path / "x"}, tmp_path / "t", {"resolution": 4})


# ---------------------------------------------------------------- Animal Face


def test_animalface_dog_and_cat(tmp_path):
    rng = np.random.default_rng(3)
    for i in range(3):
        _save(tmp_path / "raw/Image/DogHead" / f"dog{i}.jpg", _random_image(rng, 10, 14), "JPEG")
    _save(tmp_path / "raw/Image/CatHead/cat0.jpg", _random_image(rng, 9, 9), "JPEG")
    (tmp_path / "raw/Image/DogHead/notes.txt").write_text("not an image")
    roots = {"animalface": tmp_path / "raw"}
    dogs = PREPARERS_GAN["animalface_dog"]("animalface_dog", roots, tmp_path / "d", {"resolution": 6}, {"train": 3})
    assert dogs.images.shape == (3, 6, 6, 3) and dogs.table["file"].tolist()[0] == "Image/DogHead/dog0.jpg"
    cats = PREPARERS_GAN["animalface_cat"]("animalface_cat", roots, tmp_path / "c", {"resolution": 6}, {"train": 1})
    assert len(cats) == 1 and cats.manifest["name"] == "animalface_cat"
    with pytest.raises(InputError, match="found 1 train images for animalface_cat, expected 160"):
        PREPARERS_GAN["animalface_cat"]("animalface_cat", roots, tmp_path / "c2", {"resolution": 6})



def test_animalface_data_efficient_gans_zips_give_the_same_store(tmp_path):
    # The same synthetic images, once in the official layout and once as the AnimalFace-dog/cat zips of
    # data-efficient-gans unzip (each into a folder of its name): the prepared stores hold the same pixels.
    from lead_hsr.data.synthetic.gan_sets import write_animalface

    counts = {"dog": 3, "cat": 2}
    write_animalface(tmp_path / "official", counts, seed=5, image_size=24)
    write_animalface(tmp_path / "zips", counts, seed=5, image_size=24, layout="data-efficient-gans")
    assert sorted(p.name for p in (tmp_path / "zips").iterdir() if p.is_dir()) == ["AnimalFace-cat", "AnimalFace-dog"]
    for name, count in (("animalface_dog", 3), ("animalface_cat", 2)):
        stores = [PREPARERS_GAN[name](name, {"animalface": tmp_path / layout}, tmp_path / f"{layout}_{name}",
                                      {"resolution": 8}, {"train": count}) for layout in ("official", "zips")]
        np.testing.assert_array_equal(stores[0].images, stores[1].images)
        folder = gan_animalface.ANIMALFACE_ZIP_FOLDERS[name]
        assert all(file.startswith(f"{folder}/") for file in stores[1].table["file"])
        assert all(file.startswith("Image/") for file in stores[0].table["file"])


def test_animalface_missing_names_both_layouts_and_sources(tmp_path):
    with pytest.raises(InputError) as error:
        gan_animalface.list_animalface_images(tmp_path, "animalface_cat")
    message = str(error.value)
    assert f"{tmp_path}/Image/CatHead/*.jpg or {tmp_path}/AnimalFace-cat/*.jpg" in message
    assert "https://data-efficient-gans.mit.edu/datasets/AnimalFace-dog.zip" in message
    assert "vcla.stat.ucla.edu" in message and "unzip AnimalFace-dog.zip -d <root>/AnimalFace-dog" in message


# ---------------------------------------------------------------- CUB


def _cub_tree(root, rng):
    lines, boxes = [], []
    for i in range(1, 4):
        relative = f"001.Black_footed_Albatross/bird_{i}.png"
        _save(root / "images" / relative, _random_image(rng, 20, 30))
        lines.append(f"{i} {relative}")
        boxes.append(f"{i} {2.0 * i} 3.0 {10.0 + i} 8.0")
    (root / "images.txt").write_text("\n".join(lines) + "\n")
    (root / "bounding_boxes.txt").write_text("\n".join(boxes) + "\n")


def test_cub_square_box_crop(tmp_path):
    rng = np.random.default_rng(4)
    _cub_tree(tmp_path / "raw", rng)
    store = PREPARERS_GAN["cub"]("cub", {"cub": tmp_path / "raw"}, tmp_path / "s", {"resolution": 12}, {"train": 3})
    assert len(store) == 3
    # bird 2: box x=4 y=3 w=12 h=8 -> square side 12 centred at (10, 7) -> (4, 1, 16, 13): no resize needed
    source = np.asarray(Image.open(tmp_path / "raw/images/001.Black_footed_Albatross/bird_2.png"))
    np.testing.assert_array_equal(store.images[1], source[1:13, 4:16])
    assert store.table.loc[1, ["bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1"]].tolist() == [4, 1, 16, 13]


def test_cub_malformed_lines(tmp_path):
    rng = np.random.default_rng(5)
    _cub_tree(tmp_path / "raw", rng)
    boxes = tmp_path / "raw/bounding_boxes.txt"
    boxes.write_text(boxes.read_text().replace("2 4.0 3.0 12.0 8.0", "2 4.0 3.0 12.0"))
    with pytest.raises(InputError, match=r"bounding_boxes.txt:2: .*id x y width height"):
        PREPARERS_GAN["cub"]("cub", {"cub": tmp_path / "raw"}, tmp_path / "s", {"resolution": 4}, {"train": 3})
    boxes.write_text("1 2.0 3.0 0.0 8.0\n")
    with pytest.raises(InputError, match=r"bounding_boxes.txt:1: .*positive size"):
        gan_cub.parse_bounding_boxes(boxes)
    images_txt = tmp_path / "raw/images.txt"
    images_txt.write_text("x bird.png\n")
    with pytest.raises(InputError, match=r"images.txt:1: image id 'x'"):
        gan_cub.parse_images_txt(images_txt)
    with pytest.raises(InputError, match="cub_200_2011"):
        gan_cub.read_cub(tmp_path / "missing")


def test_cub_ids_must_agree(tmp_path):
    rng = np.random.default_rng(6)
    _cub_tree(tmp_path / "raw", rng)
    boxes = tmp_path / "raw/bounding_boxes.txt"
    boxes.write_text(boxes.read_text().replace("3 6.0", "4 6.0"))
    with pytest.raises(InputError, match=r"different image ids \(e.g. \[3, 4\]\)"):
        gan_cub.read_cub(tmp_path / "raw")


def test_bad_geometry(tmp_path):
    with pytest.raises(InputError, match="resolution"):
        PREPARERS_GAN["cub"]("cub", {"cub": tmp_path}, tmp_path / "s", {"size": 4})


# ---------------------------------------------------------------- CelebA attributes (for the ALS classifiers)


def _celeba_tree(root, rng, n=4):
    from lead_hsr.data.readers.celeba import ATTRIBUTE_NAMES

    names = [f"{i:06d}.jpg" for i in range(1, n + 1)]
    for name in names:
        _save(root / "img_align_celeba" / name, _random_image(rng, 218, 178), "PNG")  # PNG bytes: lossless
    attributes = rng.choice([-1, 1], size=(n, 40))
    rows = [f"{name} " + " ".join(f"{v:2d}" for v in values) for name, values in zip(names, attributes)]
    (root / "list_attr_celeba.txt").write_text(f"{n}\n" + " ".join(ATTRIBUTE_NAMES) + "\n" + "\n".join(rows) + "\n")
    partition = [0] * (n - 2) + [1, 2]
    (root / "list_eval_partition.txt").write_text("".join(f"{m} {p}\n" for m, p in zip(names, partition)))
    return names, attributes


def test_celeba_attributes(tmp_path):
    rng = np.random.default_rng(7)
    names, attributes = _celeba_tree(tmp_path / "raw", rng)
    store = PREPARERS_GAN["celeba_attributes"]("celeba_attributes", {"celeba": tmp_path / "raw"}, tmp_path / "s",
                                               {"resolution": 89}, {"train": 2, "val": 1, "test": 1})
    assert store.table["split"].tolist() == ["train", "train", "val", "test"]
    assert store.table["Smiling"].tolist() == attributes[:, 31].tolist()  # column 32 of the file is Smiling
    assert store.table["Young"].tolist() == attributes[:, 39].tolist()
    source = np.asarray(Image.open(tmp_path / "raw/img_align_celeba/000003.jpg").convert("RGB"))
    expected = np.asarray(Image.fromarray(source[30:208, 0:178]).resize((89, 89), Image.Resampling.LANCZOS))
    np.testing.assert_array_equal(store.images[2], expected)
    with pytest.raises(InputError, match="found 2 train images for celeba_attributes, expected 162770"):
        PREPARERS_GAN["celeba_attributes"]("celeba_attributes", {"celeba": tmp_path / "raw"}, tmp_path / "t",
                                           {"resolution": 89})


def test_celeba_attribute_file_mismatch(tmp_path):
    rng = np.random.default_rng(8)
    _celeba_tree(tmp_path / "raw", rng)
    partition = tmp_path / "raw/list_eval_partition.txt"
    partition.write_text(partition.read_text().replace("000004.jpg", "000099.jpg"))
    with pytest.raises(InputError, match="list different images"):
        prepare_gan.celeba_attribute_table(tmp_path / "raw")


# ---------------------------------------------------------------- manifest: the raw set is recorded


def test_manifest_records_sources_and_detects_changes(tmp_path):
    rng = np.random.default_rng(9)
    _cub_tree(tmp_path / "raw", rng)
    args = ("cub", {"cub": tmp_path / "raw"}, tmp_path / "s", {"resolution": 4}, {"train": 3})
    first = PREPARERS_GAN["cub"](*args).manifest
    assert first["sources"][0] == "cub/images/001.Black_footed_Albatross/bird_1.png"
    assert first["expected_counts"] == {"train": 3} and first["preparer"] == "cub"
    assert sorted(first["annotation_sha256"]) == [str(tmp_path / "raw/bounding_boxes.txt"),
                                                  str(tmp_path / "raw/images.txt")]
    again = PREPARERS_GAN["cub"](*args).manifest
    assert again["sources_sha256"] == first["sources_sha256"]  # same raw set, same hash
    boxes = tmp_path / "raw/bounding_boxes.txt"
    boxes.write_text(boxes.read_text().replace("1 2.0 3.0", "1 2.5 3.0"))  # an annotation edit
    moved = PREPARERS_GAN["cub"](*args).manifest
    assert moved["sources_sha256"] != first["sources_sha256"]
    _save(tmp_path / "raw/images/001.Black_footed_Albatross/bird_3.png", _random_image(rng, 25, 30))  # new size
    assert PREPARERS_GAN["cub"](*args).manifest["sources_sha256"] != moved["sources_sha256"]


def test_all_images_corrupt_is_an_error(tmp_path):
    (tmp_path / "raw/Image/CatHead").mkdir(parents=True)
    (tmp_path / "raw/Image/CatHead/cat.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(InputError, match="every one of the 1 images of animalface_cat was skipped"):
        PREPARERS_GAN["animalface_cat"]("animalface_cat", {"animalface": tmp_path / "raw"}, tmp_path / "s",
                                        {"resolution": 4}, {"train": 1}, skip_corrupt=True)


def test_workflow_entry_point_passes_options(tmp_path):
    from lead_hsr.data.prepare_all import prepare

    _ffhq_tree(tmp_path / "raw", 6)
    store = prepare("ffhq", {"ffhq": tmp_path / "raw"}, tmp_path / "s", {"resize": 136, "crop": 20, "resolution": 8},
                    expected_counts={"train": 6}, options={"subset": 4}, seed=0)
    assert len(store) == 4 and store.manifest["options"]["subset_size"] == 4
    assert store.images.shape == (4, 8, 8, 3)


def test_official_top_folders_are_found(tmp_path):
    """The unpacked releases add a top folder (CUB_200_2011/, church_outdoor_train_lmdb/): both roots work."""
    rng = np.random.default_rng(10)
    _cub_tree(tmp_path / "cub" / "CUB_200_2011", rng)
    store = PREPARERS_GAN["cub"]("cub", {"cub": tmp_path / "cub"}, tmp_path / "s", {"resolution": 4}, {"train": 3})
    assert store.table["file"].iat[0] == "CUB_200_2011/images/001.Black_footed_Albatross/bird_1.png"
    (tmp_path / "lsun").mkdir()
    _lsun_lmdb(tmp_path / "lsun" / "church_outdoor_train_lmdb", [_random_image(rng, 8, 8)])
    store = PREPARERS_GAN["lsun_church"]("lsun_church", {"lsun_church": tmp_path / "lsun"}, tmp_path / "l",
                                         {"resolution": 4}, {"train": 1})
    assert len(store) == 1
