"""The real LEAD stage-1 trainer (rule train_stage1, config/demo.yaml + demo_slice.TINY), interrupted mid-run
on Slurm, continues from its checkpoint and ends with weights byte-identical to an uninterrupted local run of
the same rule, both ways a cluster interrupts jobs:
- preemption with requeue (`scontrol requeue`, what PreemptMode=REQUEUE does; profiles/slurm submits with
  --requeue): Slurm stops the job and reruns the same job id;
- a stop signal (`scancel --signal=TERM`, as sent before preemption or at the time limit): lead_hsr.train
  checkpoints and exits 75, the job FAILS and Snakemake resubmits it (`retries` in profiles/slurm).
Either way the checkpoint lives in the undeclared work dir (work/demo/lead/stage1/...), which Snakemake does not
delete before the rerun, and the trainer's own log.csv shows the second attempt starting at a step > 0.
Stage 1 runs one process (no torchrun: lead_hsr.train.ddp stays single-process, Slurm sets no WORLD_SIZE)
with the rule's threads (1 in the demo config), on Slurm as locally, so the results can be compared bitwise."""
import filecmp
import subprocess
import time

import pytest

from demo_slice import (SLICE_TIMEOUT_S, STAGE1, STAGE1_CHECKPOINT_EVERY, STAGE1_FILES, STAGE1_LOG, STAGE1_STEPS,
                        STAGE1_WORK, copy_prepared_data, resumed_at, slice_command, stage1_log_rows)
from slurm_helpers import SnakemakeRun, failure_report, run, sacct, slurm_env

pytestmark = pytest.mark.slurm

# Interrupt once the trainer has a checkpoint and is past this step: well inside the run (40 steps).
INTERRUPT_AFTER_STEP = 2 * STAGE1_CHECKPOINT_EVERY + 1


def latest_step(workdir) -> int:
    """Last step in the trainer's log.csv (0 before the first row)."""
    try:
        rows = stage1_log_rows(workdir)
    except (FileNotFoundError, KeyError, ValueError):
        return 0
    return int(rows[-1]["step"]) if rows else 0


def running_job_of_rule(rule) -> str | None:
    """Slurm job id of the running job whose comment names `rule` (the executor writes rule_<name>[_wildcards_..])."""
    lines = run(["squeue", "-h", "-t", "R", "-o", "%i %k"], timeout=30).stdout.split("\n")
    ids = [line.split()[0] for line in lines if f" rule_{rule}" in f" {line.strip()}"]
    return ids[0] if ids else None


def wait_for_checkpointed_job(workdir, proc, min_step, timeout_s=240) -> str:
    deadline = time.time() + timeout_s
    while time.time() < deadline and proc.poll() is None:
        job = running_job_of_rule("train_stage1")
        if job and latest_step(workdir) >= min_step and (workdir / STAGE1_WORK / "checkpoint.pt").exists():
            return job
        time.sleep(0.2)
    pytest.fail(f"no running train_stage1 job past step {min_step} within {timeout_s} s "
                f"(snakemake exit code {proc.poll()}, last logged step {latest_step(workdir)})")


def preempt_with_requeue(job):
    assert run(["scontrol", "requeue", job], timeout=30).returncode == 0
    # Slurm holds a requeued job for ~2 minutes (BeginTime); release it at once to keep the test short.
    deadline = time.time() + 60
    while run(["squeue", "-h", "-j", job, "-o", "%T"], timeout=30).stdout.strip() != "PENDING":
        assert time.time() < deadline, "requeued job never became PENDING"
        time.sleep(0.3)
    assert run(["scontrol", "update", f"jobid={job}", "StartTime=now"], timeout=30).returncode == 0


def send_stop_signal(job):
    assert run(["scancel", "--signal=TERM", job], timeout=30).returncode == 0


@pytest.mark.parametrize("interrupt", ["requeue", "stop_signal"])
def test_interrupted_trainer_resumes_from_checkpoint(slurm_cluster, local_demo_stage1, tmp_path, interrupt):
    workdir = copy_prepared_data(local_demo_stage1, tmp_path / "preempt")
    proc = subprocess.Popen(slice_command(workdir, STAGE1), env=slurm_env(), cwd=workdir,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        interrupted = wait_for_checkpointed_job(workdir, proc, INTERRUPT_AFTER_STEP)
        interrupted_at = latest_step(workdir)
        {"requeue": preempt_with_requeue, "stop_signal": send_stop_signal}[interrupt](interrupted)
    finally:
        output, _ = proc.communicate(timeout=SLICE_TIMEOUT_S + 30)
    result = SnakemakeRun(proc.returncode, output)
    assert result.returncode == 0, failure_report(result, workdir)

    # Only the trainer ran (the data came from the local run), on Slurm.
    job_ids = result.slurm_job_ids
    records = sacct(job_ids)
    assert all(r["Comment"].startswith("rule_train_stage1") for r in records.values()), records
    if interrupt == "requeue":  # Slurm reran the same job
        assert job_ids == [interrupted] and records[interrupted]["State"] == "COMPLETED", records
    else:  # the trainer exited 75, the job failed and Snakemake submitted a new one
        assert len(job_ids) == 2 and job_ids[0] == interrupted, job_ids
        assert records[interrupted]["State"] == "FAILED", records
        assert records[job_ids[1]]["State"] == "COMPLETED", records

    # The trainer's own records: one restart, from a checkpoint past step 0, and every step exactly once.
    rows = stage1_log_rows(workdir)
    assert [int(r["step"]) for r in rows] == list(range(1, STAGE1_STEPS + 1)), "steps repeated or skipped"
    starts = resumed_at(rows)
    assert len(starts) == 1 and STAGE1_CHECKPOINT_EVERY <= starts[0] < STAGE1_STEPS, (starts, interrupted_at)
    if interrupt == "stop_signal":  # SIGTERM: checkpoint after the current step, not the last periodic one
        assert starts[0] >= interrupted_at, (starts, interrupted_at)
    log = (workdir / STAGE1_LOG).read_text()
    assert f"at step {starts[0]}/{STAGE1_STEPS}" in log and "resumed" in log, log[-3000:]

    for path in STAGE1_FILES:
        assert filecmp.cmp(workdir / path, local_demo_stage1 / path, shallow=False), (
            f"{path}: the interrupted Slurm run differs from the uninterrupted local run")
    assert (workdir / STAGE1).stat().st_size > 0
