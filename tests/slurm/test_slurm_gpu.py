"""GPU rules keep their GPU requests on Slurm: the sbatch line of every GPU rule carries its configured
--gpus / --cpus-per-gpu / --mem / -t (config/config.yaml `resources:`, submitted through profiles/slurm), the
job is allocated that many (fake) GPUs and sees them in CUDA_VISIBLE_DEVICES, and the project's device choice
falls back to the CPU when no CUDA device really exists. Grouped one-GPU regressor runs (profiles/slurm
`groups:`) share one submission that asks for ONE GPU and the sum of their time limits: its members run one
after another."""
import pytest
import yaml

from lead_hsr.config import rule_resources
from slurm_helpers import REPO, failure_report, run_snakemake, sacct, write_workflow

pytestmark = pytest.mark.slurm

# GPU resources have one home, config/config.yaml `resources:` (read by rules/common.smk). One tiny rule per entry,
# declaring exactly those resources; the first also asks lead_hsr which device it would use.
CONFIGURED = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["resources"]
GPU_RESOURCES = {rule: rule_resources(CONFIGURED, rule) for rule in CONFIGURED}  # train_gan_prefix: over train_gan
GPU_RULES = tuple(GPU_RESOURCES)
DEVICE_RULE = GPU_RULES[0]
# regress_all is grouped by profiles/slurm (group regressor_runs); it takes the `fit_regressor` resources.
GROUPED_RULE, GROUP, GROUPED_RUNS = "regress_all", "regressor_runs", 3

SNAKEFILE = f'''
import sys
PY = sys.executable
RESOURCES = {GPU_RESOURCES!r}

rule all:
    input: expand("out/{{name}}.txt", name=RESOURCES), "out/device.txt",
           expand("out/{GROUPED_RULE}_{{run}}.txt", run=range({GROUPED_RUNS}))

rule {GROUPED_RULE}:
    output: "out/{GROUPED_RULE}_{{run}}.txt"
    resources: **RESOURCES["fit_regressor"]
    shell: "echo $SLURM_JOB_ID $CUDA_VISIBLE_DEVICES > {{output}}"
''' + "".join(f'''
rule {name}:
    output: "out/{name}.txt"
    resources: **RESOURCES["{name}"]
    shell: "echo CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES > {{output}}"
''' for name in GPU_RULES if name != DEVICE_RULE) + f'''
rule {DEVICE_RULE}:
    output: "out/{DEVICE_RULE}.txt", device="out/device.txt"
    resources: **RESOURCES["{DEVICE_RULE}"]
    shell:
        "echo CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES > {{output[0]}} && "
        "{{PY}} -c 'import sys; sys.path.insert(0, \\"{REPO}\\"); "
        "from lead_hsr.train.device import pick_device; print(pick_device(\\"auto\\"))' > {{output.device}}"
'''


def expected_flags(resources: dict) -> list[str]:
    return [f"--gpus={resources['gpu']}", f"--cpus-per-gpu={resources['cpus_per_gpu']}",
            f"--mem {resources['mem_mb']}", f"-t {resources['runtime']}", "--requeue"]


def test_gpu_rules_get_gpu_flags_and_a_gpu(slurm_cluster, tmp_path):
    workdir = write_workflow(tmp_path / "gpu", SNAKEFILE)
    result = run_snakemake(workdir, "--verbose")  # --verbose makes the executor print each sbatch call
    assert result.returncode == 0, failure_report(result, workdir)

    for rule in GPU_RULES:
        call = result.sbatch_call(rule)
        for flag in expected_flags(GPU_RESOURCES[rule]):
            assert f" {flag} " in f"{call} ", f"{rule}: {flag} missing from {call}"
        visible = (workdir / "out" / f"{rule}.txt").read_text().strip().removeprefix("CUDA_VISIBLE_DEVICES=")
        assert len(visible.split(",")) == GPU_RESOURCES[rule]["gpu"], f"{rule}: CUDA_VISIBLE_DEVICES={visible}"
        assert all(device.isdigit() for device in visible.split(",")), f"{rule}: {visible}"

    records = sacct(result.slurm_job_ids)
    assert len(records) == len(GPU_RULES) + 1  # + the one group job
    for record in records.values():
        assert record["State"] == "COMPLETED", record
        if record["Comment"] == f"rule_{GROUP}_{GROUPED_RULE}":
            assert "gres/gpu=1" in record["AllocTRES"], record
            continue
        rule = next(name for name in GPU_RULES if record["Comment"] == f"rule_{name}")
        assert f"gres/gpu={GPU_RESOURCES[rule]['gpu']}" in record["AllocTRES"], record
    assert (workdir / "out" / "device.txt").read_text().strip() == "cpu"

    # The grouped runs: one submission, one GPU, the runs' time limits added up; all ran in that one job.
    one = GPU_RESOURCES["fit_regressor"]
    call = result.sbatch_call(f"{GROUP}_{GROUPED_RULE}")
    for flag in ["--gpus=1", f"--cpus-per-gpu={one['cpus_per_gpu']}", f"--mem {one['mem_mb']}",
                 f"-t {GROUPED_RUNS * one['runtime']}"]:
        assert f" {flag} " in f"{call} ", f"group: {flag} missing from {call}"
    jobs = {(workdir / "out" / f"{GROUPED_RULE}_{run}.txt").read_text().split()[0] for run in range(GROUPED_RUNS)}
    assert len(jobs) == 1 and jobs <= set(result.slurm_job_ids), jobs
