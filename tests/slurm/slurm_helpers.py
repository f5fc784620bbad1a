"""Helpers for the Slurm tests: run Snakemake through profiles/slurm under `timeout` and read back what Slurm
did (job ids, sbatch calls, accounting)."""
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SLURM_PROFILE = REPO / "profiles" / "slurm"
LOCAL_PROFILE = REPO / "profiles" / "local"
START = REPO / "scripts" / "slurm" / "start.sh"
STOP = REPO / "scripts" / "slurm" / "stop.sh"
STATE = Path(os.environ.get("LEAD_HSR_SLURM_STATE", "/tmp/lead-hsr-slurm"))
SLURM_CONF = STATE / "etc" / "slurm.conf"
DAEMONS = ("munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd")
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
# A Snakemake that lost its jobs waits forever and ignores SIGTERM: always bound it, then SIGKILL.
SNAKEMAKE_TIMEOUT_S = 300


def slurm_env() -> dict:
    """The test's environment for Slurm commands: our cluster, no user account/partition defaults."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SBATCH_", "SLURM_"))}
    env["SLURM_CONF"] = str(SLURM_CONF)
    return env


def run(cmd, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], env=slurm_env(), capture_output=True, text=True, **kwargs)


def controller_answers() -> bool:
    return SLURM_CONF.exists() and "is UP" in run(["scontrol", "ping"], timeout=30).stdout


def live_daemon_pids() -> dict:
    """Daemons of our cluster that are alive, by name, from start.sh's pid files."""
    alive = {}
    for name in DAEMONS:
        pid_file = STATE / "run" / f"{name}.pid"
        if pid_file.exists() and pid_file.read_text().strip():
            pid = int(pid_file.read_text())
            comm = Path(f"/proc/{pid}/comm")
            if comm.exists() and comm.read_text().strip() == name:
                alive[name] = pid
    return alive


@dataclass
class SnakemakeRun:
    returncode: int
    output: str  # stdout + stderr

    @property
    def slurm_job_ids(self) -> list[str]:
        """Slurm job ids of every submission, in submission order (from Snakemake's own log lines)."""
        return re.findall(r"submitted with SLURM jobid (\d+)", self.output)

    def sbatch_call(self, rule: str) -> str:
        """The sbatch command line submitted for `rule` (needs --verbose)."""
        calls = [line for line in self.output.splitlines()
                 if line.startswith("sbatch call:") and f"--comment rule_{rule} " in line]
        assert len(calls) == 1, f"expected one sbatch call for rule {rule}, found {len(calls)}"
        return calls[0]


def snakemake_command(workdir: Path, profile: Path, *args, snakefile: Path | None = None,
                      timeout_s: int = SNAKEMAKE_TIMEOUT_S) -> list[str]:
    return ["timeout", "-k", "10", str(timeout_s), SNAKEMAKE, "--profile", profile,
            "--snakefile", snakefile or workdir / "Snakefile", "--directory", workdir, *args]


def run_snakemake(workdir: Path, *args, profile: Path = SLURM_PROFILE, snakefile: Path | None = None,
                  timeout_s: int = SNAKEMAKE_TIMEOUT_S) -> SnakemakeRun:
    command = snakemake_command(workdir, profile, *args, snakefile=snakefile, timeout_s=timeout_s)
    proc = subprocess.run([str(c) for c in command], env=slurm_env(),
                          cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return SnakemakeRun(proc.returncode, proc.stdout)


def sacct(job_ids) -> dict:
    """Accounting records by job id: {id: {"State", "Comment", "AllocTRES"}} (allocation lines only)."""
    fields = ["JobID", "State", "Comment", "AllocTRES"]
    out = run(["sacct", "-X", "-n", "-P", "-j", ",".join(job_ids), "-o", ",".join(fields)], timeout=60)
    assert out.returncode == 0, out.stderr
    rows = [dict(zip(fields, line.split("|"))) for line in out.stdout.splitlines() if line.strip()]
    return {row["JobID"]: row for row in rows}


def write_workflow(workdir: Path, snakefile: str, **files: str) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "Snakefile").write_text(snakefile)
    for name, text in files.items():
        (workdir / name).write_text(text)
    return workdir


def failure_report(result: SnakemakeRun, workdir: Path) -> str:
    """Snakemake's output, then the Slurm job logs (logs/slurm) and the rules' own logs (results/*/logs)."""
    paths = sorted((workdir / "logs").rglob("*.log")) + sorted(workdir.glob("results/*/logs/**/*.log"))
    logs = "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-3000:]}" for p in paths[-20:])
    return f"snakemake exited {result.returncode}\n{result.output[-6000:]}\n{logs}"
