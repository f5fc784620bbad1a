"""Progress you can watch: progress lines (wall-clock interval + checkpoints), progress.json, TensorBoard events
read back, the status command (a killed run reads stopped)."""
import datetime
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lead_hsr.errors import InputError
from lead_hsr.train import PROGRESS_NAME, TENSORBOARD_DIR, RunConfig, read_log, train
from lead_hsr.train.progress import (PROGRESS_ENV, PROGRESS_EVERY_S, find_runs, process_alive, process_identity,
                                     run_liveness)
from lead_hsr.train.status import main as status_main
from lead_hsr.train.status import work_dir_of

REPO = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^\[lead_hsr\.train\] (?P<run>\S+): step (?P<step>\d+)/(?P<total>\d+) \((?P<pct>[\d.]+)%\)")


def _linear_run(work_dir, total, checkpoint_every=1000, log_every=1, every_s=1000.0, sleep_s=0.0, fail_at=None,
                images_per_step=8, unit="steps", time_budget_s=None):
    """A tiny regression trained through `train`; `fail_at` raises inside that step (a crash)."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(8, 3), torch.randn(8, 1)

    def step_fn(step):
        if step == fail_at:
            raise RuntimeError("crash")
        loss = torch.nn.functional.mse_loss(model(x + 0.01 * torch.randn_like(x)), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        time.sleep(sleep_s)
        return {"loss": loss.item(), "lr": 0.1}

    cfg = RunConfig(work_dir, total_steps=total, checkpoint_every=checkpoint_every, log_every=log_every,
                    progress_every_s=every_s, images_per_step=images_per_step, progress_unit=unit,
                    time_budget_s=time_budget_s)
    return train(cfg, {"model": model, "optimizer": optimizer}, step_fn)


def _progress_lines(err: str) -> list[re.Match]:
    return [m for m in map(LINE.match, err.splitlines()) if m]


def test_progress_line_at_every_checkpoint_with_losses_throughput_eta_memory(tmp_path, capsys):
    _linear_run(tmp_path, total=12, checkpoint_every=4)
    err = capsys.readouterr().err
    lines = _progress_lines(err)
    # one line when the run starts, one per checkpoint (4, 8, 12), none in between (interval 1000 s)
    assert [int(m["step"]) for m in lines] == [0, 4, 8, 12] and {m["total"] for m in lines} == {"12"}
    text = err.splitlines()[-1]
    assert re.search(r"loss [\d.e-]+, lr 0\.1 \| [\d.]+ img/s \([\d.]+ steps/s\) \| done \| max RSS [\d.]+ GiB "
                     r"\[finished\]$", text), text
    middle = [line for line in err.splitlines() if "step 4/12" in line][0]
    assert re.search(r"\| ETA \d+:\d\d:\d\d \|", middle), middle
    assert "%|" not in err                         # tqdm stays off when stderr is not a terminal
    record = json.loads((tmp_path / PROGRESS_NAME).read_text())
    assert record["state"] == "finished" and record["step"] == 12 and record["line"] in text
    assert record["images_per_s"] > 0 and record["memory_gib"] > 0


def test_progress_line_at_a_fixed_wall_clock_interval(tmp_path, capsys):
    started = time.monotonic()
    _linear_run(tmp_path, total=40, every_s=0.25, sleep_s=0.03)
    elapsed = time.monotonic() - started
    steps = [int(m["step"]) for m in _progress_lines(capsys.readouterr().err)]
    interval_lines = len(steps) - 2                 # less the start line and the final checkpoint's
    assert steps == sorted(steps) and steps[0] == 0 and steps[-1] == 40
    assert 0.5 * elapsed / 0.25 - 1 <= interval_lines <= elapsed / 0.25 + 1, (steps, elapsed)


def test_a_stopped_run_says_so_once(tmp_path, capsys):
    with pytest.raises(SystemExit):
        _linear_run(tmp_path, total=1000, sleep_s=0.02, time_budget_s=0.5)
    record = json.loads((tmp_path / PROGRESS_NAME).read_text())
    assert record["state"] == "stopped" and 0 < record["step"] < 1000
    stopped = [line for line in capsys.readouterr().err.splitlines() if f"step {record['step']}/1000" in line
               and LINE.match(line)]
    assert len(stopped) == 1 and stopped[0].endswith("[stopped]"), stopped


def test_kimg_progress_for_the_gan(tmp_path, capsys):
    _linear_run(tmp_path, total=10, checkpoint_every=5, images_per_step=16, unit="kimg")
    err = capsys.readouterr().err
    assert re.search(r": kimg 0\.080/0\.160 \(50\.0%\) \| .* [\d.]+ s/kimg \([\d.]+ img/s\) \| ETA ", err), err


def test_progress_interval_default_and_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    assert RunConfig(tmp_path, 1).progress_every_s == PROGRESS_EVERY_S == 60
    monkeypatch.setenv(PROGRESS_ENV, "5")
    assert RunConfig(tmp_path, 1).progress_every_s == 5
    assert RunConfig(tmp_path, 1, progress_every_s=2).progress_every_s == 2
    monkeypatch.setenv(PROGRESS_ENV, "soon")
    with pytest.raises(InputError, match=PROGRESS_ENV):
        RunConfig(tmp_path, 1)


def test_tensorboard_events_read_back_match_log_csv_after_a_crash_and_resume(tmp_path):
    with pytest.raises(RuntimeError, match="crash"):
        _linear_run(tmp_path, total=10, checkpoint_every=4, fail_at=6)   # logged steps 5, 6 past the checkpoint
    # TensorBoard reads a folder's event files in name order; names start with the whole second they were created
    # in, then pid and a per-process counter (".9" sorts after ".10"). A real resume is a later process, seconds
    # later; here both attempts share a process, so start the resumed one in a later second.
    time.sleep(1.0 - time.time() % 1.0 + 0.01)
    assert _linear_run(tmp_path, total=10, checkpoint_every=4) == 10     # resumes at 4
    events = EventAccumulator(str(tmp_path / TENSORBOARD_DIR))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/lr", "progress/images_per_s", "progress/memory_gib"} <= tags
    loss = events.Scalars("train/loss")
    log = read_log(tmp_path)
    # every step once (the crashed attempt's steps 5-6 purged), the same values as log.csv
    assert [e.step for e in loss] == [int(s) for s in log["step"]] == list(range(1, 11))
    assert [e.value for e in loss] == pytest.approx(log["loss"], rel=1e-6)


def test_status_lists_every_run_with_its_last_progress_line(tmp_path, capsys):
    root = tmp_path / "work"
    _linear_run(root / "lead" / "stage1~byol", total=6, checkpoint_every=3)
    with pytest.raises(RuntimeError):
        _linear_run(root / "hsr" / "dataset~x" / "hsr~none", total=20, checkpoint_every=5, fail_at=12,
                    images_per_step=16, unit="kimg")
    (root / "old_run").mkdir()
    (root / "old_run" / "log.csv").write_text("step,steps_averaged,time_s,loss\n10,10,1.0,0.5\n")
    runs = [p.relative_to(root).as_posix() for p in find_runs(root)]
    assert runs == ["hsr/dataset~x/hsr~none", "lead/stage1~byol", "old_run"]
    capsys.readouterr()
    config = tmp_path / "mine.yaml"
    config.write_text(f"work_dir: {root}\n")
    assert work_dir_of([config]) == root
    assert status_main(["--configfile", str(config)]) == 0
    out = capsys.readouterr().out
    assert "3 training runs" in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith(("lead/", "hsr/", "old_run "))}
    assert re.search(r"finished\s+step 6/6 \(100\.0%\)\s+-", rows["lead/stage1~byol"])
    # the crashed GAN-like run: its last report was the checkpoint at step 10 = 0.16 of 0.32 kimg
    assert re.search(r"running\s+kimg 0\.16/0\.32 \(50\.0%\)\s+\d+:\d\d:\d\d\s+0:00:0\d ago",
                     rows["hsr/dataset~x/hsr~none"])
    assert re.search(r"\?\s+step 10", rows["old_run"])
    assert f"{root / 'hsr/dataset~x/hsr~none'}: kimg 0.160/0.320 (50.0%)" in out   # the full last line


def test_status_command_from_the_shell_reads_the_config(tmp_path):
    missing = subprocess.run([sys.executable, "-m", "lead_hsr.train.status", "--configfile",
                              str(tmp_path / "no.yaml")], capture_output=True, text=True, cwd=REPO)
    assert missing.returncode == 2 and "no.yaml: config file not found" in missing.stderr
    # run where Snakemake would run: work_dir (work/demo) is relative to that directory, here an empty one
    out = subprocess.run([sys.executable, "-m", "lead_hsr.train.status", "--configfile",
                          str(REPO / "config" / "demo.yaml")],
                         capture_output=True, text=True, cwd=tmp_path, env={"PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    assert "no training run has started under work/demo" in out.stdout


def _status_rows(work_dir: Path) -> dict[str, str]:
    out = subprocess.run([sys.executable, "-m", "lead_hsr.train.status", "--work-dir", str(work_dir)],
                         capture_output=True, text=True, cwd=REPO, env={"PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    return {line.split()[0]: line for line in out.stdout.splitlines() if line.startswith("tiny ")} | {"": out.stdout}


def test_status_says_stopped_once_a_real_run_is_killed_with_sigkill(tmp_path):
    """A real training process, killed with kill -9 (no handler runs, progress.json still says running): the
    status command sees its pid is gone and says stopped; before it did, it said running."""
    run = tmp_path / "work" / "tiny"
    proc = subprocess.Popen([sys.executable, str(REPO / "tests" / "train" / "tiny_run.py"), str(run),
                             str(tmp_path / "out.pt"), "--total-steps", "100000", "--sleep", "0.01"],
                            cwd=REPO, stderr=subprocess.DEVNULL,
                            env={"PYTHONPATH": str(REPO), PROGRESS_ENV: "0.2", "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 60
        while not ((run / PROGRESS_NAME).is_file() and json.loads((run / PROGRESS_NAME).read_text())["step"] > 0):
            assert proc.poll() is None and time.monotonic() < deadline, "the tiny run did not report a step"
            time.sleep(0.1)
        record = json.loads((run / PROGRESS_NAME).read_text())
        assert record["pid"] == proc.pid and record["host"] and record["progress_every_s"] == 0.2
        assert re.search(r"^tiny\s+running\s+step \d+/100000", _status_rows(tmp_path / "work")["tiny"])
    finally:
        proc.kill()                                  # SIGKILL, as `kill -9`
        proc.wait()
    assert json.loads((run / PROGRESS_NAME).read_text())["state"] == "running"    # what the file still says
    rows = _status_rows(tmp_path / "work")
    assert re.search(r"^tiny\s+stopped\s+step \d+/100000 \([\d.]+%\)\s+-\s", rows["tiny"]), rows[""]
    assert f"[stopped: process {proc.pid} is gone]" in rows[""]


def _record(**fields) -> dict:
    now = datetime.datetime(2025, 1, 1, 12, 0, tzinfo=datetime.timezone.utc)
    return {"state": "running", "updated": now.isoformat(), "progress_every_s": 60.0, "host": "node7",
            "pid": 12345, "pid_started": "1", **fields}


def test_a_run_on_another_host_is_stopped_once_its_heartbeat_is_stale():
    updated = datetime.datetime(2025, 1, 1, 12, 0, tzinfo=datetime.timezone.utc)
    # default interval 60 s: 5 intervals is under the 10-minute floor, so the floor decides
    assert run_liveness(_record(), updated + datetime.timedelta(minutes=9), host="login1") == ("running", "")
    state, why = run_liveness(_record(), updated + datetime.timedelta(minutes=11), host="login1")
    assert state == "stopped" and why == "no heartbeat on node7 for 0:11:00 (> 0:10:00)"
    # a long interval: five of them
    slow = _record(progress_every_s=300.0)
    assert run_liveness(slow, updated + datetime.timedelta(minutes=24), host="login1")[0] == "running"
    assert run_liveness(slow, updated + datetime.timedelta(minutes=26), host="login1")[0] == "stopped"
    # a record from before the process was recorded: its heartbeat, at the default interval
    old = {k: v for k, v in _record().items() if k not in ("host", "pid", "pid_started", "progress_every_s")}
    assert run_liveness(old, updated + datetime.timedelta(minutes=11))[0] == "stopped"
    # finished and cleanly stopped runs say what they say, whatever the time or the process
    for state in ("finished", "stopped"):
        assert run_liveness(_record(state=state), updated + datetime.timedelta(days=3), host="login1") == (state, "")


def test_a_run_on_this_host_is_judged_by_its_pid_not_its_heartbeat():
    me, later = socket.gethostname(), datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
    mine = {**_record(host=me), **process_identity()}
    assert run_liveness(mine, later) == ("running", "")            # alive, however old its last report
    recycled = {**mine, "pid_started": "0"}                          # this pid, but a process started earlier
    assert run_liveness(recycled, later) == ("stopped", f"process {os.getpid()} is gone")
    finished = {**_record(host=me, state="finished")}
    assert run_liveness(finished, later) == ("finished", "")


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads process states from /proc (Linux)")
def test_a_killed_child_not_yet_reaped_is_not_alive():
    child = subprocess.Popen(["sleep", "60"])
    identity = Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    assert process_alive(child.pid, identity)
    child.kill()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert not process_alive(child.pid, identity)                    # a zombie: os.kill(pid, 0) still succeeds
    child.wait()
    assert not process_alive(child.pid, identity)
