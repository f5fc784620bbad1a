"""`make gpu-check` in its tiny CPU mode through the real entry point (`python -m lead_hsr.gpu_check --tiny`), and
the runner's budget and error handling: the script that will spend the first GPU hour is tested on every run."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lead_hsr.budget.estimate import GPU_PEAK_TFLOPS, gpu_peak_key
from lead_hsr.gpu_check import runner, sections, shapes
from lead_hsr.gpu_check.__main__ import main

REPO = Path(__file__).resolve().parents[2]
FAMILY_SECTIONS = ("train_stage1", "train_stage2", "regressor", "features", "gan_metrics")


def _positive(row: dict, *keys: str) -> None:
    for key in keys:
        assert isinstance(row[key], (int, float)) and math.isfinite(row[key]) and row[key] > 0, (row["section"], key,
                                                                                                  row.get(key))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check")
    done = subprocess.run([sys.executable, "-m", "lead_hsr.gpu_check", "--tiny", "--out", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout, (out / "gpu_check.md").read_text(), json.loads((out / "gpu_check.json").read_text())


def test_tiny_mode_measures_every_section(tiny_run):
    stdout, md, raw = tiny_run
    assert stdout.strip() == md.strip()                       # the printed table is the written one
    names = [s.name for s in sections.sections()]
    assert raw["section_order"] == names and sorted(raw["sections"]) == sorted(names)   # every section, in order
    rows = {name: raw["sections"][name] for name in names}
    assert all(r["status"] == "ok" for name in FAMILY_SECTIONS + ("environment",) for r in rows[name])
    families = [r for name in FAMILY_SECTIONS for r in rows[name]]
    assert len(families) == 6                                 # gan_metrics: generator and feature network
    for row in families:
        _positive(row, "s_per_step", "projected_s_per_step", "throughput", "flops_per_step", "steps_timed")
        assert row["projected_gb"] >= 0 and row["peak_gb"] is None     # CPU: no CUDA peak
        assert f"| {row['family']} |" in md
    for precision in shapes.GAN_PRECISIONS:
        (eager,) = rows[f"gan_{precision}_eager"]
        assert eager["status"] == "ok", eager
        _positive(eager, "s_per_kimg_one_gpu", "s_per_kimg_job")
        (compiled,) = rows[f"gan_{precision}_compiled"]       # tiny shapes compile nothing: it says why
        assert compiled["status"].startswith("not run: ") and compiled["status"] in md
    anchors = rows["gan_anchors"]
    assert [a["s_per_kimg_one_gpu"] for a in anchors] == pytest.approx([8 * 4.01, 8 * 2.47])
    (ddp_row,) = rows["ddp_nccl"]
    assert ddp_row["status"] == "skipped: 0 GPU(s) visible, NCCL DDP needs 2" and ddp_row["status"] in md
    env = {r["item"]: r for r in rows["environment"]}
    assert env["assumed peak"]["peak_tflops"] == GPU_PEAK_TFLOPS[env["assumed peak"]["peak_key"]]
    assert raw["elapsed_s"] < raw["budget_s"]


def test_a_spent_budget_still_writes_the_table(tmp_path, capsys):
    assert main(["--tiny", "--budget-s", "0", "--out", str(tmp_path)]) == 0
    raw = json.loads((tmp_path / "gpu_check.json").read_text())
    statuses = [row["status"] for rows in raw["sections"].values() for row in rows]
    assert len(statuses) == len(sections.sections()) and set(statuses) == {runner.NOT_RUN_BUDGET}
    assert (tmp_path / "gpu_check.md").read_text().count(runner.NOT_RUN_BUDGET) == len(statuses)
    assert not list(tmp_path.glob("*.tmp*"))                  # atomic: no temporary left


def test_a_failing_section_is_reported_and_the_next_still_runs(tmp_path):
    import torch

    def broken(ctx, deadline):
        raise RuntimeError("out of memory (simulated)")

    def fine(ctx, deadline):
        return [{"item": "x", "value": 1}]

    ctx = runner.Context(device=torch.device("cpu"), shapes=shapes.tiny_shapes(), budget_s=60)
    tables = runner.run_sections([runner.Section("a", "T", broken, needs_s=0), runner.Section("b", "T", fine,
                                                                                              needs_s=0)], ctx)
    first, second = tables["T"]
    assert first["status"] == "error: RuntimeError: out of memory (simulated)" and "broken" in first["traceback"]
    assert second["status"] == "ok" and second["value"] == 1
    md = runner.markdown("t", [], tables, {"T": [("item", "item"), ("value", "value")]})
    assert "| a | error: RuntimeError: out of memory (simulated) |" in md and "| x | 1 |" in md


def test_time_steps_stops_at_the_deadline():
    import time

    import torch
    calls = []
    timing = runner.time_steps(lambda i: (calls.append(i), time.sleep(0.05)), torch.device("cpu"),
                               time.monotonic() + 0.12, warmup=1, steps=100)
    assert calls[0] == 0 and 1 <= timing["steps_timed"] <= 4 and timing["s_per_step"] >= 0.05


def test_paper_shapes_are_the_configs_per_gpu_batches():
    s = shapes.paper_shapes()
    assert (s.arch, s.crop, s.prepared) == ("resnet50", 96, 136)
    assert (s.stage1_batch, s.stage2_batch, s.gan_batch, s.gan_gpus) == (128, 256, 8, 2)   # 256/2, 256/1, 16/2
    assert (s.gan_preset, s.gan_precision, s.gan_steps) == ("paper256", "fp16", 16)        # lcm(PL 4, R1 16)
    assert s.regressor_size == 48 and s.compiled_precisions == shapes.GAN_PRECISIONS


@pytest.mark.parametrize("name, key", [("NVIDIA H100 80GB HBM3", "h100-bf16"), ("NVIDIA A100-SXM4-80GB", "a100-bf16"),
                                       ("Tesla V100-SXM2-32GB", "v100-fp16"), ("NVIDIA GeForce RTX 4090", None)])
def test_gpu_names_map_to_the_budgets_peak_table(name, key):
    assert gpu_peak_key(name) == key


@pytest.mark.slow
def test_the_ddp_check_passes_on_gloo():
    """The NCCL section's comparison, run with the CPU backend (gloo): the same launch, trainer and comparison."""
    from lead_hsr.gpu_check.ddp import two_process_difference
    from lead_hsr.train import ddp
    result = two_process_difference("cpu")
    assert result["error"] < ddp.EQUIVALENCE_TOLERANCE, result


