"""Running the project's Snakefile from tests: one command line for the demo and smoke slices."""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_snakemake(configfile: str, workdir: Path, *targets: str, options: tuple = (),
                  timeout: int = 2400) -> subprocess.CompletedProcess:
    """Snakemake on `config/<configfile>` in `workdir` (raw data, results and checkpoints all land there), on 2
    cores with one thread per job, as `make demo` / `make smoke` run it."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--cores", "2", "--configfile", str(REPO / "config" / configfile), *options, "--quiet", "rules",
           "--", *targets]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
