"""The demo DAG, run once per test session in a temporary directory; tests assert on what it produced."""
from pathlib import Path

import pytest

from demo_dag import snakemake


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    """A working directory where the whole demo DAG (`all`) completed."""
    workdir = tmp_path_factory.mktemp("demo")
    out = snakemake(workdir, "all")
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-8000:]
    return workdir
