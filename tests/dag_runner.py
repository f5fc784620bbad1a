"""Running the project's Snakefile from tests: one command line and one session fixture body for the demo and smoke
slices (tests/integration/demo_dag.py, tests/smoke/smoke_slice.py), which differ only by their config file."""
import os
import subprocess
import sys
from functools import partial
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


def slice_runner(configfile: str, timeout: int):
    """`snakemake(workdir, *targets, options=(), timeout=timeout)` on `config/<configfile>`."""
    return partial(run_snakemake, configfile, timeout=timeout)


def built_slice(tmp_path_factory, reuse_env: str, name: str, snakemake, targets) -> Path:
    """A working directory where `snakemake(workdir, *targets)` completed: `$<reuse_env>` if set (Snakemake then only
    builds what is missing or outdated), else a fresh temporary one; the body of a session fixture."""
    reuse = os.environ.get(reuse_env)
    workdir = Path(reuse) if reuse else tmp_path_factory.mktemp(name)
    out = snakemake(workdir, *targets)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-8000:]
    return workdir
