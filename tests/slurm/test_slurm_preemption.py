"""A training job interrupted mid-run on Slurm continues from its checkpoint and ends with exactly the result of
an uninterrupted run, both ways a cluster interrupts jobs:
- preemption with requeue (`scontrol requeue`, what PreemptMode=REQUEUE does; profiles/slurm submits with
  --requeue): Slurm reruns the same job id;
- a stop signal (`scancel --signal=TERM`, as sent before preemption or at the time limit): the job exits
  non-zero and Snakemake resubmits it (`retries` in profiles/slurm).
The trainer is a stand-in: a counter that checkpoints atomically after every step."""
import json
import subprocess
import sys
import time

import pytest

from slurm_helpers import (SLURM_PROFILE, SNAKEMAKE_TIMEOUT_S, SnakemakeRun, failure_report, run, sacct, slurm_env,
                           snakemake_command, write_workflow)

pytestmark = pytest.mark.slurm

STEPS = 12
INTERRUPT_AFTER_STEP = 3

# State = (step, value); value follows a 64-bit LCG mixed with the step, so a skipped or repeated step changes
# the result. Checkpoint written to a temp file then renamed (atomic). Every start is logged with its step.
COUNTER_PY = '''
import json, os, signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop cleanly, non-zero: the checkpoint is on disk
work, out, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
step_seconds = float(os.environ.get("COUNTER_STEP_SECONDS", "1"))
os.makedirs(work, exist_ok=True)
ckpt = os.path.join(work, "ckpt.json")
state = json.load(open(ckpt)) if os.path.exists(ckpt) else {"step": 0, "value": 1}
with open(os.path.join(work, "starts.log"), "a") as f:
    f.write(f"{state['step']}\\n")
while state["step"] < steps:
    time.sleep(step_seconds)
    state["value"] = (state["value"] * 6364136223846793005 + 1442695040888963407 + state["step"]) % 2**64
    state["step"] += 1
    with open(ckpt + ".tmp", "w") as f:
        json.dump(state, f)
    os.replace(ckpt + ".tmp", ckpt)
json.dump(state, open(out, "w"))
'''

# The checkpoint lives in an undeclared work dir, so Snakemake does not delete it before the retry.
SNAKEFILE = f'''
import sys
PY = sys.executable

rule train_stage1:
    output: "results/stage1.json"
    shell: "{{PY}} counter.py work/stage1 {{output}} {STEPS}"
'''


def checkpoint_step(workdir) -> int:
    ckpt = workdir / "work" / "stage1" / "ckpt.json"
    try:
        return json.loads(ckpt.read_text())["step"]
    except (FileNotFoundError, json.JSONDecodeError):
        return 0


def running_job_of_rule(rule) -> str | None:
    """Slurm job id of the running job whose comment names `rule` (the executor writes rule_<name>)."""
    lines = run(["squeue", "-h", "-t", "R", "-o", "%i %k"], timeout=30).stdout.split("\n")
    ids = [line.split()[0] for line in lines if line.strip().endswith(f"rule_{rule}")]
    return ids[0] if ids else None


def wait_for_checkpointed_job(workdir, min_step, timeout_s=180) -> str:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        job = running_job_of_rule("train_stage1")
        if job and checkpoint_step(workdir) >= min_step:
            return job
        time.sleep(0.3)
    pytest.fail(f"no running job with a checkpoint at step {min_step} within {timeout_s} s")


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


def uninterrupted_result(tmp_path) -> dict:
    out = tmp_path / "reference.json"
    subprocess.run([sys.executable, "-c", COUNTER_PY, str(tmp_path / "reference_work"), str(out), str(STEPS)],
                   env={"COUNTER_STEP_SECONDS": "0"}, check=True, timeout=60)
    return json.loads(out.read_text())


@pytest.mark.parametrize("interrupt", ["requeue", "stop_signal"])
def test_interrupted_job_resumes_from_checkpoint(slurm_cluster, tmp_path, interrupt):
    workdir = write_workflow(tmp_path / "preempt", SNAKEFILE, **{"counter.py": COUNTER_PY})
    proc = subprocess.Popen([str(c) for c in snakemake_command(workdir, SLURM_PROFILE)], env=slurm_env(),
                            cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        interrupted = wait_for_checkpointed_job(workdir, INTERRUPT_AFTER_STEP)
        {"requeue": preempt_with_requeue, "stop_signal": send_stop_signal}[interrupt](interrupted)
    finally:
        output, _ = proc.communicate(timeout=SNAKEMAKE_TIMEOUT_S + 30)
    result = SnakemakeRun(proc.returncode, output)
    assert result.returncode == 0, failure_report(result, workdir)

    starts = [int(s) for s in (workdir / "work" / "stage1" / "starts.log").read_text().split()]
    assert len(starts) == 2 and starts[0] == 0, starts
    assert INTERRUPT_AFTER_STEP <= starts[1] < STEPS, f"second run did not resume: {starts}"

    job_ids = result.slurm_job_ids
    records = sacct(job_ids)
    if interrupt == "requeue":  # Slurm reran the same job
        assert job_ids == [interrupted] and records[interrupted]["State"] == "COMPLETED", records
    else:  # the job failed and Snakemake submitted a new one
        assert len(job_ids) == 2 and job_ids[0] == interrupted
        assert records[interrupted]["State"] == "FAILED", records
        assert records[job_ids[1]]["State"] == "COMPLETED", records

    final = json.loads((workdir / "results" / "stage1.json").read_text())
    assert final == uninterrupted_result(tmp_path)
    assert final["step"] == STEPS
