"""The GPU budget of a real configuration: every modelled rule family of config/demo.yaml is costed by running
its own step code on the meta device (a step that reads a tensor's value breaks here first), and the command
line answers as `python -m lead_hsr.budget`."""
import subprocess
import sys
from pathlib import Path

from lead_hsr.budget.costs import Coster
from lead_hsr.budget.dry_run import load_config, plan
from lead_hsr.budget.estimate import FAMILIES

REPO = Path(__file__).resolve().parents[2]


def test_every_modelled_family_of_the_demo_config_is_costed():
    demo = REPO / "config" / "demo.yaml"
    jobs, coster = plan(demo), Coster(load_config(demo))
    for family in FAMILIES:   # the first job of each family that trains or evaluates (stage 1: not random init)
        costs = (coster.cost(job) for job in jobs if job.rule == family)
        cost = next((cost for cost in costs if cost is not None), None)
        assert cost is not None and cost.flops > 0 and cost.peak_bytes > 0 and cost.gpus >= 1, (family, cost)
    assert coster.cost(next(job for job in jobs if job.rule == "table")) is None   # CPU jobs: not modelled


def test_python_dash_m():
    out = subprocess.run([sys.executable, "-m", "lead_hsr.budget", "--help"], capture_output=True, text=True,
                         cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: python -m lead_hsr.budget") and "--utilisation" in out.stdout
