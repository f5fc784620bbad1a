"""The one training loop: seed, resume, step, log, checkpoint atomically, stop cleanly on signal or time budget.

Every trainer (BYOL, MoCo, LEAD/CL stage 2, regressor, GAN) hands `train` its stateful objects and a
`step_fn(step) -> scalars`; everything that makes long jobs survive preemption lives here, once.
"""
from __future__ import annotations

import csv
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from lead_hsr.errors import InputError
from lead_hsr.train import ddp
from lead_hsr.train.atomic import atomic_save_torch, atomic_write_text, load_torch_file
from lead_hsr.train.progress import (LOG_BOOKKEEPING, LOG_NAME, Progress, ScalarWindow, TensorBoard,
                                     default_progress_every_s)
from lead_hsr.train.rng import capture_rng_state, restore_rng_state, seed_everything

# EX_TEMPFAIL from sysexits.h: "temporary failure, retry". Non-zero so Snakemake's `retries` rerun the job,
# distinct from 1 (a real error) so logs show the job stopped on purpose.
TERMINATED_EXIT_CODE = 75
CHECKPOINT_NAME = "checkpoint.pt"
# Stop when the time left is under this many estimated (step + checkpoint) durations: headroom for jitter.
BUDGET_SAFETY_FACTOR = 2.0


@dataclass
class RunConfig:
    work_dir: Path                 # undeclared checkpoint dir (Snakemake never deletes it); created if absent
    total_steps: int
    seed: int = 0
    checkpoint_every: int = 100    # steps; also always at the end and on stop
    time_budget_s: float | None = None   # stop cleanly (checkpoint, exit TERMINATED_EXIT_CODE) before this wall time
    log_every: int = 10            # steps per log.csv row (and TensorBoard point)
    progress_every_s: float | None = None   # seconds between progress lines (and one at each checkpoint);
                                            # None: $LEAD_HSR_PROGRESS_EVERY_S or PROGRESS_EVERY_S (60)
    images_per_step: int | None = None   # global batch: throughput in images/s
    progress_unit: str = "steps"   # "kimg" (GAN): position in thousands of images, throughput in s/kimg
    continue_from: Path | None = None    # a prefix run's exported state (`export_state`): start there, not at 0
    tensorboard: bool = True       # event files in work_dir/tensorboard/
    identity: dict | None = None   # JSON-like settings a checkpoint must match to be resumed/continued (options)

    def __post_init__(self):
        self.work_dir = Path(self.work_dir)
        if self.progress_every_s is None:
            self.progress_every_s = default_progress_every_s()
        if self.continue_from is not None:
            self.continue_from = Path(self.continue_from)
        if self.total_steps < 0 or self.checkpoint_every < 1 or self.log_every < 1 or not self.progress_every_s > 0:
            raise InputError(f"RunConfig for {self.work_dir}: need total_steps >= 0, checkpoint_every >= 1, "
                             f"log_every >= 1, progress_every_s > 0; got {self.total_steps}, "
                             f"{self.checkpoint_every}, {self.log_every}, {self.progress_every_s}")
        if self.time_budget_s is not None and not self.time_budget_s > 0:
            raise InputError(f"RunConfig for {self.work_dir}: time_budget_s must be positive or None, got "
                             f"{self.time_budget_s}; check the rule's resources.runtime and its margin")

    @property
    def checkpoint_path(self) -> Path:
        return self.work_dir / CHECKPOINT_NAME

    @property
    def log_path(self) -> Path:
        return self.work_dir / LOG_NAME


def _say(message: str) -> None:
    if ddp.is_main_process():
        print(f"[lead_hsr.train] {message}", file=sys.stderr, flush=True)


class _StopSignals:
    """SIGTERM/SIGINT set a flag; the loop checkpoints after the current step and exits. A second SIGINT aborts."""

    def __init__(self):
        self.received: str | None = None
        self._previous = {}

    def _handle(self, signum, frame):
        if self.received and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False


