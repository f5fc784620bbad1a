"""LEAD on the demo data: learning shows in the measured numbers (DESIGN §4.3, issue 'LEAD eval')."""
import json

import numpy as np
import pytest
import yaml

from lead_hsr.lead.dense_model import save_dense_weights
from lead_hsr.lead.stage2 import DEFAULTS as STAGE2_DEFAULTS, untrained_model
from lead_hsr.metrics.diagnostics import stage1_report
from lead_hsr.metrics.landmarks import matching_run, regression_runs

from demo_dag import (DEMO_RESULTS, HYPERCOLUMN_RUNS, LEAD_MATCHING, LEAD_REGRESSION_RUNS, LEAD_STAGE2, MATCHING_RUNS,
                      REPO, snakemake)


def load(demo_dir, path):
    return json.loads((demo_dir / path).read_text())


def mean_iod(demo_dir, stage1, key="iod"):
    """Mean over the four datasets (per-run spread is a few IOD points, DESIGN §4.4)."""
    return np.mean([load(demo_dir, p)[key] for p in HYPERCOLUMN_RUNS if f"stage1~{stage1}/" in p])


def test_hypercolumn_regression_beats_the_mean_shape(demo_dir):
    mean_shape = mean_iod(demo_dir, "byol", "iod_mean_shape")
    assert mean_iod(demo_dir, "byol") < mean_shape
    assert mean_iod(demo_dir, "random") < mean_shape


def test_lead_regression_beats_the_mean_shape(demo_dir):
    runs = [load(demo_dir, path) for path in LEAD_REGRESSION_RUNS]
    assert np.mean([r["iod"] for r in runs]) < np.mean([r["iod_mean_shape"] for r in runs]), runs


# The two orders below are measured NOT to hold at demo budgets (open in the LEAD issues); strict xfails, so a
# change that makes them true fails here until the xfail is removed. On these aligned synthetic faces random
# ResNet features are a strong landmark basis (copying the source position matches at 7.1 px/70).
@pytest.mark.xfail(reason="measured at demo budgets: BYOL hypercolumns mean IOD 12.24 vs random init 10.55 "
                          "(matching 17.8 vs 14.5 px/70; results/demo/tables/orderings.md). Not an implementation "
                          "bug: byol-pytorch trained the same way matches at 19.3 px. Short BYOL runs improve layer4 "
                          "(8.2 vs 11.2 px alone) but "
                          "collapse the feature rank (layer4 effective rank 13 of 512 vs 123 at random init; "
                          "python -m lead_hsr.metrics.diagnostics)", strict=True)
def test_learned_hypercolumns_beat_random_init(demo_dir):
    assert mean_iod(demo_dir, "byol") < mean_iod(demo_dir, "random")


@pytest.mark.xfail(reason="measured at demo budgets: 64-d LEAD features (40 stage-2 steps) regress at mean IOD "
                          "14.54, random-init 960-d hypercolumns at 10.55 (mean shape 15.97; the LEAD network "
                          "untrained: 17.10)", strict=True)
def test_lead_regression_beats_random_init_features(demo_dir):
    lead = np.mean([load(demo_dir, path)["iod"] for path in LEAD_REGRESSION_RUNS])
    assert lead < mean_iod(demo_dir, "random") < mean_iod(demo_dir, "random", "iod_mean_shape")


def test_matching_same_identity_is_easier_than_different_identity(demo_dir):
    for path in MATCHING_RUNS:
        result = load(demo_dir, path)
        assert 0 <= result["matching_same"] < result["matching_different"], (path, result)


def paper_and_demo_config() -> tuple[dict, dict]:
    return tuple(yaml.safe_load((REPO / "config" / name).read_text()) for name in ("config.yaml", "demo.yaml"))


def demo_options(section: str) -> dict:
    """The options rule match_landmarks / regress_all passes (config.yaml with demo.yaml merged over it)."""
    paper, demo = paper_and_demo_config()
    return {**paper["lead"][section], **demo["lead"][section], "crop": demo["geometry"]["crop"], "seed": paper["seed"]}


def untrained_lead_weights(demo_dir, out_dir):
    """The LEAD stage-2 network untrained: the same FPN, head and seed, encoder at random init (stage1~random),
    BatchNorm statistics of the stage-2 training data (a fair random-init baseline, DESIGN §4.4)."""
    results = demo_dir / DEMO_RESULTS
    recorded = json.loads((results / "lead" / "stage2" / LEAD_STAGE2 / "weights.json").read_text())
    options = {key: value for key, value in recorded.items() if key in STAGE2_DEFAULTS}  # drop run records
    model = untrained_model(results / "lead/stage1/stage1~random/weights.pt", options,
                            store_path=results / "data/prepared" / paper_and_demo_config()[0]["lead"]["ssl_store"])
    return save_dense_weights(out_dir / "untrained.pt", model.kind, model.arch, model.config, model)


