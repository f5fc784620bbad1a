"""The measurements. Each family row runs that rule family's own step code (the function its training job
calls every step, or its unit of work as `lead_hsr.budget.probes` defines it) on synthetic data at the shapes of
`shapes`, and sets it beside the budget's projection for the same unit: the probe's FLOPs at the assumed peak
and utilisation, and its peak memory (fixed state + per-GPU batch x saved activations, float32)."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import torch

from lead_hsr.gpu_check.runner import Section, time_steps
from lead_hsr.gpu_check.shapes import GAN_PRECISIONS, preset_label

PRECISION_LABEL = {"none": "fp32", "fp16": "fp16 (official recipe)", "bf16": "bf16 (autocast)"}


# ---------------------------------------------------------------- environment and the assumed peak

def assumed_peak(device: torch.device) -> tuple[str, float, str]:
    """(GPU_PEAK_TFLOPS key, TFLOP/s, why) the projections use on this device."""
    from lead_hsr.budget.estimate import DEFAULT_GPU, GPU_PEAK_TFLOPS, gpu_peak_key
    if device.type == "cuda":
        key = gpu_peak_key(torch.cuda.get_device_name(device))
        if key:
            return key, GPU_PEAK_TFLOPS[key], "this GPU's dense tensor peak"
        return DEFAULT_GPU, GPU_PEAK_TFLOPS[DEFAULT_GPU], "GPU not in the budget's table: its default"
    return DEFAULT_GPU, GPU_PEAK_TFLOPS[DEFAULT_GPU], "no GPU: the budget's default GPU (projections not comparable)"


def environment(ctx, deadline) -> list[dict]:
    from lead_hsr.budget.estimate import DEFAULT_UTILISATION
    key, tflops, why = assumed_peak(ctx.device)
    cuda = ctx.device.type == "cuda"
    props = torch.cuda.get_device_properties(ctx.device) if cuda else None
    return [{"item": "torch", "value": torch.__version__},
            {"item": "CUDA", "value": torch.version.cuda if cuda else "none (CPU run)"},
            {"item": "cuDNN", "value": torch.backends.cudnn.version() if cuda else None},
            {"item": "device", "value": props.name if cuda else "cpu",
             "gpu_memory_gb": props.total_memory / 1e9 if cuda else None},
            {"item": "GPUs visible", "value": torch.cuda.device_count()},
            {"item": "shapes", "value": ctx.shapes.name},
            {"item": "assumed peak", "value": f"{key}: {tflops:g} TFLOP/s ({why})", "peak_tflops": tflops,
             "peak_key": key},
            {"item": "assumed utilisation", "value": DEFAULT_UTILISATION}]


# ---------------------------------------------------------------- one step of each rule family

def _project(probe, batch: int, measured_s: float, device) -> dict:
    """The budget's projection of one step of `batch` samples beside the measured time."""
    from lead_hsr.budget.estimate import DEFAULT_UTILISATION
    _, tflops, _ = assumed_peak(device)
    flops = batch * probe.flops
    return {"flops_per_step": flops,
            "projected_s_per_step": flops / (tflops * 1e12 * DEFAULT_UTILISATION),
            "projected_gb": (probe.fixed_bytes + batch * probe.saved_bytes) / 1e9,
            "achieved_tflops": flops / measured_s / 1e12,
            "implied_utilisation": flops / measured_s / (tflops * 1e12)}


def _row(family: str, what: str, batch: int, precision: str, timing: dict, probe, device, unit: str,
         per_step: float) -> dict:
    """`per_step`: images (or steps) per step for the throughput column."""
    return {"family": family, "what": what, "batch": batch, "precision": PRECISION_LABEL[precision], **timing,
            "throughput": per_step / timing["s_per_step"], "throughput_unit": unit,
            **_project(probe, batch, timing["s_per_step"], device)}


def _synthetic_store(size: int, n: int, seed: int = 0):
    """What the LEAD step functions read of a prepared store: uint8 N x size x size x 3 images (random)."""
    images = np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    return SimpleNamespace(images=images), np.arange(n)


