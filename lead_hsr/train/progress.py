"""What a running trainer shows: progress lines in the job log, `progress.json`, TensorBoard events, `log.csv`.

A progress line goes to stderr (the job log under Snakemake) every `progress_every_s` seconds of wall-clock
time and at each checkpoint:

    [lead_hsr.train] <work_dir>: step 1200/60000 (2.0%) | loss 0.4312 | 410.2 img/s (1.60 steps/s) | ETA 10:25:00 | ...
    [lead_hsr.train] <work_dir>: kimg 480.0/25000.0 (1.9%) | loss_G 2.31, loss_D 0.52, ... | 4.02 s/kimg (248.8 img/s) |
        ETA 1 day, 3:22:50 | max CUDA alloc 2.70 GiB                                 (one line in the log)

The same line, with the numbers behind it, is written atomically to `<work_dir>/progress.json`: what
`python -m lead_hsr.train.status` reads. The record also names the process that wrote it (`host`, `pid`, `pid_started`
= the process's start time, so a recycled pid is not mistaken for it) and `progress_every_s`: its `updated` time is
the run's heartbeat, renewed at least every `progress_every_s` while steps finish (`run_liveness`).
Scalars also go to TensorBoard event files in `<work_dir>/tensorboard/` (tag `train/<name>`, one point per log.csv
row, plus `progress/*`); `read_log` reads `log.csv` back for the training-curve figures.
"""
from __future__ import annotations

import csv
import datetime
import math
import os
import resource
import socket
import sys
import time
from pathlib import Path

import torch

from lead_hsr.train.atomic import atomic_write_json

LOG_NAME = "log.csv"
LOG_BOOKKEEPING = ("step", "steps_averaged", "time_s")   # log.csv columns that are not a scalar of the run
PROGRESS_NAME = "progress.json"
TENSORBOARD_DIR = "tensorboard"
UNITS = ("steps", "kimg")
PROGRESS_EVERY_S = 60.0      # default seconds between progress lines: a few hundred lines a day in a job log
PROGRESS_ENV = "LEAD_HSR_PROGRESS_EVERY_S"   # overrides the default for every trainer of a run (e.g. the demo)
# A run on another host (a Slurm node) whose heartbeat is older than this many progress intervals, and at least
# STALE_FLOOR_S, is taken as stopped. The heartbeat is renewed only between steps, so one slow step, checkpoint or
# snapshot export delays it: a few intervals plus a 10-minute floor keep a live run from reading "stopped".
STALE_INTERVALS = 5
STALE_FLOOR_S = 600.0


def default_progress_every_s() -> float:
    """PROGRESS_EVERY_S, or the positive number in $LEAD_HSR_PROGRESS_EVERY_S."""
    text = os.environ.get(PROGRESS_ENV)
    if text is None:
        return PROGRESS_EVERY_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0:
        from lead_hsr.errors import InputError
        raise InputError(f"${PROGRESS_ENV}={text!r}: expected a positive number of seconds; unset it for the "
                         f"default {PROGRESS_EVERY_S:g}")
    return value


class ScalarWindow:
    """Running means of the scalars a step function returned since the last `take()`."""

    def __init__(self):
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.steps = 0

    def add(self, scalars: dict) -> None:
        self.steps += 1
        for name, value in scalars.items():
            value = float(value.item() if isinstance(value, torch.Tensor) else value)
            self.sums[name] = self.sums.get(name, 0.0) + value
            self.counts[name] = self.counts.get(name, 0) + 1

    def take(self) -> tuple[int, dict[str, float]]:
        """(steps in the window, mean of each scalar); empties the window."""
        steps, means = self.steps, {name: self.sums[name] / self.counts[name] for name in self.sums}
        self.__init__()
        return steps, means


