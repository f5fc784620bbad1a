"""Pretrained weights are files of the DAG: jobs declare the weights they load, one login-node job fetches the
missing ones, and offline it fails at once naming every missing weight before any job that needs one starts."""
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from lead_hsr import weights

REPO = Path(__file__).resolve().parents[2]
# What config/config.yaml loads: FID Inception, precision/recall + LPIPS VGG16, four pretrained HSR extractors.
# FID: NVlabs' Inception; precision/recall and PPL: NVlabs' VGG16 (the papers' metric networks, config.yaml)
PAPER_WEIGHTS = ["nvlabs-inception-2015-12-05", "nvlabs-vgg16", "vit_base_patch16_224.dino", "resnet50.dino",
                 "deit_base_patch16_224", "resnet50"]
# The demo with its stand-ins swapped for three real weights (small DAG, nothing else changed).
DEMO_WITH_WEIGHTS = {"hsr": {"metrics": {"fid": {"extractor": "inception"}, "pr": {"extractor": "vgg16"}},
                             "extractors": {"vit_dino": {"extractor_weights": "pretrained"}}}}


def snakemake(workdir, *args, configfiles=("config.yaml",), env=None):
    configs = [str(REPO / "config" / name) if "/" not in name else name for name in configfiles]
    command = [sys.executable, "-m", "snakemake", "--directory", str(workdir), "--snakefile",
               str(REPO / "Snakefile"), *args, "--configfile", *configs]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)


def planned_jobs(out) -> list[dict]:
    """[{rule, input: [...], output: [...]}] of a dry run's job listing."""
    jobs = []
    for line in out.stdout.splitlines():
        if match := re.match(r"^(?:local)?rule (\w+):$", line):
            jobs.append({"rule": match.group(1), "input": [], "output": []})
        elif jobs and (match := re.match(r"^    (input|output): (.*)$", line)):
            jobs[-1][match.group(1)] = match.group(2).split(", ")
    return jobs


def cache_file(name, cache="weights_cache"):
    return f"{cache}/{weights.REGISTRY[name].file_name}"


def test_paper_dry_run_plans_one_fetch_job_for_every_missing_weight(tmp_path):
    out = snakemake(tmp_path, "-n")
    assert out.returncode == 0, out.stderr[-3000:]
    jobs = planned_jobs(out)
    fetch = [job for job in jobs if job["rule"] == "fetch_weights"]
    assert len(fetch) == 1 and sorted(fetch[0]["output"]) == sorted(cache_file(n) for n in PAPER_WEIGHTS)
    by_rule = {}
    for job in jobs:
        by_rule.setdefault(job["rule"], []).append(job)
    metric_weights = {cache_file("nvlabs-inception-2015-12-05"), cache_file("nvlabs-vgg16")}
    assert by_rule["gan_metrics"] and all(metric_weights <= set(job["input"]) for job in by_rule["gan_metrics"])
    assert metric_weights & set(by_rule["fig_4_6"][0]["input"]) == {cache_file("nvlabs-inception-2015-12-05")}
    for job in by_rule["train_gan_hsr"]:  # each HSR run declares exactly its extractor's weight
        extractor = re.search(r"hsr~(\w+)/", job["output"][0]).group(1)
        expected = weights.HSR_EXTRACTOR_WEIGHTS[extractor]
        declared = [f for f in job["input"] if f.startswith("weights_cache/")]
        assert declared == ([cache_file(expected)] if expected else []), (extractor, declared)
    for rule in ("train_gan_baseline", "prepare_dataset", "train_stage1", "regress_all"):  # load no weight
        assert not any("weights_cache/" in f for job in by_rule[rule] for f in job["input"]), rule


def test_no_fetch_job_when_every_weight_is_in_the_cache(tmp_path):
    for name in PAPER_WEIGHTS:
        (tmp_path / cache_file(name)).parent.mkdir(exist_ok=True)
        (tmp_path / cache_file(name)).write_bytes(b"present")
    out = snakemake(tmp_path, "-n")
    assert out.returncode == 0, out.stderr[-3000:]
    jobs = planned_jobs(out)
    assert "fetch_weights" not in {job["rule"] for job in jobs}
    assert any(cache_file("nvlabs-vgg16") in job["input"] for job in jobs if job["rule"] == "gan_metrics")
    (tmp_path / cache_file("resnet50")).unlink()  # one missing -> a fetch job for exactly that one
    fetch = [job for job in planned_jobs(snakemake(tmp_path, "-n")) if job["rule"] == "fetch_weights"]
    assert [job["output"] for job in fetch] == [[cache_file("resnet50")]]


def test_stand_ins_need_no_weight_and_no_fetch_job(tmp_path):
    out = snakemake(tmp_path, "-n", configfiles=("demo.yaml",))
    assert out.returncode == 0, out.stderr[-3000:]
    jobs = planned_jobs(out)
    assert "gan_metrics" in {job["rule"] for job in jobs} and "fetch_weights" not in {job["rule"] for job in jobs}
    assert not any("weights_cache/" in f for job in jobs for f in job["input"])


def test_offline_fetch_fails_first_naming_every_missing_weight(tmp_path):
    overlay = tmp_path / "with_weights.yaml"
    overlay.write_text(yaml.safe_dump(DEMO_WITH_WEIGHTS))
    dead = "http://127.0.0.1:9"  # the discard port: nothing listens, so every download fails at once
    env = {**os.environ, "https_proxy": dead, "HTTPS_PROXY": dead, "http_proxy": dead, "HTTP_PROXY": dead}
    env.pop("no_proxy", None), env.pop("NO_PROXY", None)
    out = snakemake(tmp_path, "--cores", "1", configfiles=("demo.yaml", str(overlay)), env=env)
    text = out.stdout + out.stderr
    assert out.returncode != 0, text[-3000:]
    started = re.findall(r"^(?:local)?rule (\w+):$", text, flags=re.M)
    assert started == ["fetch_weights"], started  # nothing else started, least of all a job needing a weight
    message = text[text.index("pretrained weight(s) missing"):]
    expected = ["inception-2015-12-05", "vgg16", "vit_base_patch16_224.dino"]
    assert "3 pretrained weight(s) missing" in text
    for name in expected:
        entry = weights.REGISTRY[name]
        assert f"path: weights_cache/{entry.file_name}" in message
        assert f"source: {entry.url}" in message and f"save it as: {entry.file_name}" in message
    command = f"{sys.executable} -m lead_hsr.weights fetch --cache-dir weights_cache {' '.join(expected)}"
    assert command in message  # the one command that fetches them all, with the venv's interpreter
    cache = tmp_path / "weights_cache"
    assert not cache.exists() or not any(cache.iterdir())  # nothing half-downloaded left behind
