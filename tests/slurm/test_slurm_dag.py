"""A small DAG shaped like the demo slice (data preparation -> one training stage -> regressor runs -> one table)
goes through profiles/slurm on a live Slurm: every non-local job is an sbatch submission recorded in the
accounting, the regressor runs share one grouped submission, the table is a local rule, and the results are
byte-identical to a run of the same DAG with profiles/local."""
import filecmp

import pytest

from slurm_helpers import LOCAL_PROFILE, failure_report, run_snakemake, sacct, write_workflow

pytestmark = pytest.mark.slurm

SEEDS = (0, 1, 2)

# Each step writes a deterministic result and, in its log, the Slurm job it ran in ("none" when local).
STEPS_PY = '''
import json, os, random, sys

def record_where():
    print("slurm_job_id", os.environ.get("SLURM_JOB_ID", "none"))

def prepare(out):
    rng = random.Random(0)
    json.dump([rng.random() for _ in range(100)], open(out, "w"))

def train(data, out):
    values = json.load(open(data))
    json.dump({"mean": sum(values) / len(values)}, open(out, "w"))

def regress(stage, seed, out):
    mean = json.load(open(stage))["mean"]
    rng = random.Random(int(seed))
    json.dump({"seed": int(seed), "error": mean + rng.random()}, open(out, "w"))

def table(out, *runs):
    rows = [json.load(open(r)) for r in runs]
    with open(out, "w") as f:
        f.write("seed,error\\n")
        f.writelines(f"{r['seed']},{r['error']!r}\\n" for r in rows)

record_where()
{"prepare": prepare, "train": train, "regress": regress, "table": table}[sys.argv[1]](*sys.argv[2:])
'''

SNAKEFILE = f'''
import sys
PY = sys.executable
SEEDS = {list(SEEDS)}

localrules: all, aggregate_table

rule all:
    input: "results/table.csv"

rule prepare_dataset:
    output: "results/prepared.json"
    log: "logs/prepare_dataset.log"
    shell: "{{PY}} steps.py prepare {{output}} > {{log}} 2>&1"

rule train_stage1:
    input: rules.prepare_dataset.output
    output: "results/stage1.json"
    log: "logs/train_stage1.log"
    shell: "{{PY}} steps.py train {{input}} {{output}} > {{log}} 2>&1"

rule fit_regressor:
    group: "regressor_runs"
    input: rules.train_stage1.output
    output: "results/regressor/seed~{{seed}}.json"
    log: "logs/fit_regressor_{{seed}}.log"
    shell: "{{PY}} steps.py regress {{input}} {{wildcards.seed}} {{output}} > {{log}} 2>&1"

rule aggregate_table:
    input: expand("results/regressor/seed~{{seed}}.json", seed=SEEDS)
    output: "results/table.csv"
    log: "logs/aggregate_table.log"
    shell: "{{PY}} steps.py table {{output}} {{input}} > {{log}} 2>&1"
'''


def job_id_in_log(workdir, name):
    words = (workdir / "logs" / f"{name}.log").read_text().split()
    return words[words.index("slurm_job_id") + 1]


def assert_same_results(dir_a, dir_b):
    files_a = sorted(p.relative_to(dir_a) for p in (dir_a / "results").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(dir_b) for p in (dir_b / "results").rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) == 3 + len(SEEDS)
    for rel in files_a:
        assert filecmp.cmp(dir_a / rel, dir_b / rel, shallow=False), f"{rel} differs between slurm and local"


def test_dag_slice_goes_through_slurm_and_equals_local_run(slurm_cluster, tmp_path):
    on_slurm = write_workflow(tmp_path / "slurm", SNAKEFILE, **{"steps.py": STEPS_PY})
    result = run_snakemake(on_slurm)
    assert result.returncode == 0, failure_report(result, on_slurm)

    # prepare, train and ONE grouped submission for all regressor runs; the table runs locally.
    job_ids = result.slurm_job_ids
    assert len(job_ids) == 3, result.output[-4000:]
    records = sacct(job_ids)
    assert sorted(records) == sorted(job_ids)
    assert all(r["State"] == "COMPLETED" for r in records.values()), records
    comments = " ".join(r["Comment"] for r in records.values())
    for rule in ("prepare_dataset", "train_stage1", "fit_regressor"):
        assert rule in comments, comments
    assert "aggregate_table" not in comments

    regressor_jobs = {job_id_in_log(on_slurm, f"fit_regressor_{seed}") for seed in SEEDS}
    assert len(regressor_jobs) == 1 and regressor_jobs <= set(job_ids)
    assert {job_id_in_log(on_slurm, "prepare_dataset"), job_id_in_log(on_slurm, "train_stage1")} <= set(job_ids)
    assert job_id_in_log(on_slurm, "aggregate_table") == "none"

    local = write_workflow(tmp_path / "local", SNAKEFILE, **{"steps.py": STEPS_PY})
    local_result = run_snakemake(local, profile=LOCAL_PROFILE)
    assert local_result.returncode == 0, failure_report(local_result, local)
    assert job_id_in_log(local, "train_stage1") == "none"
    assert_same_results(on_slurm, local)