def device_memory() -> tuple[str, float]:
    """(label, GiB): CUDA's peak allocated memory when this process uses CUDA, else the peak resident set size."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return "max CUDA alloc", torch.cuda.max_memory_allocated() / 2**30
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss     # KiB on Linux, bytes on macOS
    return "max RSS", peak / (2**30 if sys.platform == "darwin" else 2**20)


def format_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    return str(datetime.timedelta(seconds=round(seconds)))


class Progress:
    """Throughput, ETA and memory since this process started; one line (+ progress.json) per report."""

    def __init__(self, work_dir: Path, name: str, total_steps: int, start_step: int, every_s: float,
                 images_per_step: int | None, unit: str, enabled: bool):
        if unit not in UNITS:
            raise ValueError(f"progress unit must be one of {UNITS}, got {unit!r}")
        if unit == "kimg" and not images_per_step:
            raise ValueError("progress in kimg needs images_per_step")
        self.work_dir, self.name, self.total, self.start = work_dir, name, total_steps, start_step
        self.every_s, self.images_per_step, self.unit, self.enabled = every_s, images_per_step, unit, enabled
        self.t0 = self.last = time.monotonic()
        self.window = ScalarWindow()
        self.identity = process_identity()

    def due(self) -> bool:
        return time.monotonic() - self.last >= self.every_s

    def _position(self, steps: int) -> float:
        return steps * self.images_per_step / 1000 if self.unit == "kimg" else float(steps)

    def report(self, steps_done: int, state: str = "running", say=None) -> dict:
        """Print the progress line and write progress.json; `state` is running | finished | stopped."""
        self.last = now = time.monotonic()
        _, means = self.window.take()
        elapsed = now - self.t0
        rate = (steps_done - self.start) / elapsed if elapsed > 0 and steps_done > self.start else None
        eta = (self.total - steps_done) / rate if rate else (0.0 if steps_done >= self.total else None)
        memory_label, memory_gib = device_memory()
        record = {
            "work_dir": str(self.work_dir), "state": state, "step": steps_done, "total_steps": self.total,
            "unit": self.unit, "images_per_step": self.images_per_step,
            "position": self._position(steps_done), "total": self._position(self.total),
            "steps_per_s": rate, "images_per_s": rate * self.images_per_step if rate and self.images_per_step
            else None, "eta_s": eta, "memory_gib": memory_gib, "memory": memory_label, "scalars": means,
            "updated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "progress_every_s": self.every_s, **self.identity,
        }
        record["line"] = self._line(record)
        if self.enabled:
            (say or _print)(record["line"])
            atomic_write_json(record, self.work_dir / PROGRESS_NAME)
        return record

    def _line(self, r: dict) -> str:
        pct = 100 * r["step"] / r["total_steps"] if r["total_steps"] else 100.0
        decimals = 1 if r["total"] >= 100 else 3     # paper: kimg 480.0/25000.0; demo: kimg 0.096/0.800
        where = (f"kimg {r['position']:.{decimals}f}/{r['total']:.{decimals}f}" if self.unit == "kimg"
                 else f"step {r['step']}/{r['total_steps']}")
        parts = [f"{self.name}: {where} ({pct:.1f}%)"]
        if r["scalars"]:
            parts.append(", ".join(f"{k} {v:.4g}" for k, v in r["scalars"].items()))
        parts.append(self._throughput(r))
        parts.append("done" if r["state"] == "finished" else f"ETA {format_duration(r['eta_s'])}")
        parts.append(f"{r['memory']} {r['memory_gib']:.2f} GiB")
        line = " | ".join(parts)
        return line if r["state"] == "running" else f"{line} [{r['state']}]"

    def _throughput(self, r: dict) -> str:
        if r["steps_per_s"] is None:
            return "throughput ?"
        if self.unit == "kimg":
            return f"{1000 / r['images_per_s']:.2f} s/kimg ({r['images_per_s']:.1f} img/s)"
        if r["images_per_s"] is not None:
            return f"{r['images_per_s']:.1f} img/s ({r['steps_per_s']:.2f} steps/s)"
        return f"{r['steps_per_s']:.2f} steps/s"


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) of process `pid` from /proc/<pid>/stat (fields 3 and 22),
    None where /proc has no such process (or there is no /proc: macOS)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()   # after "pid (comm)"
    except (OSError, IndexError):
        return None
    return fields[0], fields[19]


def process_identity() -> dict:
    """Who writes a progress record: host name, pid and the pid's start time (None off Linux)."""
    stat = _proc_stat(os.getpid())
    return {"host": socket.gethostname(), "pid": os.getpid(), "pid_started": stat[1] if stat else None}


