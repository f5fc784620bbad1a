"""lead_hsr.budget.estimate: GPU-hours arithmetic, the per-family rows and the Markdown table."""
import pytest

from lead_hsr.budget import estimate as E
from lead_hsr.budget.costs import JobCost
from lead_hsr.budget.dry_run import Job


def test_gpu_hours_arithmetic():
    # 312 TFLOP/s at 50% for one hour = 312e12 * 0.5 * 3600 FLOPs
    assert E.gpu_hours(312e12 * 0.5 * 3600, 312.0, 0.5) == pytest.approx(1.0)
    assert E.gpu_hours(0.0, 312.0, 0.3) == 0.0


class _FixedCoster:
    def cost(self, job):
        return JobCost(1e15, 2e9, 1, "unit") if job.rule == "train_gan_hsr" else None


def test_family_rows_sum_jobs_and_render_table():
    jobs = [Job("train_gan_hsr", (), "a"), Job("train_gan_hsr", (), "b"), Job("table", (), "t"),
            Job("fig_3_4", (), "f1"), Job("fig_4_1", (), "f2"), Job("all", (), "")]
    rows = E.family_rows(jobs, _FixedCoster())
    assert [r["family"] for r in rows if r["family"] in ("all", "figures")] == ["figures"]
    assert next(r for r in rows if r["family"] == "figures")["jobs"] == 2
    gan = next(r for r in rows if r["family"] == "train_gan_hsr")
    assert gan["jobs"] == 2 and gan["flops"] == 2e15 and gan["peak_bytes"] == 2e9
    assert not next(r for r in rows if r["family"] == "table")["modelled"]
    anchor = {"flops_per_kimg": 5e14, "achieved_tflops_per_gpu": 15.6, "utilisation_fp32": 1.0,
              "utilisation_fp16": 0.125, "projected_gb_per_gpu_fp32": 5.4, "anchor_gb_per_gpu": 2.7,
              "per_gpu_batch": 8}
    text = E.render("c.yaml", rows, {"table_4.1": 2e15}, 2e15, anchor, "a100-bf16", 0.5)
    hours = E.gpu_hours(2e15, 312.0, 0.5)
    assert f"| train_gan_hsr | 2 | 2.0 | {hours:,.1f} | 2.0 |" in text
    assert f"| table_4.1 | {hours:,.1f} |" in text
    assert "vs 2.7 GB measured by StyleGAN2-ADA (2.0x;" in text
    assert "every GPU-hour above is 4.0x larger" in text        # 0.5 / 0.125


class _Stage1Coster:   # random init trains nothing; BYOL does
    def cost(self, job):
        return None if job.wc["stage1"] == "random" else JobCost(3e15, 1e9, 1, "byol")


def test_a_family_is_modelled_when_any_of_its_jobs_is_not_only_the_first():
    jobs = [Job("train_stage1", (("stage1", "random"),), "r"), Job("train_stage1", (("stage1", "byol"),), "b")]
    (row,) = E.family_rows(jobs, _Stage1Coster())
    assert row["modelled"] and row["jobs"] == 2 and row["flops"] == 3e15 and row["unit"] == "byol"
