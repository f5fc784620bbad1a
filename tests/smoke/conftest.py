"""The CI slice of the paper-scale smoke, run once per test session in a temporary directory.

Set LEAD_HSR_SMOKE_DIR to a directory to reuse it (Snakemake then only builds what is missing or outdated)."""
from pathlib import Path

import pytest
from dag_runner import built_slice

from smoke_slice import SLICE_TARGETS, snakemake


@pytest.fixture(scope="session")
def smoke_dir(tmp_path_factory) -> Path:
    """A working directory where the CI slice of the smoke DAG completed."""
    return built_slice(tmp_path_factory, "LEAD_HSR_SMOKE_DIR", "smoke", snakemake, SLICE_TARGETS.values())
