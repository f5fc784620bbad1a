"""Session fixture for the Slurm tests: a real single-node Slurm on localhost (scripts/slurm/start.sh).

Needs root on Debian 12 (start.sh installs slurm-wlm, munge, slurmdbd and MariaDB when missing). Deselect with
`-m "not slurm"` on machines where that is impossible. A cluster already running is reused and left running.
"""
import os

import pytest

from demo_slice import OUTPUTS, STAGE1_FILES, TABLE_FILES, prepare_workdir, run_local
from slurm_helpers import START, STOP, controller_answers, failure_report, live_daemon_pids, run


@pytest.fixture(scope="session")
def slurm_cluster():
    """A running single-node Slurm for the session; stopped afterwards if this session started it."""
    if os.geteuid() != 0:
        pytest.fail("tests/slurm start a local Slurm and need root; deselect them with -m 'not slurm'")
    started_here = not controller_answers()
    start = run(["bash", START], timeout=900)
    assert start.returncode == 0, f"scripts/slurm/start.sh failed:\n{start.stdout}\n{start.stderr}"
    yield start.stdout
    if started_here:
        stop = run(["bash", STOP], timeout=300)
        assert stop.returncode == 0, f"scripts/slurm/stop.sh failed:\n{stop.stdout}\n{stop.stderr}"
        assert live_daemon_pids() == {}, "stop.sh left daemons running"


@pytest.fixture(scope="session")
def local_demo_stage1(tmp_path_factory):
    """Data preparation and LEAD stage 1 of the demo slice (demo_slice.py), built once with profiles/local,
    uninterrupted: the reference the preemption tests compare with, and the prepared data they start from."""
    workdir = prepare_workdir(tmp_path_factory.mktemp("local_demo_slice"))
    result = run_local(workdir, *STAGE1_FILES)
    assert result.returncode == 0, failure_report(result, workdir)
    return workdir


@pytest.fixture(scope="session")
def local_demo_slice(local_demo_stage1):
    """The whole demo slice, up to its table, built with profiles/local in the same directory (data and stage 1
    are reused): the reference every output of the Slurm run of the slice must equal byte for byte."""
    workdir = local_demo_stage1
    result = run_local(workdir, TABLE_FILES[0])
    assert result.returncode == 0, failure_report(result, workdir)
    missing = [path for path in OUTPUTS if not (workdir / path).is_file()]
    assert not missing, f"the local run did not build {missing}"
    return workdir
