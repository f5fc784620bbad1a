"""Atomic writes, options JSON, device/precision selection, seeding and deterministic batches."""
import json
import os

import numpy as np
import pytest
import torch

from lead_hsr.errors import InputError
from lead_hsr.train import (atomic_save_torch, atomic_write_json, atomic_write_text, autocast_for, batch_indices,
                            capture_rng_state, grad_scaler_for, pick_device, restore_rng_state, seed_everything,
                            step_generator, write_options_json)
from lead_hsr.atomic import atomic_save_npy
from lead_hsr.train.atomic import atomic_write_with
from lead_hsr.train.device import default_dtype


def test_atomic_writers_round_trip(tmp_path):
    atomic_write_text("héllo\n", tmp_path / "a" / "t.txt")
    assert (tmp_path / "a" / "t.txt").read_text() == "héllo\n"
    atomic_save_torch({"w": torch.arange(3)}, tmp_path / "w.pt")
    assert torch.equal(torch.load(tmp_path / "w.pt", weights_only=True)["w"], torch.arange(3))
    write_options_json(tmp_path / "options.json", {"lr": 1e-3, "root": tmp_path, "dims": np.array([1, 2])})
    assert json.loads((tmp_path / "options.json").read_text()) == {"lr": 1e-3, "root": str(tmp_path),
                                                                   "dims": [1, 2]}
    atomic_save_npy([[1.5, 2.0]], tmp_path / "a.npy")
    assert np.load(tmp_path / "a.npy").tolist() == [[1.5, 2.0]]


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.json"
    atomic_write_json({"ok": 1}, target)

    def half_then_crash(handle):
        handle.write(b'{"broken"')
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write_with(target, half_then_crash)
    assert json.loads(target.read_text()) == {"ok": 1}
    assert os.listdir(tmp_path) == ["out.json"]


def test_atomic_outputs_get_the_mode_of_a_plain_open(tmp_path):
    # mkstemp creates 0600 files: results in a shared lab directory would be unreadable to everyone else
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic_write_text("x", tmp_path / "atomic.txt")
    assert (tmp_path / "atomic.txt").stat().st_mode & 0o777 == plain.stat().st_mode & 0o777


def test_pick_device_and_precision_on_cpu():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(InputError, match="device"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA"):
            pick_device("cuda")
    a = torch.randn(4, 4)
    expected = {"bf16": torch.bfloat16, "fp16": torch.float16, "none": torch.float32}
    for dtype, torch_dtype in expected.items():
        with autocast_for("cpu", dtype):
            assert (a @ a).dtype == torch_dtype  # the configured precision runs on the CPU too
        assert grad_scaler_for("cpu", dtype).is_enabled() == (dtype == "fp16")  # loss scaling for fp16 only
    with pytest.raises(InputError, match="precision"):
        autocast_for("cpu", "fp8")


def test_default_dtype_is_restored_even_after_an_error():
    assert torch.get_default_dtype() == torch.float32
    with default_dtype(torch.float64):
        assert torch.zeros(1).dtype == torch.float64
    with pytest.raises(RuntimeError), default_dtype(torch.float64):
        raise RuntimeError("a failing comparison")
    assert torch.zeros(1).dtype == torch.float32


def test_rng_state_round_trip():
    seed_everything(5)
    state = capture_rng_state()
    first = (torch.rand(3), np.random.rand(3), __import__("random").random())
    restore_rng_state(state)
    second = (torch.rand(3), np.random.rand(3), __import__("random").random())
    assert torch.equal(first[0], second[0]) and np.array_equal(first[1], second[1]) and first[2] == second[2]


def test_batch_indices_are_epoch_permutations_stable_and_seeded():
    n, batch = 10, 4
    stream = np.concatenate([batch_indices(n, batch, step, seed=1) for step in range(5)])  # 20 = two epochs
    assert sorted(stream[:10]) == list(range(10)) and sorted(stream[10:]) == list(range(10))
    assert not np.array_equal(stream[:10], stream[10:])  # a new permutation each epoch
    np.testing.assert_array_equal(batch_indices(n, batch, 3, seed=1), stream[12:16])  # pure function of args
    assert not np.array_equal(batch_indices(100, 20, 0, seed=1), batch_indices(100, 20, 0, seed=2))
    assert len(batch_indices(3, 8, 0, seed=0)) == 8  # batch larger than the data spans epochs
    with pytest.raises(ValueError):
        batch_indices(0, 4, 0, seed=0)


def test_step_generator_depends_on_seed_step_and_stream():
    draw = lambda *args: torch.rand(4, generator=step_generator(*args))  # noqa: E731
    assert torch.equal(draw(1, 2), draw(1, 2))
    assert not torch.equal(draw(1, 2), draw(1, 3))
    assert not torch.equal(draw(1, 2), draw(2, 2))
    assert not torch.equal(draw(1, 2, 0), draw(1, 2, 1))
