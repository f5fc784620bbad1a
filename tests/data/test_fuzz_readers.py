"""Property-based tests: random damage to small valid files in each real raw format.

For every reader, hypothesis damages one file of a valid raw tree (bytes cut, flipped, deleted or inserted;
lines duplicated, removed or swapped; a number replaced by text, nan or inf; the text re-encoded) and the
outcome must be one of two: the reader returns annotations that satisfy its invariants (finite numbers,
one row per image, aligned lengths), or it raises InputError naming the damaged file. Any other exception
(or a non-finite / duplicated value in the result) fails the test.

Seeded (`derandomize=True`, no example database) and bounded (`max_examples` per reader, see EXAMPLES), so
CI runs the same cases every time.
"""
import collections
import io
import os
import re
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from lead_hsr.config import load_schema, load_yaml, validate_config
from lead_hsr.data.images import decode_rgb
from lead_hsr.data.readers import aflw_m, aflw_r, celeba, gan_cub, mafl, w300
from lead_hsr.data.readers.common import Annotations
from lead_hsr.errors import InputError
from test_readers import write_aflw_m, write_aflw_r, write_celeba, write_mafl, write_w300

EXAMPLES = 120  # generated cases per reader (x 12 readers); the whole module runs in well under a minute
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
NUMBER = re.compile(rb"-?\d+(\.\d+)?")
# outcomes per reader (`pytest -s` with FUZZ_SUMMARY=1 prints them): how many damaged files were accepted / refused
OUTCOMES: collections.Counter = collections.Counter()
REPLACEMENTS = [b"nan", b"inf", b"-inf", b"NaN", b"1e999", b"x", b"", b"1,5", b"--1", b"0x1F", b"\xe9", b"1e-400"]


# ---------------------------------------------------------------- damage


@st.composite
def damaged(draw, data: bytes) -> bytes:
    """One or two random kinds of damage applied to `data`."""
    for _ in range(draw(st.integers(1, 2))):
        data = draw(st.sampled_from(DAMAGE))(draw, data)
    return data


def _position(draw, data):
    return draw(st.integers(0, max(len(data) - 1, 0)))


def cut(draw, data):
    return data[:_position(draw, data)]


def flip(draw, data):
    if not data:
        return data
    at = _position(draw, data)
    return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]


def delete(draw, data):
    at = _position(draw, data)
    return data[:at] + data[at + draw(st.integers(1, 16)):]


def insert(draw, data):
    at = _position(draw, data)
    return data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]


def _lines(data):
    return data.split(b"\n")


def duplicate_line(draw, data):
    lines = _lines(data)
    at = draw(st.integers(0, len(lines) - 1))
    return b"\n".join(lines[:at + 1] + [lines[at]] + lines[at + 1:])


def remove_line(draw, data):
    lines = _lines(data)
    at = draw(st.integers(0, len(lines) - 1))
    return b"\n".join(lines[:at] + lines[at + 1:])


def swap_lines(draw, data):
    lines = _lines(data)
    i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
    lines[i], lines[j] = lines[j], lines[i]
    return b"\n".join(lines)


def replace_number(draw, data):
    numbers = list(NUMBER.finditer(data))
    if not numbers:
        return data
    match = draw(st.sampled_from(numbers))
    return data[:match.start()] + draw(st.sampled_from(REPLACEMENTS)) + data[match.end():]


def change_number(draw, data):
    """A plausible but different number (the file stays well-formed: a reader may accept it)."""
    numbers = list(NUMBER.finditer(data))
    if not numbers:
        return data
    match = draw(st.sampled_from(numbers))
    return data[:match.start()] + str(draw(st.integers(-5000, 5000))).encode() + data[match.end():]


def reencode(draw, data):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data
    encoding = draw(st.sampled_from(["utf-16", "utf-32", "latin-1", "cp1252"]))
    at = draw(st.integers(0, len(text)))
    return (text[:at] + "é" + text[at:]).encode(encoding)


DAMAGE = [cut, flip, delete, insert, duplicate_line, remove_line, swap_lines, replace_number, change_number, reencode]


# ---------------------------------------------------------------- the property


def check_outcome(read, path, data, check_result):
    """Write the damaged `data` to `path`, run `read()`, and restore the file afterwards."""
    original = path.read_bytes()
    path.write_bytes(data)
    try:
        result = read()
    except InputError as error:
        assert path.name in str(error), f"InputError does not name the damaged file {path.name}: {error}"
        OUTCOMES[path.name, "InputError"] += 1
        return
    finally:
        path.write_bytes(original)
    check_result(result)
    OUTCOMES[path.name, "accepted"] += 1


