"""The CI slice of the demo DAG, run once per test session in a temporary directory; tests assert on it.

Set LEAD_HSR_DEMO_DIR to a directory to reuse it (Snakemake then only builds what is missing or outdated).
"""
import os
from pathlib import Path

import pytest

from demo_dag import CI_TARGETS, snakemake


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    """A working directory where the CI slice of the demo DAG completed."""
    reuse = os.environ.get("LEAD_HSR_DEMO_DIR")
    workdir = Path(reuse) if reuse else tmp_path_factory.mktemp("demo")
    out = snakemake(workdir, *CI_TARGETS)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-8000:]
    return workdir
