"""Prepared store: round trip, memmap loading, atomic writes, source-set change detection."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from lead_hsr.data.store import StoreWriter, open_store, source_hash, write_store
from lead_hsr.hashing import file_sha256
from lead_hsr.errors import InputError


def _dataset(n=6, size=8, k=5, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    landmarks = rng.uniform(0, size, (n, k, 2)).astype(np.float32)
    landmarks[1, 2] = np.nan  # an absent landmark survives the round trip
    splits = ["train"] * (n - 2) + ["test", "val"]
    table = pd.DataFrame({"file": [f"{i:06d}.jpg" for i in range(n)], "split": splits, "identity": range(n),
                          "zoom": [1.0 + i / 10 for i in range(n)]})
    return images, landmarks, table


def test_round_trip_keeps_everything(tmp_path):
    images, landmarks, table = _dataset()
    write_store(tmp_path / "s", images, landmarks, table, {"name": "toy", "sources": ["b.jpg", "a.jpg"]})
    store = open_store(tmp_path / "s")
    assert isinstance(store.images, np.memmap)  # no decoding at load time
    np.testing.assert_array_equal(store.images, images)
    np.testing.assert_array_equal(store.landmarks, landmarks)  # NaN positions compare equal here
    assert store.table["file"].tolist() == table["file"].tolist()
    assert store.table["zoom"].tolist() == pytest.approx(table["zoom"].tolist())
    assert store.manifest["counts"] == {"train": 4, "val": 1, "test": 1}
    assert store.manifest["image_size"] == [8, 8] and store.manifest["K"] == 5 and store.manifest["n"] == 6
    assert store.manifest["sources"] == ["a.jpg", "b.jpg"]
    assert store.manifest["sources_sha256"] == source_hash(["b.jpg", "a.jpg"])
    np.testing.assert_array_equal(store.split("train"), [0, 1, 2, 3])
    np.testing.assert_array_equal(store.split("test"), [4])


def test_store_without_landmarks(tmp_path):
    images, _, table = _dataset()
    store = write_store(tmp_path / "s", images, None, table, {"name": "gan"})
    assert store.landmarks.shape == (6, 0, 2) and not (tmp_path / "s" / "landmarks.npy").exists()


def test_failure_mid_write_leaves_no_store(tmp_path):
    images, landmarks, table = _dataset()
    with pytest.raises(RuntimeError):
        with StoreWriter(tmp_path / "s", 6, (8, 8), 5) as writer:
            writer.put(0, images[0], landmarks[0])
            raise RuntimeError("killed mid-write")
    assert list(tmp_path.iterdir()) == []  # neither the store nor its temporary sibling


def test_failed_rewrite_keeps_old_store(tmp_path):
    images, landmarks, table = _dataset()
    write_store(tmp_path / "s", images, landmarks, table, {"name": "old"})
    with pytest.raises(ValueError):  # table of the wrong length fails inside commit
        write_store(tmp_path / "s", images, landmarks, table.iloc[:3], {"name": "new"})
    assert open_store(tmp_path / "s").manifest["name"] == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


def test_successful_rewrite_replaces_store(tmp_path):
    images, landmarks, table = _dataset()
    write_store(tmp_path / "s", images, landmarks, table, {"name": "old"})
    write_store(tmp_path / "s", images[::-1].copy(), landmarks, table, {"name": "new"})
    store = open_store(tmp_path / "s")
    assert store.manifest["name"] == "new"
    np.testing.assert_array_equal(store.images, images[::-1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


def test_commit_with_keep_drops_rows(tmp_path):
    images, landmarks, table = _dataset()
    keep = np.array([0, 2, 5])
    with StoreWriter(tmp_path / "s", 6, (8, 8), 5) as writer:
        for i in range(6):
            writer.put(i, images[i], landmarks[i])
        store = writer.commit(table.iloc[keep], {"name": "toy"}, keep=keep)
    np.testing.assert_array_equal(store.images, images[keep])
    np.testing.assert_array_equal(store.landmarks, landmarks[keep])
    assert store.table["file"].tolist() == ["000000.jpg", "000002.jpg", "000005.jpg"]


def test_changed_source_set_is_detected(tmp_path):
    for name, data in [("a.jpg", b"12"), ("b.jpg", b"345")]:
        (tmp_path / name).write_bytes(data)
    before = source_hash(["a.jpg", "b.jpg"], tmp_path)
    assert source_hash(["b.jpg", "a.jpg"], tmp_path) == before  # order does not matter
    (tmp_path / "b.jpg").write_bytes(b"34")
    assert source_hash(["a.jpg", "b.jpg"], tmp_path) != before  # size changed
    assert source_hash(["a.jpg"], tmp_path) != before  # file removed
    images, landmarks, table = _dataset()
    store = write_store(tmp_path / "s", images, landmarks, table, {"sources_sha256": before})
    assert store.is_current(before) and not store.is_current(source_hash(["a.jpg"], tmp_path))
    assert file_sha256(tmp_path / "a.jpg") == "6b51d431df5d7f141cbececcf79edf3dd861c3b4069f0b11661a3eefacbba918"


def test_missing_store_names_file_and_fix(tmp_path):
    with pytest.raises(InputError, match=r"s: prepared store images.npy not found.*prepare rule"):
        open_store(tmp_path / "s")


def test_inconsistent_store_is_refused(tmp_path):
    images, landmarks, table = _dataset()
    write_store(tmp_path / "s", images, landmarks, table, {"name": "toy"})
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    manifest["K"] = 3
    (tmp_path / "s" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="inconsistent store"):
        open_store(tmp_path / "s")


def test_leftovers_of_killed_writers_are_removed(tmp_path):
    """A SIGKILL leaves a temporary sibling (never a store); the next write of that store deletes it."""
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leftover = tmp_path / f".s.tmp-{int(dead.stdout)}-deadbeef"
    leftover.mkdir()
    (leftover / "images.npy").write_bytes(b"partial")
    live = tmp_path / f".s.tmp-{os.getpid()}-cafecafe"  # a running writer's temporary is left alone
    live.mkdir()
    images, landmarks, table = _dataset()
    write_store(tmp_path / "s", images, landmarks, table, {"name": "toy"})
    assert not leftover.exists() and live.exists()


def test_damaged_store_files_are_input_errors(tmp_path):
    """A damaged manifest, image array, landmark array or table: InputError naming the file, never a traceback."""
    images = np.zeros((2, 4, 4, 3), np.uint8)
    table = pd.DataFrame({"file": ["a.jpg", "b.jpg"], "split": ["train", "test"]})
    damage = {
        "manifest.json": lambda p: p.write_text("{not json"),
        "images.npy": lambda p: p.write_bytes(p.read_bytes()[:40]),
        "landmarks.npy": lambda p: p.write_bytes(b"not an npy file"),
        "table.csv": lambda p: p.write_bytes(b"\xff\xfe\x00bad"),
    }
    for name, spoil in damage.items():
        store = tmp_path / name
        write_store(store, images, np.zeros((2, 1, 2), np.float32), table, {"name": "t"})
        spoil(store / name)
        with pytest.raises(InputError, match=rf"{name}: damaged prepared store file"):
            open_store(store)