def valid_rows(rows: celeba.NamedRows):
    assert len(rows.names) == len(rows.lines) == len(rows.values)
    assert len(set(rows.names)) == len(rows.names), "an image listed twice was accepted"
    assert np.all(np.isfinite(rows.values)), "a non-finite value was accepted"


def valid_annotations(annotations: Annotations):
    assert len(annotations.files) == len(annotations.landmarks) == len(annotations.where)
    assert len(set(annotations.files)) == len(annotations.files), "an image listed twice was accepted"
    assert np.all(np.isfinite(annotations.landmarks)), "a non-finite landmark was accepted"
    for values in annotations.extra.values():
        assert len(values) == len(annotations.files)
        if np.issubdtype(np.asarray(values).dtype, np.number):
            assert np.all(np.isfinite(values))


def valid_names(names):
    assert len(set(names)) == len(names) and all(isinstance(n, str) and n for n in names)


# ---------------------------------------------------------------- raw trees (written once per module)


@pytest.fixture(scope="module", autouse=True)
def summary():
    yield
    if os.environ.get("FUZZ_SUMMARY"):
        for (name, outcome), count in sorted(OUTCOMES.items()):
            print(f"FUZZ {name}: {outcome} {count}")


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    names = write_celeba(root / "celeba", [0, 0, 1, 2])
    write_mafl(root / "mafl", train=names[:3], test=names[3:])
    write_aflw_m(root / "aflw_m")
    write_aflw_r(root / "aflw_r")
    write_w300(root / "w300")
    cub = root / "cub"
    cub.mkdir()
    (cub / "images.txt").write_text("1 001.Albatross/a_1.jpg\n2 001.Albatross/a_2.jpg\n3 002.Auklet/b_3.jpg\n")
    (cub / "bounding_boxes.txt").write_text("1 60.0 27.0 325.0 304.0\n2 139.0 30.0 153.0 264.0\n3 14.0 112.0 388.0 186.0\n")
    return root


CELEBA_FILES = {
    "list_landmarks_align_celeba.txt": lambda root: celeba.read_landmarks(root, aligned=True),
    "list_landmarks_celeba.txt": lambda root: celeba.read_landmarks(root, aligned=False),
    "list_bbox_celeba.txt": celeba.read_bboxes,
    "list_eval_partition.txt": celeba.read_partition,
    "identity_CelebA.txt": celeba.read_identities,
    "list_attr_celeba.txt": celeba.read_attributes,
}


@pytest.mark.parametrize("name", sorted(CELEBA_FILES))
def test_fuzz_celeba(trees, name):
    path = trees / "celeba" / name

    @FUZZ
    @given(st.data())
    def run(data):
        check_outcome(lambda: CELEBA_FILES[name](trees / "celeba"), path, data.draw(damaged(path.read_bytes())),
                      valid_rows)
    run()


def test_fuzz_mafl(trees):
    path = trees / "mafl" / "training.txt"

    @FUZZ
    @given(st.data())
    def run(data):
        check_outcome(lambda: mafl.read_split(trees / "mafl", "train"), path, data.draw(damaged(path.read_bytes())),
                      valid_names)
    run()


@pytest.mark.parametrize("which", ["test", "train"])
def test_fuzz_aflw_m(trees, which):
    path = trees / "aflw_m" / (aflw_m.TEST_FILE if which == "test" else aflw_m.TRAIN_FILE)
    read = aflw_m.read_test if which == "test" else aflw_m.read_train

    @FUZZ
    @given(st.data())
    def run(data):
        check_outcome(lambda: read(trees / "aflw_m"), path, data.draw(damaged(path.read_bytes())), valid_annotations)
    run()


@pytest.mark.parametrize("name", ["aflw_train_images.txt", "aflw_train_keypoints.mat"])
def test_fuzz_aflw_r(trees, name):
    path = trees / "aflw_r" / name

    @FUZZ
    @given(st.data())
    def run(data):
        check_outcome(lambda: aflw_r.read_split(trees / "aflw_r", "train"), path,
                      data.draw(damaged(path.read_bytes())), valid_annotations)
    run()


@pytest.mark.parametrize("name", ["afw/afw_0.pts", "Bounding Boxes/bounding_boxes_afw.mat"])
def test_fuzz_w300(trees, name):
    path = trees / "w300" / name

    @FUZZ
    @given(st.data())
    def run(data):
        check_outcome(lambda: w300.read_split(trees / "w300", "train"), path, data.draw(damaged(path.read_bytes())),
                      valid_annotations)
    run()


