"""scripts/slurm/start.sh and stop.sh: a second start finds the cluster running and leaves it alone; stop ends
exactly the daemons named in the pid files and removes the config link; start brings everything back."""
import time
from pathlib import Path

import pytest

from slurm_helpers import DAEMONS, SLURM_CONF, START, STOP, live_daemon_pids, run

pytestmark = pytest.mark.slurm

SYSTEM_CONF = Path("/etc/slurm/slurm.conf")


def node_state() -> str:
    return run(["sinfo", "-h", "-N", "-n", "localhost", "-o", "%T"], timeout=30).stdout.strip()


def timed(script) -> tuple[float, str]:
    began = time.monotonic()
    result = run(["bash", script], timeout=900)
    assert result.returncode == 0, f"{script} failed:\n{result.stdout}\n{result.stderr}"
    return time.monotonic() - began, result.stdout


def test_start_is_idempotent_and_stop_ends_exactly_its_daemons(slurm_cluster):
    before = live_daemon_pids()
    assert sorted(before) == sorted(DAEMONS)

    seconds, _ = timed(START)
    assert live_daemon_pids() == before, "a second start restarted running daemons"
    assert seconds < 10 and node_state() == "idle"

    _, stopped = timed(STOP)
    assert live_daemon_pids() == {}
    for name, pid in before.items():
        assert not Path(f"/proc/{pid}").exists() or name not in Path(f"/proc/{pid}/comm").read_text()
        assert f"stopping {name} (pid {pid})" in stopped
    assert not SYSTEM_CONF.is_symlink()

    seconds, _ = timed(START)  # leave the cluster as the session fixture expects it
    assert sorted(live_daemon_pids()) == sorted(DAEMONS)
    assert SYSTEM_CONF.resolve() == SLURM_CONF.resolve() and node_state() == "idle"
    print(f"restart from stopped: {seconds:.1f} s")
