"""The default target draws the training curves once, after every result (dry run of the demo config)."""
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_all_plans_one_training_curves_job_after_every_training(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "--dag", "--directory", str(tmp_path), "--snakefile",
         str(REPO / "Snakefile"), "--configfile", str(REPO / "config" / "demo.yaml")],
        capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    rules = dict(re.findall(r'^\s*(\d+)\[label = "([^"\\]+)', out.stdout, re.M))
    curves = [node for node, rule in rules.items() if rule == "training_curves"]
    assert len(curves) == 1
    edges = re.findall(r"^\s*(\d+) -> (\d+)", out.stdout, re.M)
    ancestors, frontier = set(), {curves[0]}
    while frontier:
        frontier = {a for a, b in edges if b in frontier} - ancestors
        ancestors |= frontier
    trainers = {node for node, rule in rules.items() if rule.startswith("train_")}
    assert len(trainers) > 10 and trainers <= ancestors          # drawn after every training run has finished
    assert {rules[b] for a, b in edges if a == curves[0]} == {"all"}