def process_alive(pid: int, started: str | None) -> bool:
    """Whether process `pid` on this host still exists and is the one that started at `started` (a pid recycled
    by a newer process is not). A zombie (killed, not yet reaped by its parent) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:          # another user's process: it exists
        pass
    stat = _proc_stat(pid)
    if stat is None:                 # no /proc (macOS): the pid exists; or it exited since os.kill
        return started is None
    state, stat_started = stat
    return state != "Z" and (started is None or started == stat_started)


def run_liveness(record: dict, now: datetime.datetime, host: str | None = None) -> tuple[str, str]:
    """(state, why) of a progress record at time `now`, as seen from `host` (default: this one).

    A record that says `running` is `stopped` when its process is gone: on this host, its pid is not alive (killed
    with SIGKILL, out of memory, a crash); on another host (a Slurm node), where the pid cannot be asked, its
    heartbeat (`updated`) is older than STALE_INTERVALS progress intervals and at least STALE_FLOOR_S. Records
    written before the process was recorded are judged by their heartbeat. `finished` and `stopped` records say
    what they say; `why` is "" unless the state was corrected.
    """
    state = record.get("state", "?")
    if state != "running":
        return state, ""
    host = host or socket.gethostname()
    if record.get("pid") is not None and record.get("host") == host:
        if process_alive(int(record["pid"]), record.get("pid_started")):
            return state, ""
        return "stopped", f"process {record['pid']} is gone"
    every_s = float(record.get("progress_every_s") or PROGRESS_EVERY_S)
    stale_s = max(STALE_INTERVALS * every_s, STALE_FLOOR_S)
    try:
        age_s = (now - datetime.datetime.fromisoformat(record["updated"])).total_seconds()
    except (KeyError, TypeError, ValueError):
        return state, ""
    if age_s > stale_s:
        where = f" on {record['host']}" if record.get("host") else ""
        return "stopped", f"no heartbeat{where} for {format_duration(age_s)} (> {format_duration(stale_s)})"
    return state, ""


def _print(line: str) -> None:
    print(f"[lead_hsr.train] {line}", file=sys.stderr, flush=True)


class TensorBoard:
    """SummaryWriter in `<work_dir>/tensorboard/`, created on first use (rank 0 only).

    A resumed run passes `purge_step` = the checkpointed step + 1, so TensorBoard drops the events a killed
    attempt wrote after its last checkpoint (the same rule as log.csv).
    """

    def __init__(self, work_dir: Path, start_step: int, enabled: bool):
        self.log_dir, self.start, self.enabled = work_dir / TENSORBOARD_DIR, start_step, enabled
        self._writer = None

    def _get(self):
        if self._writer is None:
            try:
                from torch.utils.tensorboard import SummaryWriter   # imported late: only trainers pay for it
            except ImportError as error:
                from lead_hsr.errors import InputError
                raise InputError(f"{self.log_dir}: cannot write TensorBoard events ({error}); install the pinned "
                                 "packages: pip install -r envs/requirements.txt") from error
            self._writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=self.start + 1 if self.start else None)
        return self._writer

    def scalars(self, prefix: str, values: dict, step: int) -> None:
        if not self.enabled:
            return
        writer = self._get()
        for name, value in values.items():
            if value is not None and math.isfinite(value):
                writer.add_scalar(f"{prefix}/{name}", value, step)

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def read_log(work_dir: Path) -> dict[str, list[float]]:
    """`<work_dir>/log.csv` as column -> values (floats; NaN where a scalar was not logged in that row)."""
    with open(Path(work_dir) / LOG_NAME, newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns = list(rows[0]) if rows else []
    return {name: [float(row[name]) if row.get(name) not in (None, "") else math.nan for row in rows]
            for name in columns}


def read_progress(work_dir: Path) -> dict | None:
    """The last progress record of a run (`<work_dir>/progress.json`), None if it has not written one."""
    path = Path(work_dir) / PROGRESS_NAME
    if not path.is_file():
        return None
    import json
    return json.loads(path.read_text())


def find_runs(root: Path) -> list[Path]:
    """Every training work directory under `root` (one that holds log.csv or progress.json), sorted."""
    root = Path(root)
    found = {path.parent for name in (LOG_NAME, PROGRESS_NAME) for path in root.rglob(name)}
    return sorted(found)


def curve_data(work_dir: Path) -> dict:
    """What a training-curve figure of one run shows: x (step, or kimg for a GAN run) and each logged scalar."""
    log = read_log(work_dir)
    record = read_progress(work_dir) or {}
    steps = log.get("step", [])
    if record.get("unit") == "kimg" and record.get("images_per_step"):
        x_label, x = "kimg", [s * record["images_per_step"] / 1000 for s in steps]
    else:
        x_label, x = "step", list(steps)
    series = {name: values for name, values in log.items() if name not in LOG_BOOKKEEPING}
    return {"x_label": x_label, "x": x, "series": series}


def run_curves(work_dirs: list[Path], root: Path) -> dict[str, dict]:
    """Run name (its path under `root`) -> `curve_data`, for each of `work_dirs` that has a log.csv (a run that
    has logged a row); the others (not started, or a trainer that logs nothing) are left out."""
    root = Path(root)
    return {(Path(run).relative_to(root).as_posix() if Path(run).is_relative_to(root) else Path(run).as_posix()):
            curve_data(Path(run)) for run in work_dirs if (Path(run) / LOG_NAME).is_file()}