def test_compiled_rows_ask_the_trainer_to_compile(monkeypatch):
    """Where the build's GAN options have `compile`, the compiled rows pass compile=True (never eager twice)."""
    import dataclasses
    import time

    import torch

    from lead_hsr.gan import training
    seen = []
    real_trainer = training.GanTrainer

    def recording_trainer(opts, *args, **kwargs):
        seen.append(opts["compile"])
        return real_trainer(opts, *args, **kwargs)

    monkeypatch.setitem(training.DEFAULT_OPTIONS, "compile", False)
    monkeypatch.setattr(training, "GanTrainer", recording_trainer)
    # the real switch compiles: aot_eager captures the same graphs without inductor's ~100 s of C++ builds here
    from lead_hsr.train.compile import BACKEND_ENV
    monkeypatch.setenv(BACKEND_ENV, "aot_eager")
    tiny = dataclasses.replace(shapes.tiny_shapes(), compiled_precisions=("none",), gan_steps=1)
    ctx = runner.Context(device=torch.device("cpu"), shapes=tiny, budget_s=60)
    (row,) = sections.gan_section("none", True)(ctx, time.monotonic() + 60)
    assert seen == [True] and row["config"].endswith("compiled") and row["s_per_kimg_one_gpu"] > 0
    (skipped,) = sections.gan_section("bf16", True)(ctx, time.monotonic() + 60)
    assert skipped["status"] == "not run: tiny shapes compile none (CPU minutes)" and seen == [True]
