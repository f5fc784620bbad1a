"""The project's own workflow (Snakefile, config/demo.yaml) through profiles/slurm: synthetic raw data, two
prepared stores, a LEAD stage-1 network (the random-init baseline, BatchNorm statistics recomputed on the SSL
store) and a landmark regression run are built by sbatch jobs recorded in the accounting, and every output is
byte-identical to the one a local run builds. Not yet here: a table (its smallest one needs trained stage-2 runs,
minutes of CPU; the table rule itself runs through Slurm in test_slurm_dag.py)."""
import filecmp

import pytest
import yaml

from slurm_helpers import LOCAL_PROFILE, REPO, failure_report, run_snakemake, sacct

pytestmark = pytest.mark.slurm

DEMO_CONFIG = REPO / "config" / "demo.yaml"
STORE = "aflw_r"  # a small demo store with a single raw source (generate_synthetic -> prepare_dataset)
STORE_FILES = ("images.npy", "landmarks.npy", "table.csv", "manifest.json")


def results() -> str:
    return yaml.safe_load(DEMO_CONFIG.read_text())["results"]


def store_path() -> str:
    return f"{results()}/data/prepared/{STORE}"


def regression_path() -> str:
    return (f"{results()}/lead/regression/stage1~random/stage2~none/dim~3840/proj~none/dataset~{STORE}/"
            "annotations~all/seed~0/metrics.json")


def stage1_path() -> str:
    return f"{results()}/lead/stage1/stage1~random/weights.pt"


def run_demo(workdir, profile=None):
    workdir.mkdir(parents=True)
    args = [store_path(), regression_path(), "--configfile", DEMO_CONFIG]  # --configfile: keep it last
    return run_snakemake(workdir, *args, snakefile=REPO / "Snakefile", **({"profile": profile} if profile else {}))


def test_demo_data_preparation_on_slurm_equals_local(slurm_cluster, tmp_path):
    on_slurm = tmp_path / "slurm"
    result = run_demo(on_slurm)
    assert result.returncode == 0, failure_report(result, on_slurm)

    records = sacct(result.slurm_job_ids)
    assert all(r["State"] == "COMPLETED" for r in records.values()), records
    rules = sorted(r["Comment"].split("_wildcards_")[0] for r in records.values())  # rule_<name>[_wildcards_..]
    # synthetic celeba, mafl, aflw_r; stores celeba_ssl, aflw_r; the stage-1 network; the regression run
    assert rules == sorted(["rule_generate_synthetic"] * 3 + ["rule_prepare_dataset"] * 2
                           + ["rule_train_stage1", "rule_regress_all"]), (rules, result.output[-4000:])

    local = tmp_path / "local"
    local_result = run_demo(local, profile=LOCAL_PROFILE)
    assert local_result.returncode == 0, failure_report(local_result, local)
    for name in STORE_FILES:
        a, b = on_slurm / store_path() / name, local / store_path() / name
        assert filecmp.cmp(a, b, shallow=False), f"{name} differs between the Slurm and the local run"
    for path in (stage1_path(), regression_path()):
        assert filecmp.cmp(on_slurm / path, local / path, shallow=False), f"{path} differs (Slurm vs local)"
