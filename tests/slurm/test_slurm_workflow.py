"""The project's own workflow (Snakefile, config/demo.yaml + demo_slice.TINY) through profiles/slurm: data
preparation (synthetic raw data, two prepared stores), LEAD stage 1 and stage 2, four regressor runs and ONE
TABLE (Table 3.7). Every job but the table is an sbatch job recorded in the accounting; the four regressor runs
share ONE grouped submission whose time limit is the sum of theirs (they run one after another in it); the
table is a local rule (run by the submitting Snakemake); and every output is byte-identical to a local run."""
import filecmp
import re

import pytest
import yaml

from demo_slice import DEMO_CONFIG, OUTPUTS, REGRESSIONS, TABLE_FILES, prepare_workdir, run_slice
from slurm_helpers import failure_report, sacct

pytestmark = pytest.mark.slurm

# rule (or group) -> submissions expected: synthetic celeba, mafl (listed inside CelebA), aflw_m; the stores
# celeba_ssl and aflw_m; BYOL stage 1; three LEAD stage-2 runs; all four regressor runs in one group job.
EXPECTED_SUBMISSIONS = {"generate_synthetic": 3, "prepare_dataset": 2, "train_stage1": 1, "train_stage2": 3,
                        "regressor_runs_regress_all": 1}


def submitted_rule(comment: str) -> str:
    return comment.removeprefix("rule_").split("_wildcards_")[0]


def test_demo_slice_with_a_table_on_slurm_equals_local(slurm_cluster, local_demo_slice, tmp_path):
    on_slurm = prepare_workdir(tmp_path / "slurm")
    result = run_slice(on_slurm, TABLE_FILES[0], options=("--verbose",))  # --verbose: the sbatch calls
    assert result.returncode == 0, failure_report(result, on_slurm)

    job_ids = result.slurm_job_ids
    records = sacct(job_ids)
    assert sorted(records) == sorted(job_ids), (records, job_ids)
    assert all(r["State"] == "COMPLETED" for r in records.values()), records
    submitted = [submitted_rule(r["Comment"]) for r in records.values()]
    assert {rule: submitted.count(rule) for rule in set(submitted)} == EXPECTED_SUBMISSIONS, submitted
    # Each job ran inside its Slurm allocation: the executor's per-job log is named by the Slurm job id.
    for job_id in job_ids:
        assert list((on_slurm / "logs" / "slurm").rglob(f"{job_id}.log")), f"no Slurm log for job {job_id}"
    # The table is not a Slurm job: it is a local rule of the submitting Snakemake.
    assert re.search(r"^localrule table:", result.output, re.M), result.output[-3000:]

    # One sbatch for the four regressor runs, sized for running them in series (profiles/slurm `cores: 1`).
    group_calls = [line for line in result.output.splitlines()
                   if line.startswith("sbatch call:") and "--comment rule_regressor_runs_regress_all " in line]
    assert len(group_calls) == 1, group_calls
    runtime = yaml.safe_load(DEMO_CONFIG.read_text())["resources"]["fit_regressor"]["runtime"]
    assert f" -t {len(REGRESSIONS) * runtime} " in group_calls[0], group_calls[0]

    for path in OUTPUTS:
        assert filecmp.cmp(on_slurm / path, local_demo_slice / path, shallow=False), (
            f"{path} differs between the Slurm and the local run")
