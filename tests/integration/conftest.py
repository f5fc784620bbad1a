"""The CI slice of the demo DAG, run once per test session in a temporary directory; tests assert on it.

Set LEAD_HSR_DEMO_DIR to a directory to reuse it (Snakemake then only builds what is missing or outdated).
"""
from pathlib import Path

import pytest
from dag_runner import built_slice

from demo_dag import CI_TARGETS, snakemake


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    """A working directory where the CI slice of the demo DAG completed."""
    return built_slice(tmp_path_factory, "LEAD_HSR_DEMO_DIR", "demo", snakemake, CI_TARGETS)