class _CsvLog:
    """work_dir/log.csv: one row per `log_every` steps with the mean of each scalar since the previous row.

    On resume, rows past the checkpointed step (written after the last checkpoint) are dropped, so the log
    matches the state. Columns grow when a new scalar appears (e.g. a loss computed every 16 steps).
    """

    def __init__(self, path: Path, enabled: bool, steps_done: int, prefix_log: str | None = None):
        self.path, self.enabled = path, enabled
        self.fields: list[str] = list(LOG_BOOKKEEPING)
        self.window = ScalarWindow()
        if enabled and prefix_log and not path.exists():
            atomic_write_text(prefix_log, path)   # a continued run's log starts with its prefix's rows
        if enabled and path.exists():
            self._truncate_after(steps_done)

    def _read(self) -> list[dict]:
        with open(self.path, newline="") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            for name in reader.fieldnames or []:
                if name not in self.fields:
                    self.fields.append(name)
        return rows

    def _write_all(self, rows: list[dict]) -> None:
        lines = [",".join(self.fields)]
        lines += [",".join(str(row.get(name, "")) for name in self.fields) for row in rows]
        atomic_write_text("\n".join(lines) + "\n", self.path)

    def _truncate_after(self, steps_done: int) -> None:
        rows = [row for row in self._read() if int(row["step"]) <= steps_done]
        self._write_all(rows)

    def add(self, scalars: dict) -> None:
        self.window.add(scalars)

    def flush(self, steps_done: int, elapsed_s: float) -> dict[str, float]:
        """Write the pending window as one row; returns the means (for the progress bar and TensorBoard)."""
        steps, means = self.window.take()
        if steps == 0:
            return {}
        row = {"step": steps_done, "steps_averaged": steps, "time_s": f"{elapsed_s:.3f}",
               **{name: repr(value) for name, value in means.items()}}
        if self.enabled:
            self._append(row)
        return means

    def _append(self, row: dict) -> None:
        new_fields = [name for name in row if name not in self.fields]
        if new_fields or not self.path.exists():
            rows = self._read() if self.path.exists() else []
            self.fields += new_fields
            self._write_all(rows + [row])
            return
        with open(self.path, "a", newline="") as handle:
            handle.write(",".join(str(row.get(name, "")) for name in self.fields) + "\n")


def _check_state(state: dict) -> None:
    for name, obj in state.items():
        if not (hasattr(obj, "state_dict") and hasattr(obj, "load_state_dict")):
            raise TypeError(f"state[{name!r}] ({type(obj).__name__}) needs state_dict() and load_state_dict()")


def _save_checkpoint(cfg: RunConfig, state: dict, steps_done: int) -> None:
    payload = {
        "step": steps_done,
        "seed": cfg.seed,
        "total_steps": cfg.total_steps,
        "identity": cfg.identity,
        "state": {name: obj.state_dict() for name, obj in state.items()},
        "rng": capture_rng_state(),
    }
    atomic_save_torch(payload, cfg.checkpoint_path)


def export_state(cfg: RunConfig, dest: Path, extra: dict | None = None) -> Path:
    """Write the finished run's checkpoint plus its log.csv rows (and `extra`) atomically to `dest`: a declared
    output another run continues from with `RunConfig(continue_from=dest)` (a prefix: e.g. a GAN baseline's
    first `hsr.start_kimg`). The continued run is bitwise identical to one that never stopped (CPU)."""
    payload = torch.load(cfg.checkpoint_path, map_location="cpu", weights_only=True)
    if payload["step"] != cfg.total_steps:
        raise InputError(f"{cfg.checkpoint_path}: at step {payload['step']}, not at the end ({cfg.total_steps}); "
                         "export_state needs a finished run")
    payload["log_csv"] = cfg.log_path.read_text() if cfg.log_path.exists() else ""
    payload.update(extra or {})
    return atomic_save_torch(payload, dest)


