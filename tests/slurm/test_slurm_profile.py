"""profiles/slurm as Snakemake parses it (no Slurm needed): GPU requests come from config `resources:` and are
not overridden; account and partition come from SBATCH_ACCOUNT / SBATCH_PARTITION only when set; the paper
configuration's small jobs (regressor runs, figures) are grouped into few submissions, sized for members that
run one after another; the executor plugin meets the version the profile needs."""
import math
import os
import re
import sys
from collections import Counter
from importlib.metadata import version

import pytest
import yaml
from snakemake.profiles import ProfileConfigFileParser

from lead_hsr.config import RESOURCES_BASE, rule_resources

from slurm_helpers import REPO, SLURM_PROFILE, run

GPU_RESOURCES = ("gpu", "cpus_per_gpu", "mem_mb", "runtime")


def parsed_profile(monkeypatch, **env) -> dict:
    for name in ("SBATCH_ACCOUNT", "SBATCH_PARTITION"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with open(SLURM_PROFILE / "config.yaml") as stream:
        return dict(ProfileConfigFileParser().parse(stream))


def key_values(entries) -> dict:
    return dict(entry.split("=", 1) for entry in entries)


def test_every_configured_gpu_rule_has_what_sbatch_needs():
    """The profile relies on config `resources:` (their one home) for --gpus/--cpus-per-gpu/--mem/-t: a rule
    states all four, or (RESOURCES_BASE) only what differs from its base rule's entry."""
    resources = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["resources"]
    assert resources
    for rule, spec in resources.items():
        assert set(spec) <= set(GPU_RESOURCES), rule
        if rule not in RESOURCES_BASE:  # no silent default for a rule that has no base
            assert sorted(spec) == sorted(GPU_RESOURCES), rule
        merged = rule_resources(resources, rule)
        assert all(isinstance(merged[name], int) and merged[name] >= 1 for name in GPU_RESOURCES), rule
    prefix = rule_resources(resources, "train_gan_prefix")
    assert prefix == {**resources["train_gan"], **resources["train_gan_prefix"]}
    assert prefix["runtime"] < resources["train_gan"]["runtime"]


def test_profile_submits_to_slurm_without_overriding_rule_resources(monkeypatch):
    profile = parsed_profile(monkeypatch)
    assert profile["executor"] == "slurm"
    assert "set-resources" not in profile and "set-threads" not in profile  # one home: config/config.yaml


def test_account_and_partition_come_from_the_environment(monkeypatch):
    unset = key_values(parsed_profile(monkeypatch)["default-resources"])
    assert "slurm_account" not in unset and "slurm_partition" not in unset
    assert int(unset["runtime"]) > 0 and int(unset["mem_mb"]) > 0
    chosen = key_values(parsed_profile(monkeypatch, SBATCH_ACCOUNT="lab42", SBATCH_PARTITION="gpu-a100")
                        ["default-resources"])
    assert chosen["slurm_account"] == "lab42" and chosen["slurm_partition"] == "gpu-a100"


@pytest.mark.parametrize("setting", ["retries", "latency-wait"])
def test_resubmission_and_file_latency_are_configured(monkeypatch, setting):
    assert int(parsed_profile(monkeypatch)[setting]) >= 1


def test_small_jobs_are_grouped(monkeypatch):
    profile = parsed_profile(monkeypatch)
    groups, components = key_values(profile["groups"]), key_values(profile["group-components"])
    assert set(groups.values()) == set(components), "every group needs its group-components (and vice versa)"
    assert all(int(n) > 1 for n in components.values()), components
    # cores 1: members of a group job run one after another in it (the plugin's job step uses --jobs 1), so
    # Snakemake must size the submission for a series (max of gpu/mem, sum of runtime), not a parallel sum.
    assert int(profile["cores"]) == 1
    assert profile["rerun-incomplete"] == "True" and profile["slurm-requeue"] == "True"


def paper_dry_run(workdir) -> tuple[list[dict], Counter]:
    """The paper configuration's DAG as profiles/slurm would submit it (a dry run: no data, no Slurm needed):
    every job with its rule, group (None when submitted alone) and GPUs, and the submissions per group."""
    snakemake = os.path.join(os.path.dirname(sys.executable), "snakemake")
    out = run(["timeout", "120", snakemake, "-n", "--profile", SLURM_PROFILE, "--snakefile", REPO / "Snakefile",
               "--directory", workdir], cwd=workdir, timeout=180)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    jobs, submissions, group = [], Counter(), None
    for line in out.stdout.splitlines():
        if match := re.search(r"Group job (\S+) \(jobs", line):  # one header per group submission
            group = match.group(1)
            submissions[group] += 1
        elif match := re.match(r"(local)?rule (\S+):$", line):
            group = None
            jobs.append({"rule": match.group(2), "group": None, "gpu": 0})
        elif match := re.match(r"    rule (\S+):$", line):
            jobs.append({"rule": match.group(1), "group": group, "gpu": 0})
        elif jobs and (match := re.match(r"\s+resources: .*\bgpu=(\d+)", line)):
            jobs[-1]["gpu"] = int(match.group(1))
    return jobs, submissions


def is_small(job) -> bool:
    """Regressor runs (one GPU each at paper scale) and CPU-only figures: minutes each, many of them."""
    if job["rule"].startswith(("regress_", "match_")):
        return True
    return (job["rule"] in ("data_figure", "architecture_card") or job["rule"].startswith("fig_")) and not job["gpu"]


def test_paper_regressor_runs_and_figures_share_submissions(monkeypatch, tmp_path):
    """Snakemake's own plan for the paper configuration: every regressor run and CPU figure is in a group job of
    at most group-components members; no training, preparation or GAN metric job is."""
    components = {name: int(n) for name, n in key_values(parsed_profile(monkeypatch)["group-components"]).items()}
    jobs, submissions = paper_dry_run(tmp_path)
    rules = Counter(job["rule"] for job in jobs)
    assert rules["regress_all"] > 10 and rules["table"] > 5, rules  # the dry run was parsed
    for job in jobs:
        if is_small(job):
            assert job["group"] is not None, (
                f"{job['rule']} would be submitted alone: add `{job['rule']}=<group>` to `groups:` in profiles/slurm")
        if job["rule"].startswith(("train_", "gan_", "prepare_", "generate_")):
            assert job["group"] is None, f"{job['rule']} must not be grouped (long or GPU-heavy)"
    members = Counter(job["group"] for job in jobs if job["group"])
    for group, count in members.items():
        assert submissions[group] == math.ceil(count / components[group]), (group, count, submissions)
    assert submissions["regressor_runs"] < members["regressor_runs"] / 2, (submissions, members)
    assert all(job["gpu"] <= 1 for job in jobs if job["group"]), "a grouped job asks for several GPUs"


def test_executor_plugin_version_is_recent_enough():
    installed = tuple(int(p) for p in version("snakemake-executor-plugin-slurm").split(".")[:3])
    assert installed >= (2, 7, 1), "profiles/slurm needs snakemake-executor-plugin-slurm >= 2.7.1"
    pins = (REPO / "envs" / "requirements.txt").read_text()
    assert "snakemake-executor-plugin-slurm==" in pins