def stage1_family(ctx, deadline) -> list[dict]:
    from lead_hsr.budget.probes import stage1_step
    from lead_hsr.lead import stage1
    s, device = ctx.shapes, ctx.device
    opts = {**stage1.DEFAULTS, "arch": s.arch, "crop": s.crop, "batch": s.stage1_batch,
            "precision": s.stage1_precision}
    torch.manual_seed(0)
    model = stage1.build_ssl_model(opts).to(device)
    optimizer = stage1.build_optimizer(model, opts)
    store, indices = _synthetic_store(s.prepared, 2 * s.stage1_batch)
    step = stage1.make_step_fn(model, optimizer, store, indices, opts, 10_000, device)
    timing = time_steps(step, device, deadline, s.warmup, s.steps)
    return [_row("train_stage1", f"BYOL {s.arch} step, two {s.crop}px views (augmentation included)",
                 s.stage1_batch, s.stage1_precision, timing, stage1_step("byol", s.arch, s.crop), device,
                 "images/s", s.stage1_batch)]


def stage2_family(ctx, deadline) -> list[dict]:
    from lead_hsr.budget.probes import stage2_step
    from lead_hsr.lead import stage2
    from lead_hsr.lead.dense_model import build_dense_model
    from lead_hsr.train import grad_scaler_for
    s, device = ctx.shapes, ctx.device
    opts = stage2._resolve({"objective": "lead", "dim": s.stage2_dim, "proj_head": s.stage2_proj, "crop": s.crop,
                            "batch": s.stage2_batch, "precision": s.stage2_precision})
    torch.manual_seed(0)
    teacher = build_dense_model("hypercolumn", s.arch, {}).to(device).eval().requires_grad_(False)
    student = stage2._student(opts, teacher).to(device)
    optimizer = torch.optim.Adam([p for p in student.parameters() if p.requires_grad], lr=float(opts["lr"]))
    scaler = grad_scaler_for(device, "fp16") if opts["precision"] == "fp16" else None
    store, indices = _synthetic_store(s.prepared, 2 * s.stage2_batch)
    step = stage2.make_step_fn(student, teacher, optimizer, store, indices, opts, 10_000, device, scaler)
    timing = time_steps(step, device, deadline, s.warmup, s.steps)
    probe = stage2_step("lead", s.stage2_dim, s.stage2_proj, s.arch, s.crop)
    return [_row("train_stage2", f"LEAD {s.stage2_dim}-d step ({s.arch} teacher + FPN student)", s.stage2_batch,
                 s.stage2_precision, timing, probe, device, "steps/s", 1)]