def test_lead_stage2_matches_better_than_the_same_network_untrained(demo_dir, tmp_path):
    """Learning happened in stage 2 (matching)."""
    results = demo_dir / DEMO_RESULTS
    trained = load(demo_dir, LEAD_MATCHING)
    untrained = matching_run(untrained_lead_weights(demo_dir, tmp_path), results / "data/prepared/mafl",
                             tmp_path / "untrained.json", demo_options("matching"))
    print(f"different-identity matching (px/70): LEAD stage 2 {trained['matching_different']:.2f}, "
          f"untrained {untrained['matching_different']:.2f}")
    assert trained["pairs"] == untrained["pairs"]
    assert trained["matching_different"] < 0.8 * untrained["matching_different"], (trained, untrained)


def test_lead_regression_beats_the_same_network_untrained(demo_dir, tmp_path):
    """Learning happened in stage 2 (regression): the same regressor on the untrained network's 64-d features."""
    results = demo_dir / DEMO_RESULTS
    weights, datasets = untrained_lead_weights(demo_dir, tmp_path), paper_and_demo_config()[0]["lead"]["datasets"]
    untrained = []
    for dataset in ("mafl", "aflw_m", "aflw_r", "300w"):
        store, out = datasets[dataset]["store"], tmp_path / f"{dataset}.json"  # IOD eyes are keyed by store
        regression_runs(weights, results / "data/prepared" / store, store, {("all", 0): out},
                        demo_options("regression"))
        untrained.append(json.loads(out.read_text())["iod"])
    lead = [load(demo_dir, path)["iod"] for path in LEAD_REGRESSION_RUNS]
    print(f"mean IOD over the 4 datasets: LEAD {np.mean(lead):.2f} {np.round(lead, 2)}, "
          f"untrained {np.mean(untrained):.2f} {np.round(untrained, 2)}")
    assert np.mean(lead) < 0.9 * np.mean(untrained), (lead, untrained)


def test_stage1_deepest_stage_matches_better_than_at_random_init(demo_dir):
    """Stage 1 learns: BYOL's deepest stage (layer4 alone) matches across identities better than layer4 of the
    same network at random init. (The whole hypercolumn does not, an xfail above: short BYOL runs collapse the
    rank of every stage, lead_hsr.metrics.diagnostics.)"""
    results = demo_dir / DEMO_RESULTS
    options = {**demo_options("matching"), "device": "cpu"}
    deepest = {}
    for stage1 in ("byol", "random"):
        rows = stage1_report(results / f"lead/stage1/stage1~{stage1}/weights.pt", results / "data/prepared/mafl",
                             options)
        deepest[stage1] = next(row for row in rows if row["stages"] == "layer4")
    print(f"layer4 different-identity matching (px): BYOL {deepest['byol']['matching_different']:.2f}, "
          f"random init {deepest['random']['matching_different']:.2f}")
    assert deepest["byol"]["matching_different"] < deepest["random"]["matching_different"], deepest


def test_lead_stage2_matches_better_than_its_stage1_teacher(demo_dir):
    lead = load(demo_dir, LEAD_MATCHING)["matching_different"]
    teacher = load(demo_dir, next(p for p in MATCHING_RUNS if "stage1~byol/" in p))["matching_different"]
    assert lead < teacher, (lead, teacher)


def test_table_3_2_has_ours_beside_the_thesis(demo_dir):
    text = (demo_dir / DEMO_RESULTS / "tables" / "table_3.2.md").read_text()
    assert "LEAD (ours)" in text and "2.39" in text  # the thesis's MAFL number beside ours
    csv = (demo_dir / DEMO_RESULTS / "tables" / "table_3.2.csv").read_text()
    assert csv.count("\n") >= 17


def test_rebuilding_one_table_touches_nothing_else(demo_dir):
    table = f"{DEMO_RESULTS}/tables/table_3.2.md"
    out = snakemake(demo_dir, table, options=("--forcerun", "table", "-n"))
    assert out.returncode == 0, out.stderr
    jobs = [line.split()[0] for line in out.stdout.splitlines() if line.strip().startswith(("table ", "total "))]
    assert "table" in jobs
    assert "train_stage1" not in out.stdout and "regress_all" not in out.stdout
