"""The CI slice of the paper-scale smoke, run once per test session in a temporary directory.

Set LEAD_HSR_SMOKE_DIR to a directory to reuse it (Snakemake then only builds what is missing or outdated)."""
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from smoke_slice import SLICE_TARGETS, snakemake  # noqa: E402


@pytest.fixture(scope="session")
def smoke_dir(tmp_path_factory) -> Path:
    reuse = os.environ.get("LEAD_HSR_SMOKE_DIR")
    workdir = Path(reuse) if reuse else tmp_path_factory.mktemp("smoke")
    out = snakemake(workdir, *SLICE_TARGETS.values())
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-8000:]
    return workdir