@pytest.mark.parametrize("name", ["images.txt", "bounding_boxes.txt"])
def test_fuzz_cub(trees, name):
    path = trees / "cub" / name

    def valid(records):
        files = [file for file, _ in records]
        assert len(set(files)) == len(files)
        assert all(np.all(np.isfinite(box)) and box[2] > box[0] and box[3] > box[1] for _, box in records)

    @FUZZ
    @given(st.data())
    def run(data):
        check_outcome(lambda: gan_cub.read_cub(trees / "cub"), path, data.draw(damaged(path.read_bytes())), valid)
    run()


# ---------------------------------------------------------------- images


def _encoded(fmt, mode="RGB", **params):
    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


IMAGES = {
    "jpeg": _encoded("JPEG", quality=90),
    "png": _encoded("PNG"),
    "png_palette": _encoded("PNG", "P"),
    "png_grey_alpha": _encoded("PNG", "LA"),
    "webp": _encoded("WEBP", lossless=True),
    "gif": _encoded("GIF", "P"),
    "tiff_cmyk": _encoded("TIFF", "CMYK"),
    "bmp": _encoded("BMP"),
}


@pytest.mark.parametrize("kind", sorted(IMAGES))
def test_fuzz_image_decoding(kind):
    @settings(FUZZ, max_examples=EXAMPLES // 2)
    @given(st.data())
    def run(data):
        damaged_bytes = data.draw(damaged(IMAGES[kind]))
        try:
            image = decode_rgb(damaged_bytes, f"img.{kind}")
        except InputError as error:
            assert str(error).startswith(f"img.{kind}: ") and "Fix:" in str(error), str(error)
            OUTCOMES[f"img.{kind}", "InputError"] += 1
            return
        OUTCOMES[f"img.{kind}", "accepted"] += 1
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and min(image.shape[:2]) > 0
    run()


# ---------------------------------------------------------------- config files


def test_fuzz_config_yaml(tmp_path):
    """Damaged copies of demo.yaml: either a valid merged config or an InputError naming the file."""
    from pathlib import Path
    repo = Path(__file__).resolve().parents[2]
    schema, main = repo / "config" / "schema.yaml", repo / "config" / "config.yaml"
    original = (repo / "config" / "demo.yaml").read_bytes()
    path = tmp_path / "demo.yaml"
    base = load_yaml(main)
    load_schema(schema)

    @settings(FUZZ, max_examples=EXAMPLES // 2)
    @given(st.data())
    def run(data):
        path.write_bytes(data.draw(damaged(original)))
        try:
            merged = _merge(base, load_yaml(path))
            validate_config(merged, schema, [main, path])
            OUTCOMES["demo.yaml", "accepted"] += 1
        except InputError as error:
            assert str(path) in str(error) or str(main) in str(error), str(error)
            OUTCOMES["demo.yaml", "InputError"] += 1
    run()
    shutil.rmtree(tmp_path, ignore_errors=True)


def _merge(base, over):
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


# ---------------------------------------------------------------- whole preparations


PREPARE_CASES = {
    "mafl": ("celeba/list_landmarks_align_celeba.txt", {"train": 3, "test": 1}),
    "mafl_unaligned": ("celeba/list_bbox_celeba.txt", {"train": 3, "test": 1}),
    "aflw_r": ("aflw_r/aflw_test_images.txt", {"train": 2, "test": 1}),
}


@pytest.mark.parametrize("preparer", sorted(PREPARE_CASES))
def test_fuzz_preparation_writes_a_correct_store_or_nothing(trees, tmp_path, preparer):
    """End to end: a damaged annotation file gives an InputError and no store, or a store with the right rows."""
    from lead_hsr.data.prepare import prepare
    relative, counts = PREPARE_CASES[preparer]
    path = trees / relative
    roots = {"celeba": trees / "celeba", "mafl": trees / "mafl", "aflw_r": trees / "aflw_r"}
    geometry = {"resize": 40, "crop": 4}

    @settings(FUZZ, max_examples=EXAMPLES // 6)
    @given(st.data())
    def run(data):
        out = tmp_path / "store"
        shutil.rmtree(out, ignore_errors=True)

        def valid(store):
            assert len(store) == sum(counts.values()) and np.all(np.isfinite(store.landmarks))
            assert store.table["file"].is_unique

        check_outcome(lambda: prepare(preparer, roots, out, geometry, counts), path,
                      data.draw(damaged(path.read_bytes())), valid)
        if not out.exists():
            assert not any(tmp_path.glob("store*")), "a failed preparation left files behind"
    run()
