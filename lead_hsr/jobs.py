"""Job plumbing for workflow scripts. Send a job's stdout/stderr (including C-level output and tracebacks) to its Snakemake log file.

Every workflow script runs its library call inside `job_log(snakemake)`, so a failed job's log names the
error. Light module: no torch import.
"""
import contextlib
import os
import sys
import traceback


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
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)


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
