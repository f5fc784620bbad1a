"""The project's own workflow (Snakefile, config/demo.yaml) through profiles/slurm: the synthetic raw data and
one prepared store are built by sbatch jobs recorded in the accounting, and the store is byte-identical to the
one a local run builds. Extend TARGETS with one LEAD stage, one regressor run and one table as those rules land."""
import filecmp

import pytest
import yaml

from slurm_helpers import LOCAL_PROFILE, REPO, failure_report, run_snakemake, sacct

pytestmark = pytest.mark.slurm

DEMO_CONFIG = REPO / "config" / "demo.yaml"
STORE = "aflw_r"  # a small demo store with a single raw source (generate_synthetic -> prepare_dataset)
STORE_FILES = ("images.npy", "landmarks.npy", "table.csv", "manifest.json")


def store_path() -> str:
    return f"{yaml.safe_load(DEMO_CONFIG.read_text())['results']}/data/prepared/{STORE}"


def run_demo(workdir, profile=None):
    workdir.mkdir(parents=True)
    args = [store_path(), "--configfile", DEMO_CONFIG]  # --configfile takes several values: keep it last
    return run_snakemake(workdir, *args, snakefile=REPO / "Snakefile", **({"profile": profile} if profile else {}))


def test_demo_data_preparation_on_slurm_equals_local(slurm_cluster, tmp_path):
    on_slurm = tmp_path / "slurm"
    result = run_demo(on_slurm)
    assert result.returncode == 0, failure_report(result, on_slurm)

    records = sacct(result.slurm_job_ids)
    assert len(records) == 2, result.output[-4000:]
    assert all(r["State"] == "COMPLETED" for r in records.values()), records
    comments = sorted(r["Comment"] for r in records.values())  # rule_<name>[_wildcards_<values>]
    assert comments[0].startswith("rule_generate_synthetic") and comments[1].startswith("rule_prepare_dataset")

    local = tmp_path / "local"
    local_result = run_demo(local, profile=LOCAL_PROFILE)
    assert local_result.returncode == 0, failure_report(local_result, local)
    for name in STORE_FILES:
        a, b = on_slurm / store_path() / name, local / store_path() / name
        assert filecmp.cmp(a, b, shallow=False), f"{name} differs between the Slurm and the local run"
