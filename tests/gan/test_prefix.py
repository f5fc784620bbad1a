"""HSR from a prefix: a baseline trained as prefix job + continuation equals the uninterrupted baseline, bitwise.

Through the real trainer at tiny size on CPU: every tensor of network.pt (G, G_ema, D, both Adam states, ADA p),
the final trainer checkpoint (also the ADA statistics, path-length mean, GradScaler) and the RNG streams.
"""
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import tiny_gan_run as tiny  # noqa: E402

from lead_hsr.errors import InputError  # noqa: E402
from lead_hsr.gan.training import exported_snapshot_name, prefix_state_name, train_gan  # noqa: E402
from lead_hsr.train import CHECKPOINT_NAME, read_log, restore_rng_state  # noqa: E402

START_KIMG, TOTAL_KIMG = 0.04, 0.096    # 5 of 12 steps at batch 8: not a checkpoint (3), ADA (4), R1 (4) or PL (2) step


def options(**overrides):
    # ada_target -1: p rises at every adjustment, so augmentation (and its randomness) is really in play
    return tiny.tiny_options(ada_target=-1.0, **overrides)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tiny.make_store(tmp_path_factory.mktemp("gan_prefix") / "store")


@pytest.fixture(scope="module")
def uninterrupted(store, tmp_path_factory):
    root = tmp_path_factory.mktemp("uninterrupted")
    torch.set_num_threads(1)
    train_gan(store, root / "out", options(total_kimg=TOTAL_KIMG, export_snapshots_kimg=[START_KIMG]),
              root / "work")
    return root


@pytest.fixture(scope="module")
def continued(store, tmp_path_factory):
    root = tmp_path_factory.mktemp("continued")
    torch.set_num_threads(1)
    state = train_gan(store, root / "out", options(total_kimg=START_KIMG, prefix=True,
                                                             export_snapshots_kimg=[START_KIMG]), root / "prefix_work")
    assert state == root / "out" / prefix_state_name(START_KIMG)
    assert sorted(p.name for p in (root / "out").iterdir()) == [exported_snapshot_name(START_KIMG), state.name]
    train_gan(store, root / "out", options(total_kimg=TOTAL_KIMG, continue_from=str(state)), root / "work")
    return root


def assert_identical(a, b, where="") -> int:
    """Recursive bitwise equality of checkpoint payloads; returns the number of tensors compared."""
    assert type(a) is type(b), where
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), where
        return 1
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        return sum(assert_identical(a[k], b[k], f"{where}/{k}") for k in a)
    if isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        return sum(assert_identical(x, y, f"{where}[{i}]") for i, (x, y) in enumerate(zip(a, b)))
    assert a == b or (a != a and b != b), where     # NaN == NaN for cached_gaussian-like floats
    return 0


def test_continued_baseline_network_is_bitwise_identical(uninterrupted, continued):
    a = torch.load(uninterrupted / "out" / "network.pt", weights_only=True)
    b = torch.load(continued / "out" / "network.pt", weights_only=True)
    for part in ("G", "G_ema", "D", "opt_G", "opt_D"):
        assert assert_identical(a[part], b[part], part) > 0
    assert a["ada_p"] == b["ada_p"] and a["ada_p"] > 0 and a["kimg"] == b["kimg"]
    # and the snapshot the HSR runs start from is the one the uninterrupted run exports
    name = exported_snapshot_name(START_KIMG)
    snap_a = torch.load(uninterrupted / "out" / name, weights_only=True)
    snap_b = torch.load(continued / "out" / name, weights_only=True)
    for part in ("G", "G_ema", "D", "opt_G", "opt_D"):
        assert_identical(snap_a[part], snap_b[part], part)


def test_continued_trainer_state_and_rng_streams_are_identical(uninterrupted, continued):
    a = torch.load(uninterrupted / "work" / CHECKPOINT_NAME, weights_only=True)
    b = torch.load(continued / "work" / CHECKPOINT_NAME, weights_only=True)
    assert a["step"] == b["step"] == 12
    assert set(a["state"]) == {"G", "D", "G_ema", "opt_G", "opt_D", "ada", "pl"}
    assert assert_identical(a["state"], b["state"], "state") > 100
    assert_identical(a["rng"], b["rng"], "rng")
    draws = []
    for payload in (a, b):
        restore_rng_state(payload["rng"])
        draws.append((torch.rand(4), np.random.rand(4).tolist(), random.random()))
    assert torch.equal(draws[0][0], draws[1][0]) and draws[0][1:] == draws[1][1:]


def test_continued_log_starts_with_the_prefix_rows(uninterrupted, continued):
    steps = read_log(continued / "work")["step"]
    assert steps == sorted(set(steps)) and steps[0] <= 5 and 5.0 in steps and steps[-1] == 12
    assert read_log(uninterrupted / "work")["step"][-1] == 12


def test_prefix_from_other_settings_is_refused(store, continued, tmp_path):
    state = continued / "out" / prefix_state_name(START_KIMG)
    with pytest.raises(InputError, match="other settings.*lr"):
        train_gan(store, tmp_path / "out", options(total_kimg=TOTAL_KIMG, lr=0.001,
                                                             continue_from=str(state)), tmp_path / "work")
    with pytest.raises(InputError, match="missing"):
        train_gan(store, tmp_path / "out", options(continue_from=str(tmp_path / "none.pt")),
                  tmp_path / "work2")
    with pytest.raises(InputError, match="no snapshot at 0.04 kimg"):
        train_gan(store, tmp_path / "out", options(total_kimg=TOTAL_KIMG, continue_from=str(state),
                                                             export_snapshots_kimg=[START_KIMG]), tmp_path / "work3")
    with pytest.raises(InputError, match="excludes init_from"):
        train_gan(store, tmp_path / "out", options(continue_from=str(state), init_from=str(state)),
                  tmp_path / "work4")


def test_history_snapshots_carry_no_optimizer_state_and_exports_do(uninterrupted):
    """Periodic work-dir snapshots are the official kind (G, D, G_ema): a paper run writes 125 of them. The
    exported start snapshot and network.pt keep both Adam states (HSR runs continue them)."""
    history = sorted((uninterrupted / "work" / "snapshots").glob("network-step*.pt"))
    assert history
    for path in history:
        snap = torch.load(path, weights_only=True)
        assert snap["opt_G"] is None and snap["opt_D"] is None and snap["G_ema"] and snap["D"]
    for path in (uninterrupted / "out" / exported_snapshot_name(START_KIMG), uninterrupted / "out" / "network.pt"):
        snap = torch.load(path, weights_only=True)
        assert snap["opt_G"]["state"] and snap["opt_D"]["state"], path
    assert history[-1].stat().st_size < 0.6 * (uninterrupted / "out" / "network.pt").stat().st_size
