"""HSR from a prefix (dry run of the paper config): HSR runs wait for the baseline's prefix job only."""
import re
import subprocess
import sys
from pathlib import Path

import yaml

from lead_hsr.gan.training import exported_snapshot_name, prefix_state_name

REPO = Path(__file__).resolve().parents[2]
RUN = "results/paper/hsr/train/dataset~ffhq1k/aug~ada/plr~on"
BASELINE = f"{RUN}/hsr~none/hsr_levels~none/network.pt"
HSR_RUNS = [f"{RUN}/hsr~vit_dino/hsr_levels~all/network.pt", f"{RUN}/hsr~resnet50/hsr_levels~high/network.pt"]


def dag_edges(tmp_path, *targets) -> set[tuple[str, str]]:
    """(parent rule, child rule) edges of the paper-config DAG for `targets` (snakemake --dag, no data needed)."""
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "--dag", "--directory", str(tmp_path), "--snakefile",
         str(REPO / "Snakefile"), "--configfile", str(REPO / "config" / "config.yaml"), "--", *targets],
        capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    rules = {node: rule for node, rule in re.findall(r'^\s*(\d+)\[label = "([^"\\]+)', out.stdout, re.M)}
    return {(rules[a], rules[b]) for a, b in re.findall(r"^\s*(\d+) -> (\d+)", out.stdout, re.M)}


def test_hsr_runs_depend_on_the_prefix_job_only(tmp_path):
    edges = dag_edges(tmp_path, BASELINE, *HSR_RUNS)
    assert ("train_gan_prefix", "train_gan_hsr") in edges
    assert ("train_gan_prefix", "train_gan_baseline") in edges
    assert ("train_gan_baseline", "train_gan_hsr") not in edges     # HSR and the rest of the baseline: side by side


def test_prefix_job_outputs_and_the_continued_baseline_options(tmp_path):
    """The file names the rules declare are the ones the trainer writes; the baseline continues the prefix."""
    start = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["hsr"]["start_kimg"]
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--printshellcmds", "--directory", str(tmp_path), "--snakefile",
         str(REPO / "Snakefile"), "--configfile", str(REPO / "config" / "config.yaml"), "--", HSR_RUNS[0]],
        capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"{RUN}/hsr~none/hsr_levels~none/{exported_snapshot_name(start)}" in out.stdout
    assert f"{RUN}/hsr~none/hsr_levels~none/{prefix_state_name(start)}" in out.stdout
    assert "train_gan_baseline" not in out.stdout                  # an HSR run never needs the full baseline


def job_resources(stdout: str) -> dict[str, str]:
    """rule -> its `resources:` line, from a dry run's job blocks."""
    blocks = re.split(r"\n(?=(?:localrule|rule) )", stdout)
    return {re.match(r"(?:localrule|rule) (\w+)", block).group(1): re.search(r"resources: (.*)", block).group(1)
            for block in blocks if re.match(r"(?:localrule|rule) \w+", block) and "resources:" in block}


def test_the_prefix_job_has_its_own_runtime_and_the_baselines_gpus(tmp_path):
    """resources.train_gan_prefix overrides only the runtime of resources.train_gan (paper config)."""
    paper = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["resources"]
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--directory", str(tmp_path), "--snakefile",
         str(REPO / "Snakefile"), "--configfile", str(REPO / "config" / "config.yaml"), "--", BASELINE],
        capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    resources = job_resources(out.stdout)
    prefix, baseline = resources["train_gan_prefix"], resources["train_gan_baseline"]
    assert f"runtime={paper['train_gan_prefix']['runtime']}" in prefix
    assert f"runtime={paper['train_gan']['runtime']}" in baseline
    assert paper["train_gan_prefix"]["runtime"] < paper["train_gan"]["runtime"]
    for key in ("gpu", "cpus_per_gpu", "mem_mb"):
        assert f"{key}={paper['train_gan'][key]}" in prefix and f"{key}={paper['train_gan'][key]}" in baseline