def _load_checkpoint(cfg: RunConfig, state: dict) -> tuple[int, str | None]:
    """Restore `state` and the RNGs from work_dir/checkpoint.pt, or else from `cfg.continue_from`; returns the
    steps already done (0 if neither exists) and, when starting from `continue_from`, its log.csv text."""
    path = cfg.checkpoint_path
    if not path.exists() and cfg.continue_from is None:
        return 0, None
    continuing = not path.exists()
    if continuing:
        path = cfg.continue_from
        fix = f"rebuild {path} with the prefix run that writes it (Snakemake: --forcerun its rule)"
        if not path.is_file():
            raise InputError(f"{path}: the training state to continue from is missing; {fix}")
    else:
        fix = f"delete {cfg.work_dir} to start this run from scratch"
    payload = load_torch_file(path, "a lead_hsr training checkpoint", fix)
    if set(payload["state"]) != set(state):
        raise InputError(f"{path}: checkpoint holds {sorted(payload['state'])} but this run trains "
                         f"{sorted(state)}; it belongs to a different run; {fix}")
    saved_identity = payload.get("identity")
    if saved_identity is not None and cfg.identity is not None and saved_identity != cfg.identity:
        differ = sorted(k for k in set(saved_identity) | set(cfg.identity)
                        if saved_identity.get(k) != cfg.identity.get(k))
        raise InputError(f"{path}: checkpoint was written with other settings ({', '.join(differ)} differ: "
                         f"{ {k: saved_identity.get(k) for k in differ} } there, "
                         f"{ {k: cfg.identity.get(k) for k in differ} } here); {fix}")
    if payload["seed"] != cfg.seed or payload["step"] > cfg.total_steps:
        raise InputError(f"{path}: checkpoint is from seed {payload['seed']} at step {payload['step']}, this run "
                         f"has seed {cfg.seed} and total_steps {cfg.total_steps}; {fix}")
    for name, obj in state.items():
        saved = payload["state"][name]
        if _is_disabled_grad_scaler(obj) and not saved:
            continue  # a disabled GradScaler saves {} and refuses to load it; there is nothing to restore
        obj.load_state_dict(saved)
    restore_rng_state(payload["rng"])
    return int(payload["step"]), payload.get("log_csv", "") if continuing else None


def _is_disabled_grad_scaler(obj) -> bool:
    return isinstance(obj, torch.amp.GradScaler) and not obj.is_enabled()


class _Budget:
    """Predicts whether one more step plus a checkpoint still fits in the time budget."""

    def __init__(self, budget_s: float | None):
        self.budget_s, self.t0 = budget_s, time.monotonic()
        self.max_step_s = 0.0
        self.checkpoint_s = 0.0

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def nearly_spent(self) -> bool:
        if self.budget_s is None:
            return False
        needed = BUDGET_SAFETY_FACTOR * (self.max_step_s + self.checkpoint_s)
        return self.elapsed() + needed >= self.budget_s


