"""Paper shapes end to end: one job of every rule family of config/smoke.yaml, through a table and a figure."""
import json

import numpy as np
import pytest
import yaml

from smoke_slice import GAN_BASELINE, R, REPO, SLICE_TARGETS, STAGE1

pytestmark = pytest.mark.slow


def test_every_slice_target_was_built(smoke_dir):
    missing = [t for t in SLICE_TARGETS.values() if not (smoke_dir / t).is_file()]
    assert not missing


def test_networks_and_shapes_are_the_papers(smoke_dir):
    card = json.loads((smoke_dir / f"{R}/hsr/arch/paper256.json").read_text())
    assert card["G"] > 20_000_000 and card["D"] > 20_000_000      # paper256 G and D (~24M parameters each)
    options = json.loads((smoke_dir / f"{R}/lead/stage1/stage1~byol/weights.json").read_text())
    assert options["arch"] == "resnet50" and options["crop"] == 96
    predictions = np.load(smoke_dir / f"{R}/lead/regression/{STAGE1}/dataset~mafl/annotations~all/seed~0/"
                          "predictions.npy")
    assert predictions.shape[1:] == (5, 2)   # MAFL test images x 5 landmarks x (x, y)
    config = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    assert "geometry" not in config          # the smoke never changes the paper geometry


def test_standins_are_recorded_in_results(smoke_dir):
    metrics = json.loads((smoke_dir / f"{R}/hsr/metrics/{GAN_BASELINE}/metrics.json").read_text())
    assert "standin:random" in json.dumps(metrics["records"])
    assert metrics["note"].startswith("stand-ins:")


def test_every_job_wrote_a_benchmark(smoke_dir):
    benchmarks = list((smoke_dir / R / "benchmarks").rglob("*.tsv"))
    assert len(benchmarks) >= len(SLICE_TARGETS)
    for path in benchmarks:
        header, row = path.read_text().splitlines()[:2]
        assert "max_rss" in header and row
