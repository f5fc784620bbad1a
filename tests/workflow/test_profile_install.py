"""`snakemake --profile slurm`, as users type it, works after `make slurm-profile` (README's cluster set-up)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


@pytest.fixture
def config_home(tmp_path):
    """A per-user config directory of our own (Snakemake reads $XDG_CONFIG_HOME/snakemake on Linux)."""
    if Path("/etc/xdg/snakemake/slurm").exists():
        pytest.skip("a site-wide 'slurm' profile exists on this machine and would answer --profile slurm")
    return {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}


def profile_dry_run(env):
    return subprocess.run(SNAKEMAKE + ["--profile", "slurm", "-n"], capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=300)


def test_make_slurm_profile_links_the_profile_where_snakemake_looks(config_home, tmp_path):
    before = profile_dry_run(config_home)
    assert before.returncode != 0 and "no profile.yaml" in before.stderr  # what users met before the set-up
    install = subprocess.run(["make", "-o", "setup", "slurm-profile"], capture_output=True, text=True, cwd=REPO,
                             env=config_home, timeout=120)  # -o setup: never touch the shared venv here
    assert install.returncode == 0, install.stderr
    link = tmp_path / "config" / "snakemake" / "slurm"
    assert link.is_symlink() and link.resolve() == (REPO / "profiles" / "slurm").resolve()
    out = profile_dry_run(config_home)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Using profile slurm" in out.stdout + out.stderr
    assert "train_gan_baseline" in out.stdout and "This was a dry-run" in out.stdout  # the paper DAG, planned
    again = subprocess.run(["make", "-o", "setup", "slurm-profile"], capture_output=True, text=True, cwd=REPO,
                           env=config_home, timeout=120)
    assert again.returncode == 0 and link.resolve() == (REPO / "profiles" / "slurm").resolve()  # idempotent


def test_make_slurm_profile_never_replaces_another_profile(config_home, tmp_path):
    other = tmp_path / "config" / "snakemake" / "slurm"
    other.mkdir(parents=True)
    (other / "config.yaml").write_text("executor: slurm\n")
    install = subprocess.run(["make", "-o", "setup", "slurm-profile"], capture_output=True, text=True, cwd=REPO,
                             env=config_home, timeout=120)
    assert install.returncode != 0 and "move it away" in install.stderr
    assert (other / "config.yaml").read_text() == "executor: slurm\n" and not other.is_symlink()
