"""GPU-hours of a configuration: per rule family, per thesis table, and the GAN probe against a public anchor.

GPU-hours = FLOPs / (peak x utilisation) of a stated GPU.
"""
from __future__ import annotations

from pathlib import Path

from lead_hsr.budget.costs import Coster
from lead_hsr.budget.dry_run import Job, load_config, plan
from lead_hsr.errors import InputError

# Dense peaks (no sparsity), TFLOP/s: NVIDIA A100 SXM datasheet (bf16/fp16 tensor 312, TF32 156, fp32 19.5),
# H100 SXM datasheet (bf16 989), V100 SXM2 datasheet (fp32 15.7, fp16 tensor 125).
GPU_PEAK_TFLOPS = {"a100-bf16": 312.0, "a100-tf32": 156.0, "a100-fp32": 19.5, "h100-bf16": 989.0,
                   "v100-fp32": 15.7, "v100-fp16": 125.0}
DEFAULT_GPU, DEFAULT_UTILISATION = "a100-bf16", 0.30
# The peak each GPU model's planning uses (its dense bf16/fp16 tensor peak, the precision the paper runs in)
GPU_MODEL_PEAK = {"h100": "h100-bf16", "a100": "a100-bf16", "v100": "v100-fp16"}


def gpu_peak_key(device_name: str) -> str | None:
    """The `GPU_PEAK_TFLOPS` key of a CUDA device name ("NVIDIA H100 80GB HBM3" -> "h100-bf16"); None if the
    table has no entry for that model."""
    name = device_name.lower()
    return next((key for model, key in GPU_MODEL_PEAK.items() if model in name), None)
# Public anchor (StyleGAN2-ADA paper, Table 3 / README "paper256": 8 V100, batch 64): 4.01 s/kimg, 2.7 GB/GPU.
ANCHOR = {"preset": "paper256", "gpus": 8, "batch": 64, "s_per_kimg": 4.01, "gb_per_gpu": 2.7, "gpu": "v100"}
# The same configuration on 8 A100 (StyleGAN2-ADA paper's training-speed comparison): 2.47 s/kimg; no memory given.
ANCHOR_A100 = {**ANCHOR, "s_per_kimg": 2.47, "gb_per_gpu": None, "gpu": "a100"}
# The modelled rule families, in the order of the table (the others follow by name)
FAMILIES = ("train_stage1", "train_stage2", "regress_all", "regress_fewshot", "regress_scale", "match_landmarks",
            "train_gan_prefix", "train_gan_baseline", "train_gan_hsr", "gan_metrics")


def gpu_hours(flops: float, peak_tflops: float, utilisation: float) -> float:
    return flops / (peak_tflops * 1e12 * utilisation) / 3600.0


def family_rows(jobs: list[Job], coster: Coster) -> list[dict]:
    """Per rule family: jobs, FLOPs per sample/step unit, total FLOPs, largest peak memory per GPU."""
    rows = {}
    for job in jobs:
        if job.rule == "all":
            continue
        cost = coster.cost(job)
        family = "figures" if job.rule.startswith("fig_") else job.rule
        row = rows.setdefault(family, {"family": family, "jobs": 0, "flops": 0.0, "peak_bytes": 0.0,
                                       "unit": "", "modelled": False})
        row["jobs"] += 1
        if cost is not None:   # modelled if any of its jobs is (stage 1: BYOL and MoCo train, random init not)
            row["modelled"] = True
            row["flops"] += cost.flops
            if cost.peak_bytes >= row["peak_bytes"]:   # the unit of the job that sets the peak
                row["peak_bytes"], row["unit"] = cost.peak_bytes, cost.unit
    return [rows[k] for k in sorted(rows, key=lambda r: (r not in FAMILIES, FAMILIES.index(r) if r in FAMILIES
                                                          else 0, r))]


def anchor_check(coster: Coster) -> dict:
    """The GAN baseline probe against StyleGAN2-ADA paper256 on 8 V100 (4.01 s/kimg, 2.7 GB/GPU, batch 64)."""
    p = coster.gan("on", "ada", None, None)
    flops_per_kimg = 1000 * p.flops
    achieved = flops_per_kimg / (ANCHOR["s_per_kimg"] * ANCHOR["gpus"])    # FLOP/s per V100
    per_gpu_batch = ANCHOR["batch"] // ANCHOR["gpus"]
    projected_gb = (p.fixed_bytes + per_gpu_batch * p.saved_bytes) / 1e9
    return {"flops_per_kimg": flops_per_kimg, "achieved_tflops_per_gpu": achieved / 1e12,
            "utilisation_fp32": achieved / (GPU_PEAK_TFLOPS["v100-fp32"] * 1e12),
            "utilisation_fp16": achieved / (GPU_PEAK_TFLOPS["v100-fp16"] * 1e12),
            "projected_gb_per_gpu_fp32": projected_gb, "anchor_gb_per_gpu": ANCHOR["gb_per_gpu"],
            "per_gpu_batch": per_gpu_batch}


