"""profiles/slurm as Snakemake parses it (no Slurm needed): GPU requests come from config `resources:` and are
not overridden; account and partition come from SBATCH_ACCOUNT / SBATCH_PARTITION only when set; small jobs
can be grouped; the executor plugin meets the version the profile needs."""
import os
from importlib.metadata import version

import pytest
import yaml
from snakemake.profiles import ProfileConfigFileParser

from slurm_helpers import REPO, SLURM_PROFILE

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
    """The profile relies on config `resources:` (their one home) for --gpus/--cpus-per-gpu/--mem/-t."""
    resources = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["resources"]
    assert resources
    for rule, spec in resources.items():
        assert sorted(spec) == sorted(GPU_RESOURCES), rule
        assert all(isinstance(spec[name], int) and spec[name] >= 1 for name in GPU_RESOURCES), rule


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
    components = key_values(profile["group-components"])
    assert int(components["regressor_runs"]) > 1 and int(components["metric_aggregation"]) > 1
    assert profile["rerun-incomplete"] == "True" and profile["slurm-requeue"] == "True"


def test_executor_plugin_version_is_recent_enough():
    installed = tuple(int(p) for p in version("snakemake-executor-plugin-slurm").split(".")[:3])
    assert installed >= (2, 7, 1), "profiles/slurm needs snakemake-executor-plugin-slurm >= 2.7.1"
    pins = (REPO / "envs" / "requirements.txt").read_text()
    assert "snakemake-executor-plugin-slurm==" in pins
