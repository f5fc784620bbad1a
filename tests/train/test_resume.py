"""Checkpoint/resume, SIGKILL, SIGTERM and time-budget behaviour of lead_hsr.train.train."""
import csv
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import tiny_run  # noqa: E402

from lead_hsr.errors import InputError  # noqa: E402
from lead_hsr.train import CHECKPOINT_NAME, LOG_NAME, TERMINATED_EXIT_CODE, RunConfig, train  # noqa: E402

SCRIPT = Path(tiny_run.__file__)
TOTAL = 60


def _start(work_dir, out, sleep, total=TOTAL, checkpoint_every=7):
    return subprocess.Popen([sys.executable, str(SCRIPT), str(work_dir), str(out), "--total-steps", str(total),
                             "--sleep", str(sleep), "--checkpoint-every", str(checkpoint_every)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for(path: Path, proc, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def _checkpoint_step(work_dir: Path) -> int:
    return torch.load(work_dir / CHECKPOINT_NAME, weights_only=True)["step"]


def _assert_same_weights(a: dict, b: dict):
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def _log_steps(work_dir: Path) -> list[int]:
    with open(work_dir / LOG_NAME, newline="") as handle:
        return [int(row["step"]) for row in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def reference_weights():
    model, done = tiny_run.run(Path(__import__("tempfile").mkdtemp()) / "ref", TOTAL)
    assert done == TOTAL
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_uninterrupted_runs_are_deterministic(tmp_path, reference_weights):
    model, _ = tiny_run.run(tmp_path / "again", TOTAL)
    _assert_same_weights(model.state_dict(), reference_weights)


def test_resume_after_sigkill_is_bitwise_identical(tmp_path, reference_weights, capsys):
    work, out = tmp_path / "work", tmp_path / "out.pt"
    proc = _start(work, out, sleep=0.03)
    _wait_for(work / CHECKPOINT_NAME, proc)
    time.sleep(random.uniform(0.0, 0.6))  # kill at a random point, possibly between checkpoints
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    killed_at = _checkpoint_step(work)
    assert 0 < killed_at < TOTAL and not out.exists()

    model, done = tiny_run.run(work, TOTAL)  # the rerun (in-process: faster than another interpreter)
    assert done == TOTAL and f"resumed {work} at step {killed_at}" in capsys.readouterr().err
    _assert_same_weights(model.state_dict(), reference_weights)
    steps = _log_steps(work)
    assert steps == sorted(set(steps)) and steps[-1] == TOTAL  # no duplicated rows from the killed attempt


def test_sigterm_checkpoints_exits_nonzero_and_rerun_continues(tmp_path, reference_weights):
    work, out = tmp_path / "work", tmp_path / "out.pt"
    proc = _start(work, out, sleep=0.05, checkpoint_every=1000)  # no periodic checkpoint before the signal
    _wait_for(work / LOG_NAME, proc)  # the loop is running (first log row written)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == TERMINATED_EXIT_CODE
    assert time.monotonic() - sent < 30
    stopped_at = _checkpoint_step(work)
    assert 0 < stopped_at < TOTAL and not out.exists()

    model, _ = tiny_run.run(work, TOTAL)
    _assert_same_weights(model.state_dict(), reference_weights)


def test_time_budget_stops_cleanly_and_resumes(tmp_path, reference_weights):
    work = tmp_path / "work"
    started = time.monotonic()
    with pytest.raises(SystemExit) as stop:
        tiny_run.run(work, TOTAL, sleep_s=0.02, time_budget_s=0.4)
    assert stop.value.code == TERMINATED_EXIT_CODE
    assert time.monotonic() - started < 0.4 + 1.0  # stopped before (or very near) the budget, not at the end
    stopped_at = _checkpoint_step(work)
    assert 0 < stopped_at < TOTAL
    model, done = tiny_run.run(work, TOTAL)
    assert done == TOTAL
    _assert_same_weights(model.state_dict(), reference_weights)


def test_checkpoint_loads_with_weights_only(tmp_path):
    tiny_run.run(tmp_path, 10, checkpoint_every=4)
    payload = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    assert payload["step"] == 10
    assert set(payload["state"]) == {"model", "optimizer", "scheduler"}
    assert set(payload["rng"]) >= {"torch", "numpy", "python"}
    assert not list(tmp_path.glob(".tmp-*"))  # no stray temporary files


def test_finished_run_returns_immediately_with_loaded_state(tmp_path):
    first, _ = tiny_run.run(tmp_path, 10)
    calls = []
    model = tiny_run.make_model(0.3)  # same init as tiny_run, so equality below proves the load
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.7)
    state = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
    assert train(RunConfig(tmp_path, 10, seed=3), state, calls.append) == 10
    assert calls == []  # no step ran again
    _assert_same_weights(model.state_dict(), first.state_dict())


class _Counter:
    def __init__(self):
        self.count = 0

    def state_dict(self):
        return {"count": self.count}

    def load_state_dict(self, state):
        self.count = state["count"]


def test_custom_state_objects_and_log_columns(tmp_path):
    counter = _Counter()

    def step_fn(step):
        counter.count += 1
        return {"a": float(step)} if step % 2 else {"a": float(step), "b": 1.0}

    cfg = RunConfig(tmp_path, total_steps=6, checkpoint_every=3, log_every=2)
    assert train(cfg, {"counter": counter}, step_fn) == 6
    fresh = _Counter()
    assert train(cfg, {"counter": fresh}, step_fn) == 6 and fresh.count == 6
    with open(tmp_path / LOG_NAME, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == [2, 3, 4, 6]  # every log_every steps and at each checkpoint
    assert float(rows[0]["a"]) == pytest.approx(0.5) and float(rows[0]["b"]) == 1.0


def test_disabled_grad_scaler_in_state_resumes(tmp_path):
    from lead_hsr.train import grad_scaler_for

    model = torch.nn.Linear(2, 1)
    state = {"model": model, "scaler": grad_scaler_for("cpu", "fp16")}  # disabled on CPU: saves {}
    cfg = RunConfig(tmp_path, total_steps=3, checkpoint_every=1)
    assert train(cfg, state, lambda step: {}) == 3
    assert train(RunConfig(tmp_path, total_steps=5), state, lambda step: {}) == 5


def test_mismatched_work_dir_is_a_clear_input_error(tmp_path):
    tiny_run.run(tmp_path, 5)
    counter = _Counter()
    with pytest.raises(InputError, match=f"{CHECKPOINT_NAME}.*different run.*delete"):
        train(RunConfig(tmp_path, 5, seed=3), {"counter": counter}, lambda s: {})
    with pytest.raises(InputError, match="seed"):
        tiny_run.run(tmp_path, 5, seed=4)


def test_bad_run_config_is_an_input_error(tmp_path):
    with pytest.raises(InputError):
        RunConfig(tmp_path, total_steps=10, checkpoint_every=0)
    with pytest.raises(InputError, match="runtime"):
        RunConfig(tmp_path, total_steps=10, time_budget_s=-5)