def regressor_family(ctx, deadline) -> list[dict]:
    from lead_hsr.budget.probes import regressor_step
    from lead_hsr.lead.arch import hypercolumn_dim
    from lead_hsr.lead.regressor import ADAM_BETAS, LEARNING_RATE, LandmarkRegressor, regression_loss
    s, device = ctx.shapes, ctx.device
    dim = hypercolumn_dim(s.arch)
    torch.manual_seed(0)
    model = LandmarkRegressor(dim, s.n_landmarks).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, betas=ADAM_BETAS)
    feats = torch.randn(s.regressor_batch, dim, s.regressor_size, s.regressor_size, device=device)
    target = torch.rand(s.regressor_batch, s.n_landmarks, 2, device=device) * 2 - 1

    def step(_):
        loss = regression_loss(model(feats), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    timing = time_steps(step, device, deadline, s.warmup, 5 * s.steps)
    probe = regressor_step(dim, s.n_landmarks, s.regressor_size)
    return [_row("regress_all / regress_fewshot / regress_scale",
                 f"regressor step on {dim}x{s.regressor_size}x{s.regressor_size} descriptors (on the device)",
                 s.regressor_batch, "none", timing, probe, device, "images/s", s.regressor_batch)]


def features_family(ctx, deadline) -> list[dict]:
    from lead_hsr.budget.probes import dense_features
    from lead_hsr.lead.arch import hypercolumn_dim
    from lead_hsr.lead.dense_model import build_dense_model, extract_features
    s, device = ctx.shapes, ctx.device
    torch.manual_seed(0)
    model = build_dense_model("hypercolumn", s.arch, {}).to(device).eval()
    crops, _ = _synthetic_store(s.crop, s.match_batch)
    timing = time_steps(lambda _: extract_features(model, crops.images, s.crop, s.match_batch, device), device,
                        deadline, 1, s.steps)
    dim = hypercolumn_dim(s.arch)
    return [_row("match_landmarks (features)", f"{dim}-d hypercolumns at {s.crop}x{s.crop}, copied to the host",
                 s.match_batch, "none", timing, dense_features("hypercolumn", dim, "none", s.arch, s.crop, s.crop),
                 device, "images/s", s.match_batch)]


def metrics_family(ctx, deadline) -> list[dict]:
    from lead_hsr.budget.probes import generator_forward, metric_network
    from lead_hsr.gan.networks import Generator, get_preset
    from lead_hsr.metrics.features import make_extractor, quantise_to_uint8
    s, device = ctx.shapes, ctx.device
    preset = get_preset(s.gan_preset)
    torch.manual_seed(0)
    G = Generator(**preset).to(device).eval().requires_grad_(False)
    z = torch.randn(s.generator_batch, G.z_dim, device=device)
    with torch.no_grad():
        generate = time_steps(lambda _: G(z), device, deadline, 1, s.steps)
        images = quantise_to_uint8(G(z[:1])).expand(s.metric_batch, -1, -1, -1).contiguous()
    extractor = make_extractor(s.metric_extractor, None, "random", device)
    extract = time_steps(lambda _: extractor(images), device, deadline, 1, s.steps)
    res = preset["resolution"]
    return [_row("gan_metrics (generator)", f"G_ema forward, {preset_label(s.gan_preset)}", s.generator_batch, "none", generate,
                 generator_forward(s.gan_preset), device, "images/s", s.generator_batch),
            _row("gan_metrics (features)", f"{s.metric_extractor} features of {res}px images (random weights)",
                 s.metric_batch, "none", extract, metric_network(s.metric_extractor, res), device, "images/s",
                 s.metric_batch)]


# ---------------------------------------------------------------- paper256 G+D training per precision

class SyntheticImages:
    """What `GanTrainer.step` reads of its data: a batch of reals in [-1, 1] on the device (random)."""

    def __init__(self, resolution: int):
        self.resolution = resolution

    def batch(self, indices, device) -> torch.Tensor:
        return torch.rand(len(indices), 3, self.resolution, self.resolution, device=device) * 2 - 1


def gan_section(precision: str, compiled: bool):
    def run(ctx, deadline) -> list[dict]:
        from lead_hsr.budget.estimate import ANCHOR
        from lead_hsr.gan.networks import get_preset
        from lead_hsr.gan.training import DEFAULT_OPTIONS, GanTrainer, resolve_options
        s, device = ctx.shapes, ctx.device
        row = {"config": f"{preset_label(s.gan_preset)} {PRECISION_LABEL[precision]}, {'compiled' if compiled else 'eager'}",
               "batch": s.gan_batch}
        if compiled and "compile" not in DEFAULT_OPTIONS:
            return [{**row, "status": "not run: this build has no compile option"}]
        if compiled and precision not in s.compiled_precisions:
            return [{**row, "status": f"not run: {s.name} shapes compile "
                                      f"{', '.join(s.compiled_precisions) or 'no precision'} (CPU minutes)"}]
        options = {"preset": s.gan_preset, "batch": s.gan_batch, "precision": precision, "device": device.type}
        if compiled:
            options["compile"] = True
        torch.manual_seed(0)
        opts = resolve_options(options)
        trainer = GanTrainer(opts, SyntheticImages(get_preset(s.gan_preset)["resolution"]), device)
        indices = np.arange(s.gan_batch)
        timing = time_steps(lambda i: trainer.step(i, indices), device, deadline, s.gan_warmup, s.gan_steps)
        s_per_kimg = timing["s_per_step"] / s.gan_batch * 1000
        return [{**row, **timing, "s_per_kimg_one_gpu": s_per_kimg,
                 "s_per_kimg_job": s_per_kimg / s.gan_gpus,
                 "explain": f"one GPU at the per-GPU batch {s.gan_batch} (global batch {s.gan_global_batch} over "
                            f"{s.gan_gpus} GPUs); job s/kimg = one-GPU s/kimg / {s.gan_gpus} (linear scaling). "
                            f"Anchors per GPU: {ANCHOR['gpus']} GPUs x s/kimg at batch {ANCHOR['batch']} "
                            f"({ANCHOR['batch'] // ANCHOR['gpus']} per GPU), linear scaling assumed. "
                            f"Timed steps {s.gan_warmup}..{s.gan_warmup + timing['steps_timed'] - 1}: "
                            + ("lazy R1 and path-length phases in their proportion"
                               if timing["steps_timed"] % math.lcm(opts["pl_interval"], opts["r1_interval"]) == 0
                               else "fewer than one R1 interval, lazy phases not in proportion")}]
    return run


def gan_anchors(ctx, deadline) -> list[dict]:
    from lead_hsr.budget.estimate import ANCHOR, ANCHOR_A100
    return [{"config": f"StyleGAN2-ADA {a['preset']}, {a['gpus']} {a['gpu'].upper()} (anchor)",
             "batch": a["batch"] // a["gpus"], "s_per_kimg_one_gpu": a["s_per_kimg"] * a["gpus"],
             "s_per_kimg_job": a["s_per_kimg"] * a["gpus"] / ctx.shapes.gan_gpus,
             "peak_gb": a["gb_per_gpu"]} for a in (ANCHOR, ANCHOR_A100)]


# ---------------------------------------------------------------- two-process NCCL DDP equivalence

def ddp_section(ctx, deadline) -> list[dict]:
    from lead_hsr.gpu_check.ddp import two_process_difference
    from lead_hsr.train.ddp import EQUIVALENCE_TOLERANCE as TOLERANCE
    gpus = torch.cuda.device_count() if ctx.device.type == "cuda" else 0
    if gpus < 2:
        return [{"check": "NCCL DDP, 2 processes vs 1",
                 "status": f"skipped: {gpus} GPU(s) visible, NCCL DDP needs 2"}]
    result = two_process_difference("cuda")
    return [{"check": "NCCL DDP, 2 processes vs 1", "max_relative_difference": result["error"],
             "worst_tensor": result["key"], "tolerance": TOLERANCE, "passed": result["error"] < TOLERANCE}]


def sections(compile_budget_s: float = 150.0) -> list[Section]:
    """In the order they run: the cheap and the essential first, compiled GAN variants last (compilation alone
    takes minutes), so a short budget still measures the rest."""
    families = "One step of each rule family (budget projection beside it)"
    gan = "G+D training per precision (paper256 at the paper shapes)"
    out = [Section("environment", "Environment", environment, needs_s=0.0, slice_s=30),
           Section("train_stage1", families, stage1_family, needs_s=20, slice_s=60),
           Section("train_stage2", families, stage2_family, needs_s=20, slice_s=60),
           Section("regressor", families, regressor_family, needs_s=10, slice_s=30),
           Section("features", families, features_family, needs_s=10, slice_s=30),
           Section("gan_metrics", families, metrics_family, needs_s=20, slice_s=60),
           Section("gan_anchors", gan, gan_anchors, needs_s=0.0, slice_s=1)]
    out += [Section(f"gan_{p}_eager", gan, gan_section(p, False), needs_s=20, slice_s=60) for p in GAN_PRECISIONS]
    out += [Section("ddp_nccl", "Two-process DDP equivalence", ddp_section, needs_s=30, slice_s=120)]
    out += [Section(f"gan_{p}_compiled", gan, gan_section(p, True), needs_s=compile_budget_s / 2,
                    slice_s=compile_budget_s) for p in GAN_PRECISIONS]
    return out


COLUMNS = {
    "Environment": [("item", "item"), ("value", "value"), ("GPU memory GB", "gpu_memory_gb")],
    "One step of each rule family (budget projection beside it)": [
        ("family", "family"), ("what ran", "what"), ("batch/GPU", "batch"), ("precision", "precision"),
        ("s/step", "s_per_step"), ("projected s/step", "projected_s_per_step"), ("throughput", "throughput"),
        ("unit", "throughput_unit"), ("peak GB", "peak_gb"), ("projected GB (fp32)", "projected_gb"),
        ("utilisation of assumed peak", "implied_utilisation"), ("steps timed", "steps_timed")],
    "G+D training per precision (paper256 at the paper shapes)": [
        ("configuration", "config"), ("batch/GPU", "batch"), ("s/kimg, one GPU", "s_per_kimg_one_gpu"),
        ("s/kimg, job", "s_per_kimg_job"), ("peak GB", "peak_gb"), ("steps timed", "steps_timed")],
    "Two-process DDP equivalence": [
        ("check", "check"), ("max relative difference", "max_relative_difference"), ("tolerance", "tolerance"),
        ("passed", "passed")],
}
