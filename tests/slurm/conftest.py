"""Session fixture for the Slurm tests: a real single-node Slurm on localhost (scripts/slurm/start.sh).

Needs root on Debian 12 (start.sh installs slurm-wlm, munge, slurmdbd and MariaDB when missing). Deselect with
`-m "not slurm"` on machines where that is impossible. A cluster already running is reused and left running.
"""
import os

import pytest

from slurm_helpers import START, STOP, controller_answers, live_daemon_pids, run


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