def render(config_name: str, families: list[dict], tables: dict[str, float], total: float, anchor: dict,
           gpu: str, utilisation: float) -> str:
    peak = GPU_PEAK_TFLOPS[gpu]
    lines = [f"# GPU budget of {config_name}", "",
             f"GPU-hours at {utilisation:.0%} of {gpu} ({peak:g} TFLOP/s dense peak) = FLOPs / "
             f"({peak:g}e12 x {utilisation:g}) / 3600. FLOPs: torch.utils.flop_counter on the project's own step "
             "code at the configured shapes (meta device); memory: saved-for-backward activations x per-GPU batch "
             "+ float32 parameters, gradients and optimizer state (fp32; bf16 autocast roughly halves the "
             "activations).", "",
             "## Per rule family", "",
             "| family | jobs | PFLOP | GPU-hours | peak GB/GPU (fp32) | unit measured |",
             "|---|---:|---:|---:|---:|---|"]
    for row in families:
        if row["modelled"]:
            lines.append(f"| {row['family']} | {row['jobs']} | {row['flops'] / 1e15:,.1f} | "
                         f"{gpu_hours(row['flops'], peak, utilisation):,.1f} | {row['peak_bytes'] / 1e9:.1f} | "
                         f"{row['unit']} |")
        else:
            lines.append(f"| {row['family']} | {row['jobs']} | - | - | - | not modelled (CPU or minor) |")
    lines += ["", "## Per thesis table (a job shared by several tables counts in each)", "",
              "| table | GPU-hours |", "|---|---:|"]
    lines += [f"| {name} | {gpu_hours(flops, peak, utilisation):,.1f} |" for name, flops in tables.items()]
    lines += [f"| **all jobs (each once)** | **{gpu_hours(total, peak, utilisation):,.1f}** |", "",
              "## GAN check against the public anchor", "",
              "StyleGAN2-ADA `paper256` on 8 V100, batch 64: 4.01 s/kimg, 2.7 GB per GPU (mixed fp16/fp32).", "",
              f"- measured: {anchor['flops_per_kimg'] / 1e15:.3f} PFLOP per kimg (one baseline iteration per "
              f"image, lazy R1/PL amortised)",
              f"- implied by the anchor: {anchor['achieved_tflops_per_gpu']:.1f} TFLOP/s per V100 = "
              f"{anchor['utilisation_fp32']:.0%} of its fp32 peak, {anchor['utilisation_fp16']:.0%} of its fp16 "
              "tensor peak",
              f"- memory at {anchor['per_gpu_batch']} images per GPU: projected "
              f"{anchor['projected_gb_per_gpu_fp32']:.1f} GB (fp32) vs {anchor['anchor_gb_per_gpu']} GB measured "
              f"by StyleGAN2-ADA ({anchor['projected_gb_per_gpu_fp32'] / anchor['anchor_gb_per_gpu']:.1f}x; it "
              "keeps the 4 highest resolutions in fp16 and fuses bias/activation/resampling in custom CUDA ops)",
              f"- at the anchor's utilisation ({anchor['utilisation_fp16']:.0%} of the tensor peak) instead of "
              f"{utilisation:.0%}, every GPU-hour above is {utilisation / anchor['utilisation_fp16']:.1f}x larger "
              f"(all jobs: {gpu_hours(total, peak, anchor['utilisation_fp16']):,.0f} GPU-hours)", ""]
    return "\n".join(lines)


def budget(configfile: Path, gpu: str = DEFAULT_GPU, utilisation: float = DEFAULT_UTILISATION) -> str:
    if gpu not in GPU_PEAK_TFLOPS:
        raise InputError(f"--gpu {gpu!r}: expected one of {sorted(GPU_PEAK_TFLOPS)}")
    config = load_config(configfile)
    coster = Coster(config)
    jobs = plan(configfile)
    families = family_rows(jobs, coster)
    tables = {}
    for table in config["report"]["tables"]:
        table_jobs = plan(configfile, f"{config['results']}/tables/{table}.md")
        tables[table] = sum((c.flops for c in map(coster.cost, table_jobs) if c is not None), 0.0)
    total = sum(row["flops"] for row in families)
    return render(Path(configfile).name, families, tables, total, anchor_check(coster), gpu, utilisation)
