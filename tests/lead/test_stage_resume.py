"""The real stage-1 (BYOL) and stage-2 (LEAD) trainers survive SIGKILL and SIGTERM: the rerun ends bitwise
identical to an uninterrupted run (CPU, tiny sizes). The generic loop's tests are tests/train/test_resume.py."""
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import stage_run  # noqa: E402
from tiny_data import random_teacher, tiny_store  # noqa: E402

from lead_hsr.train import CHECKPOINT_NAME, LOG_NAME, TERMINATED_EXIT_CODE  # noqa: E402

TOTAL = 24
OPTIONS = {
    "stage1": {"arch": "resnet18", "crop": 32, "steps": TOTAL, "batch": 4, "proj_hidden": 32, "proj_dim": 16,
               "device": "cpu", "checkpoint_every": 5, "log_every": 1},
    "stage2": {"crop": 32, "steps": TOTAL, "batch": 4, "dim": 16, "proj_head": "64", "fpn_dim": 16,
               "teacher_norm": "layer", "device": "cpu", "checkpoint_every": 5, "log_every": 1},
}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny store, random-init stage-1 weights (stage 2's teacher) and each stage's uninterrupted weights."""
    root = tmp_path_factory.mktemp("stage_resume")
    random_teacher(tiny_store(root / "store", 16, 40), root / "teacher.pt", crop=32)
    reference = {}
    for stage in OPTIONS:
        stage_run.run(stage, root / "store", root / f"{stage}_ref.pt", root / f"{stage}_ref", OPTIONS[stage],
                      root / "teacher.pt")
        reference[stage] = _weights(root / f"{stage}_ref.pt")
    return root, reference


def _weights(path: Path) -> dict:
    return torch.load(path, weights_only=True)["state_dict"]


def _start(root: Path, stage: str, work: Path, out: Path, options: dict) -> subprocess.Popen:
    cmd = [sys.executable, stage_run.__file__, stage, str(root / "store"), str(out), str(work), json.dumps(options),
           "--stage1", str(root / "teacher.pt")]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _logged_step(work: Path) -> int:
    """The last step in work/log.csv (one row per step with log_every 1), 0 before the first row."""
    try:
        lines = (work / LOG_NAME).read_text().strip().splitlines()
    except FileNotFoundError:
        return 0
    return int(lines[-1].split(",")[0]) if len(lines) > 1 and lines[-1][:1].isdigit() else 0


def _wait_for_step(work: Path, proc: subprocess.Popen, step: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while _logged_step(work) < step:
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, f"step {step} never reached"
        time.sleep(0.01)


def _assert_bitwise_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def _checkpoint_step(work: Path) -> int:
    return torch.load(work / CHECKPOINT_NAME, weights_only=True)["step"]


@pytest.mark.parametrize("stage", ["stage1", "stage2"])
def test_sigkill_at_a_random_step_then_rerun_is_bitwise_identical(stage, setup, tmp_path, capfd):
    root, reference = setup
    work, out = tmp_path / "work", tmp_path / "out.pt"
    proc = _start(root, stage, work, out, OPTIONS[stage])
    _wait_for_step(work, proc, random.randint(6, TOTAL - 6))  # past the first checkpoint, before the end
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    killed_at = _checkpoint_step(work)
    assert 0 < killed_at < TOTAL and not out.exists()

    stage_run.run(stage, root / "store", out, work, OPTIONS[stage], root / "teacher.pt")  # the rerun
    assert f"resumed {work} at step {killed_at}" in capfd.readouterr().err
    _assert_bitwise_equal(_weights(out), reference[stage])
    logged = [int(line.split(",")[0]) for line in (work / LOG_NAME).read_text().splitlines()[1:]]
    assert logged == list(range(1, TOTAL + 1))  # rows of the killed attempt past its checkpoint were dropped


@pytest.mark.parametrize("stage", ["stage1", "stage2"])
def test_sigterm_leaves_a_checkpoint_exits_nonzero_and_rerun_continues(stage, setup, tmp_path):
    root, reference = setup
    work, out = tmp_path / "work", tmp_path / "out.pt"
    options = OPTIONS[stage] | {"checkpoint_every": 1000}  # only the stop writes a checkpoint
    proc = _start(root, stage, work, out, options)
    _wait_for_step(work, proc, 2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == TERMINATED_EXIT_CODE
    stopped_at = _checkpoint_step(work)
    assert 2 <= stopped_at < TOTAL and not out.exists()

    stage_run.run(stage, root / "store", out, work, options, root / "teacher.pt")
    _assert_bitwise_equal(_weights(out), reference[stage])