def train(cfg: RunConfig, state: dict[str, object], step_fn: Callable[[int], dict[str, float]],
          on_checkpoint: Callable[[int], None] | None = None) -> int:
    """Seeds everything from cfg.seed; if work_dir/checkpoint.pt exists (else if cfg.continue_from is set),
    loads every entry of `state` (anything with state_dict/load_state_dict: modules, optimizers, schedulers,
    GradScaler, custom objects) plus torch/numpy/python RNG states and the step counter; then for step in
    range(start, total_steps) calls step_fn(step) -> scalars, logs them to work_dir/log.csv and TensorBoard,
    prints a progress line every cfg.progress_every_s seconds and at each checkpoint, checkpoints atomically
    (tmp file + os.replace) every checkpoint_every steps and at the end. On SIGTERM/SIGINT or when the time
    budget (measured from this call) is near: checkpoint after the current step and raise
    SystemExit(TERMINATED_EXIT_CODE) so Snakemake `retries` rerun and resume. Under torchrun only rank 0 writes;
    all ranks stop at the same step. `on_checkpoint(steps_done)` runs on rank 0 after each checkpoint. Returns
    the steps done (= total_steps). Custom state objects must return tensors/containers/primitives so
    torch.load(weights_only=True) reads them.
    """
    _check_state(state)
    main = ddp.is_main_process()
    if main:
        cfg.work_dir.mkdir(parents=True, exist_ok=True)
    budget = _Budget(cfg.time_budget_s)
    seed_everything(cfg.seed)
    start, prefix_log = _load_checkpoint(cfg, state)
    if prefix_log is not None:
        _say(f"continuing {cfg.work_dir} from {cfg.continue_from} at step {start}/{cfg.total_steps}")
    elif start:
        _say(f"resumed {cfg.work_dir} at step {start}/{cfg.total_steps}")
    if start == cfg.total_steps:
        return start                    # finished before: nothing to run, nothing to log
    log = _CsvLog(cfg.log_path, enabled=main, steps_done=start, prefix_log=prefix_log)
    board = TensorBoard(cfg.work_dir, start, enabled=main and cfg.tensorboard)
    progress = Progress(cfg.work_dir, str(cfg.work_dir), cfg.total_steps, start, cfg.progress_every_s,
                        cfg.images_per_step, cfg.progress_unit, enabled=main)
    bar = tqdm(total=cfg.total_steps, initial=start, disable=not (main and sys.stderr.isatty()),
               dynamic_ncols=True, desc=str(cfg.work_dir))

    def flush_log(steps_done: int) -> dict[str, float]:
        means = log.flush(steps_done, budget.elapsed())
        board.scalars("train", means, steps_done)
        return means

    def report(steps_done: int, run_state: str = "running") -> None:
        record = progress.report(steps_done, run_state, say=_say)
        board.scalars("progress", {"images_per_s": record["images_per_s"], "memory_gib": record["memory_gib"],
                                   **({"s_per_kimg": 1000 / record["images_per_s"]}
                                      if cfg.progress_unit == "kimg" and record["images_per_s"] else {})},
                      steps_done)

    def checkpoint(steps_done: int, run_state: str = "running") -> None:
        began = time.monotonic()
        flush_log(steps_done)
        if main:
            _save_checkpoint(cfg, state, steps_done)
            if on_checkpoint is not None:
                on_checkpoint(steps_done)
        ddp.barrier()
        budget.checkpoint_s = max(budget.checkpoint_s, time.monotonic() - began)
        report(steps_done, "finished" if steps_done == cfg.total_steps else run_state)
        board.flush()

    report(start)
    try:
        with _StopSignals() as signals, bar:
            steps_done = start
            while steps_done < cfg.total_steps:
                began = time.monotonic()
                scalars = step_fn(steps_done) or {}
                steps_done += 1
                budget.max_step_s = max(budget.max_step_s, time.monotonic() - began)
                log.add(scalars)
                progress.window.add(scalars)
                bar.update(1)
                checkpointed = steps_done % cfg.checkpoint_every == 0 or steps_done == cfg.total_steps
                if checkpointed:
                    checkpoint(steps_done)
                else:
                    if steps_done % cfg.log_every == 0:
                        means = flush_log(steps_done)
                        bar.set_postfix({k: f"{v:.4g}" for k, v in means.items() if math.isfinite(v)},
                                        refresh=False)
                    if progress.due():
                        report(steps_done)
                if steps_done < cfg.total_steps and ddp.any_rank(bool(signals.received) or budget.nearly_spent()):
                    reason = signals.received or "time budget nearly spent"
                    if checkpointed:
                        report(steps_done, "stopped")
                    else:
                        checkpoint(steps_done, "stopped")
                    _say(f"stopping {cfg.work_dir} at step {steps_done}/{cfg.total_steps} ({reason}); "
                         f"exit code {TERMINATED_EXIT_CODE}, rerun to resume")
                    raise SystemExit(TERMINATED_EXIT_CODE)
    finally:
        board.close()
    return steps_done


run_training = train  # the name ARCHITECTURE.md uses
