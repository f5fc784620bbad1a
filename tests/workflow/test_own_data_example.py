"""The own-data worked example (config/examples/own_data.yaml over config/demo.yaml) on a synthetic non-face
category: a plain folder of animal faces + a landmark CSV, through LEAD stage 1, stage 2, few-shot regression, one
GAN run and its metrics, into the example's tables. Tiny budgets (an extra config file) keep it to ~2 CPU-minutes."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lead_hsr.data.store import open_store
from lead_hsr.data.synthetic.own_folder import write_animal_folder
from lead_hsr.metrics.landmark_model import check as check_landmark_model

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "examples" / "own_data.yaml"
OWN_DATA = "demo_data/own/animals"  # where the example config looks, relative to the working directory
TINY = {  # budgets only: the stores, runs and tables are the example's
    "lead": {"stage1": {"common": {"batch": 8}, "byol": {"steps": 3}},
             "stage2": {"common": {"steps": 3, "batch": 4}},
             "regression": {"steps": 5, "fewshot_steps": 5}, "fewshot": {"seeds": [0]}},
    "hsr": {"start_kimg": 0.008, "train": {"batch": 4, "total_kimg": 0.016, "snapshot_kimg": 0.008},
            "metrics": {"fid": {"extractor": "random-cnn", "num_gen": 64},
                        "pr": {"extractor": "random-cnn", "num_gen": 64, "max_real": 64},
                        "ppl": {"num_samples": 16, "standin": "random"}}},
    "report": {"own_tables": str(REPO / "config" / "examples" / "own_data_tables.yaml")},
}


def snakemake(workdir: Path, *targets: str, configs=(), dry_run=False, timeout=1200) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--cores", "1", *(["-n"] if dry_run else []), "--configfile", *map(str, configs), "--quiet", "rules",
           "--", *targets]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO),
                               # the paper config's raw datasets are not here (tests/conftest.py)
                               "LEAD_HSR_SKIP_RAW_CHECK": os.environ.get("LEAD_HSR_SKIP_RAW_CHECK", "")})


def job_counts(stdout: str) -> dict[str, int]:
    rows = [line.split() for line in stdout.splitlines()]
    return {row[0]: int(row[1]) for row in rows if len(row) == 2 and row[1].isdigit() and row[0] != "total"}


@pytest.fixture
def workdir(tmp_path):
    write_animal_folder(tmp_path / OWN_DATA, count=160, annotated=136)  # 102 train / 34 test (few-shot up to 100)
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    return tmp_path


def test_paper_config_plus_own_data_adds_only_its_jobs(workdir):
    # the example's datasets added to the paper configuration, LEAD still learning from CelebA (lead.ssl_store)
    addon = yaml.safe_load(EXAMPLE.read_text())
    del addon["lead"]["ssl_store"], addon["results"], addon["work_dir"]
    (workdir / "addon.yaml").write_text(yaml.safe_dump(addon))
    paper = snakemake(workdir, dry_run=True, configs=[REPO / "config" / "config.yaml"])
    own = snakemake(workdir, dry_run=True, configs=[REPO / "config" / "config.yaml", workdir / "addon.yaml", workdir / "tiny.yaml"])
    assert paper.returncode == 0 and own.returncode == 0, paper.stderr[-2000:] + own.stderr[-2000:]
    before, after = job_counts(paper.stdout), job_counts(own.stdout)
    added = {rule: after.get(rule, 0) - before.get(rule, 0) for rule in after}
    assert added["prepare_dataset"] == 3 and added["data_figure"] == 3 and added["table"] == 2
    assert added["gan_metrics"] == 1 and added["train_gan_prefix"] == 1 and added["train_gan_baseline"] == 1
    # few-shot regression of two feature sources on the own dataset (stage-1 and LEAD features)
    assert added["regress_fewshot"] == 2
    assert {rule for rule, count in added.items() if count} == {"prepare_dataset", "data_figure", "table", "gan_metrics",
                                                               "train_gan_prefix", "train_gan_baseline",
                                                               "regress_fewshot"}
    only = snakemake(workdir, "own_data", dry_run=True, configs=[REPO / "config" / "config.yaml", EXAMPLE, workdir / "tiny.yaml"])
    assert only.returncode == 0, only.stderr[-2000:]
    assert job_counts(only.stdout) == {"prepare_dataset": 3, "data_figure": 3, "train_stage1": 1, "train_stage2": 1,
                                       "regress_fewshot": 2, "train_gan_prefix": 1, "train_gan_baseline": 1,
                                       "gan_metrics": 1, "table": 2,
                                       "own_data": 1}


@pytest.mark.slow
def test_worked_example_runs_through_lead_and_a_gan(workdir):
    out = snakemake(workdir, "own_data", "predictions",
                    configs=[REPO / "config" / "demo.yaml", EXAMPLE, workdir / "tiny.yaml"])
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-6000:]
    results = workdir / "results" / "own_example"
    ssl, annotated, gan = (open_store(results / "data" / "prepared" / s) for s in ("animals_ssl", "animals", "animals_gan"))
    assert len(ssl) == 24 and ssl.manifest["K"] == 0  # the unannotated images only (`exclude`)
    assert not set(ssl.table["file"]) & set(annotated.table["file"])
    assert annotated.manifest["counts"] == {"train": 102, "val": 0, "test": 34} and annotated.manifest["K"] == 4
    assert gan.images.shape == (160, 32, 32, 3)
    fewshot = results / "lead" / "regression" / "stage1~byol" / "stage2~lead" / "dim~64" / "proj~256" / "dataset~animals"
    for count in (1, 5, 10, 20, 50, 100):
        metrics = json.loads((fewshot / f"annotations~{count}" / "seed~0" / "metrics.json").read_text())
        assert metrics["n_train"] == count and metrics["n_test"] == 34
        assert np.isfinite(metrics["iod"]) and metrics["normaliser"].endswith("landmarks 0-1")
        assert np.load(fewshot / f"annotations~{count}" / "seed~0" / "predictions.npy").shape == (34, 4, 2)
    gan_metrics = json.loads((results / "hsr" / "metrics" / "dataset~animals" / "aug~ada" / "plr~on" / "hsr~none" /
                              "hsr_levels~none" / "metrics.json").read_text())
    assert all(np.isfinite(gan_metrics[key]) for key in ("fid", "precision", "recall", "ppl"))
    landmarks = pd.read_csv(results / "tables" / "own_animals_landmarks.csv", header=[0, 1], index_col=[0, 1])
    assert landmarks.shape == (2, 5) and "thesis" not in landmarks.columns.get_level_values(1)
    assert (results / "tables" / "own_animals_gan.md").read_text().count("SG2-ADA") == 1
    for store in ("animals_ssl", "animals", "animals_gan"):
        assert (results / "figures" / f"data_{store}.png").stat().st_size > 0
    # `predictions`: the example's 100-annotation LEAD model exported, then landmarks on every image of the folder
    model = (results / "lead" / "models" / fewshot.relative_to(results / "lead" / "regression") / "annotations~100" /
             "seed~0" / "model.pt")
    check = check_landmark_model(model, results / "data" / "prepared" / "animals")
    recorded = json.loads((fewshot / "annotations~100" / "seed~0" / "metrics.json").read_text())["iod"]
    assert check["recorded"] == recorded and check["error"] == pytest.approx(recorded, abs=1e-5)
    predicted = pd.read_csv(results / "lead" / "predictions" / "animals" / "predictions.csv")
    assert len(predicted) == 160 and list(predicted.columns) == ["file"] + [f"{a}_{i}" for i in range(1, 5) for a in "xy"]
    assert len(list((results / "lead" / "predictions" / "animals" / "overlays").rglob("*.png"))) == 160
