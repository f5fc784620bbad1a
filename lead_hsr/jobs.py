"""Job plumbing for workflow scripts: a job's stdout/stderr (C-level output and tracebacks included) go to its
Snakemake log file, which ends with the job's own CPU count; a finished job's process ends without shutdown.

Every workflow script runs its library call inside `job_log(snakemake)`, then `end_job()`; a failed job's log names the
error. Light module: no torch import.
"""
import contextlib
import os
import resource
import sys
import traceback

# The last line every job writes to its log: its whole CPU time, read by bench/bench_demo_dag.py. Snakemake's
# benchmark files sample a job's CPU every 0.5 s for 30 samples, then every 30 s, so a job that runs 15-45 s is
# recorded as its first ~15 s; this line is the job's own count (getrusage), exact whatever its length.
JOB_CPU_PREFIX = "[lead_hsr.jobs] job CPU"


def use_job_threads(smk) -> None:
    """Let torch use exactly the threads Snakemake (or Slurm, through the profile) gave this job."""
    torch = sys.modules.get("torch")
    if torch is not None and getattr(smk, "threads", None):
        torch.set_num_threads(int(smk.threads))


@contextlib.contextmanager
def job_log(smk):
    """Redirect fd 1 and 2 to the rule's first log file (if any); log and re-raise errors."""
    use_job_threads(smk)
    log = smk.log[0] if len(smk.log) else None
    if log is None:
        yield
        return
    os.makedirs(os.path.dirname(log) or ".", exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log, "a") as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        try:
            yield
        except BaseException:
            traceback.print_exc()
            sys.stderr.flush()
            raise
        finally:
            sys.stdout.flush()
            os.write(1, f"{job_cpu_line()}\n".encode())  # fd 1 is the log, whatever sys.stdout is
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)


def end_job() -> None:
    """End a finished job's process now, skipping interpreter shutdown. Workflow scripts call it after their
    `with job_log(...)` block, so a failed job never reaches it and exits the usual way (traceback, status 1).

    Shutdown tears down every module and object, which with torch loaded costs CPU for nothing (measured here:
    0.48 CPU-s after `import torch`, 0.83 with torchvision; `make demo` 2,383 -> 2,310 CPU-s) and does
    nothing a finished job needs: its outputs are written, closed and renamed into place (lead_hsr.atomic), its
    TensorBoard writer is closed by the training loop, and its log is flushed below. Exit handlers do not run."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def job_cpu_line() -> str:
    """This process's CPU seconds since it started (imports included) plus its waited-for children's."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    user, system = own.ru_utime + children.ru_utime, own.ru_stime + children.ru_stime
    return (f"{JOB_CPU_PREFIX} {user + system:.2f} s (user {user:.2f}, sys {system:.2f}; this process and its "
            f"children), max RSS {own.ru_maxrss / 2**20:.2f} GiB")


def parse_job_cpu(log_text: str) -> float | None:
    """CPU seconds of the last job_cpu_line in a log (a retried job appends one per attempt), None if absent."""
    lines = [line for line in log_text.splitlines() if line.startswith(JOB_CPU_PREFIX)]
    return float(lines[-1][len(JOB_CPU_PREFIX):].split()[0]) if lines else None


# Stop this long before the scheduler's limit: enough to write a checkpoint (the smaller of the two).
RUNTIME_MARGIN_S = 300
RUNTIME_MARGIN_FRACTION = 0.1


def time_budget_from_runtime(runtime_minutes) -> float | None:
    """Wall-time budget for a trainer from the rule's `resources.runtime` (minutes), minus a checkpoint margin.

    None (no budget) when the rule sets no runtime. The trainer stops cleanly with a non-zero exit before the
    budget ends, so Snakemake's `retries` resume it instead of Slurm killing it mid-checkpoint.
    """
    if not runtime_minutes:
        return None
    seconds = float(runtime_minutes) * 60
    return seconds - min(RUNTIME_MARGIN_S, RUNTIME_MARGIN_FRACTION * seconds)
