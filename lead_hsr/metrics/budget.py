"""GPU budget of a configuration, measured before anyone submits it (README "GPU budget").

    python -m lead_hsr.metrics.budget --configfile config/config.yaml [--gpu a100-bf16] [--utilisation 0.3]

For every training and evaluation rule family the project's own networks are built at the configured shapes on
PyTorch's meta device (no weights, no data, seconds on a CPU) and one step of the project's own code runs under
`torch.utils.flop_counter`: the GAN trainer's four phases (`GanTrainer.g_main/g_reg/d_main/d_reg`), BYOL/MoCo,
the stage-2 objectives, the landmark regressor, the metric networks. What is counted:

- FLOPs: what `FlopCounterMode` counts (2 x multiply-adds of matmul/conv/attention, forward and backward);
  elementwise ops, optimizer updates, data loading and augmentation are not counted.
- Memory per sample: bytes of the tensors autograd saves for backward (`saved_tensors_hooks`, parameters
  excluded), at the paper precision of the measured dtype (float32 here; bf16 autocast halves most of it).
  Fixed memory: parameters + buffers + gradients + optimizer state (Adam: 2 moments, SGD: 1), float32.
  Peak per GPU ~= fixed + per-GPU batch x per-sample (temporaries of the backward pass are not counted).

Job counts come from Snakemake's own dry run of the configuration (`snakemake -n` per table target), so the
table per thesis table is the sum over exactly the jobs that table needs (a job shared by two tables counts in
both; the total counts it once). GPU-hours = FLOPs / (peak x utilisation) of a stated GPU.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import math
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

from lead_hsr.errors import InputError

REPO = Path(__file__).resolve().parents[2]
# Dense peaks (no sparsity), TFLOP/s: NVIDIA A100 SXM datasheet (bf16/fp16 tensor 312, TF32 156, fp32 19.5),
# H100 SXM datasheet (bf16 989), V100 SXM2 datasheet (fp32 15.7, fp16 tensor 125).
GPU_PEAK_TFLOPS = {"a100-bf16": 312.0, "a100-tf32": 156.0, "a100-fp32": 19.5, "h100-bf16": 989.0,
                   "v100-fp32": 15.7, "v100-fp16": 125.0}
DEFAULT_GPU, DEFAULT_UTILISATION = "a100-bf16", 0.30
# Public anchor (StyleGAN2-ADA paper, Table 3 / README "paper256": 8 V100, batch 64): 4.01 s/kimg, 2.7 GB/GPU.
ANCHOR = {"preset": "paper256", "gpus": 8, "batch": 64, "s_per_kimg": 4.01, "gb_per_gpu": 2.7, "gpu": "v100"}


# ----------------------------------------------------------------------------------------------- measuring
class _Global:
    """Stands in for FlopCounterMode's module tracker: its backward hooks break autograd.grad on leaf inputs
    (R1 and path-length penalties), and only the global count is needed."""
    parents = ("Global",)

    def __enter__(self):
        return self

    def __exit__(self, *args):
        return False


class GlobalFlopCounter(FlopCounterMode):
    """`FlopCounterMode` (same FLOP formulas) without per-module attribution."""

    def __init__(self):
        super().__init__(display=False)
        self.mod_tracker = _Global()


@contextlib.contextmanager
def _meta_scalars():
    """Let `.item()` / `float()` of a meta tensor return 0.0 (trainers log scalars, meta tensors hold none) and
    boolean masks select every element (the regressor drops absent landmarks; none are absent here)."""
    from torch.fx.experimental import _config as fx_config
    item, to_float = torch.Tensor.item, torch.Tensor.__float__
    torch.Tensor.item = lambda self: 0.0 if self.is_meta else item(self)
    torch.Tensor.__float__ = lambda self: 0.0 if self.is_meta else to_float(self)
    try:
        with fx_config.patch(meta_nonzero_assume_all_nonzero=True):
            yield
    finally:
        torch.Tensor.item, torch.Tensor.__float__ = item, to_float


@dataclass(frozen=True)
class Measure:
    flops: float        # per call of the measured function
    saved_bytes: float  # activations saved for backward per call (parameters excluded)


def measure(fn, parameters=()) -> Measure:
    """FLOPs and saved-for-backward bytes of one call of `fn` (any device; meta is cheapest)."""
    param_ids = {id(p) for p in parameters}
    saved = [0]

    def pack(t):
        base = t._base if t._base is not None else t
        if id(t) not in param_ids and id(base) not in param_ids:
            saved[0] += t.numel() * t.element_size()
        return t

    with _meta_scalars(), GlobalFlopCounter() as counter, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return Measure(float(counter.get_total_flops()), float(saved[0]))


def state_bytes(modules, optimizer_moments: int) -> float:
    """float32 parameters + buffers of `modules`, plus gradients and optimizer moments of trainable ones."""
    total = 0
    for module in modules:
        for p in module.parameters():
            total += p.numel() * 4 * (1 + (1 + optimizer_moments) * p.requires_grad)
        total += sum(b.numel() * 4 for b in module.buffers())
    return float(total)


@dataclass(frozen=True)
class Probe:
    """Cost of one unit of a rule family (one training sample, one generated image, ...)."""
    flops: float           # per sample
    saved_bytes: float     # per sample
    fixed_bytes: float     # per GPU, independent of the batch
    what: str


# ------------------------------------------------------------------------------------------- GAN probes
def _gan_trainer(train: dict, hsr: dict | None, batch: int):
    from lead_hsr.gan.training import GanTrainer, resolve_options
    keys = {"preset", "lr", "gamma", "pl_weight", "pl_interval", "r1_interval", "pl_batch_shrink", "ada"}
    opts = resolve_options({**{k: v for k, v in train.items() if k in keys}, "batch": batch, "hsr": hsr,
                            "device": "meta", "precision": "none"})     # measured in float32 (module docstring)
    return GanTrainer(opts, None, "meta"), opts


def gan_iteration(train: dict, hsr: dict | None = None, batch: int = 4) -> Probe:
    """One StyleGAN2-ADA iteration per image, lazy phases amortised (Greg every pl_interval, Dreg every r1)."""
    trainer, opts = _gan_trainer(train, hsr, batch)
    params = [p for m in (trainer.G, trainer.D, trainer.heads) if m is not None for p in m.parameters()]
    real = torch.zeros(batch, 3, opts["preset"]["resolution"], opts["preset"]["resolution"], device="meta")
    z_gmain, z_greg, z_dmain, _ = trainer.phase_latents()
    phases = {"g_main": (lambda: trainer.g_main(z_gmain), 1.0), "d_main": (lambda: trainer.d_main(real, z_dmain), 1.0)}
    if opts["pl_weight"] and opts["pl_interval"]:
        phases["g_reg"] = (lambda: trainer.g_reg(z_greg), 1.0 / opts["pl_interval"])
    if opts["gamma"] and opts["r1_interval"]:
        phases["d_reg"] = (lambda: trainer.d_reg(real), 1.0 / opts["r1_interval"])
    flops = saved = 0.0
    for fn, weight in phases.values():
        m = measure(fn, params)
        flops += weight * m.flops
        saved = max(saved, m.saved_bytes)     # phases run one after another: the largest one sets the peak
    modules = [trainer.G, trainer.D] + ([trainer.heads] if trainer.heads is not None else [])
    fixed = state_bytes(modules, 2) + state_bytes([trainer.G_ema], 0)
    if trainer.extractor is not None:
        fixed += state_bytes([trainer.extractor], 0)
    return Probe(flops / batch, saved / batch, fixed, f"one image of one iteration ({', '.join(phases)})")


def generator_forward(preset: str) -> Probe:
    from lead_hsr.gan.networks import Generator, get_preset
    with torch.device("meta"):
        G = Generator(**get_preset(preset)).eval().requires_grad_(False)
    z = torch.zeros(2, G.z_dim, device="meta")
    m = measure(lambda: G(z))
    return Probe(m.flops / 2, 0.0, state_bytes([G], 0), "one generated image (G_ema forward)")


def metric_network(kind: str, resolution: int) -> Probe:
    """Inception-v3 (FID), VGG16 (precision/recall) or LPIPS-VGG16 (PPL, one image pair) forward, random init.

    Measured on the CPU with one real image (torchvision's input checks branch on tensor values, which meta
    tensors do not have); a forward pass of these networks takes about a second."""
    x = torch.zeros(1, 3, resolution, resolution, dtype=torch.uint8)
    with torch.no_grad():
        if kind == "lpips":
            from lead_hsr.metrics.ppl import PPL_MAX_RESOLUTION, LPIPSDistance
            size = min(resolution, PPL_MAX_RESOLUTION)
            distance, image = LPIPSDistance(None, "random"), torch.zeros(1, 3, size, size)
            m = measure(lambda: distance(image, image))
        else:
            from lead_hsr.metrics.features import make_extractor
            extractor = make_extractor(kind, None, "random", "cpu")   # built outside the counted call
            m = measure(lambda: extractor(x))
    return Probe(m.flops, 0.0, 0.0, f"one image through {kind}")


# ------------------------------------------------------------------------------------------ LEAD probes
def stage1_step(objective: str, arch: str, crop: int, batch: int = 4) -> Probe:
    from lead_hsr.lead.stage1 import DEFAULTS, build_ssl_model
    with torch.device("meta"):
        model = build_ssl_model({**DEFAULTS, "objective": objective, "arch": arch}).train()
    views = torch.zeros(batch, 3, crop, crop, device="meta")
    trainable = [p for p in model.parameters() if p.requires_grad]
    m = measure(lambda: model(views, views).backward(), trainable)
    return Probe(m.flops / batch, m.saved_bytes / batch, state_bytes([model], 1),
                 f"one image, two views at {crop}x{crop} (augmentation not counted)")


def stage2_step(objective: str, dim: int, proj: str, arch: str, crop: int, batch: int = 4) -> Probe:
    from lead_hsr.lead import stage2
    from lead_hsr.lead.dense_model import build_dense_model
    opts = stage2._resolve({"objective": objective, "dim": dim, "proj_head": proj, "crop": crop})
    with torch.device("meta"):
        teacher = build_dense_model("hypercolumn", arch, {}).requires_grad_(False)
        student = _stage2_student(opts, teacher).train()
    x = torch.zeros(batch, 3, crop, crop, device="meta")
    trainable = [p for p in student.parameters() if p.requires_grad]
    m = measure(lambda: stage2.objective_loss(student, teacher, x, opts).backward(), trainable)
    return Probe(m.flops / batch, m.saved_bytes / batch, state_bytes([student], 2) + state_bytes([teacher], 0),
                 f"one {crop}x{crop} crop")


def _stage2_student(opts, teacher):
    from lead_hsr.lead import stage2
    from lead_hsr.lead.dense_model import build_dense_model
    try:
        return stage2._student(opts, teacher)
    except (NotImplementedError, RuntimeError):  # copying the stage-1 encoder is a no-op on meta anyway
        kind = "fpn" if opts["objective"] in ("lead", "cl_fpn") else "cl"
        return build_dense_model(kind, teacher.arch, {"dim": int(opts["dim"]), "proj_head": opts["proj_head"],
                                                      "fpn_dim": int(opts["fpn_dim"]),
                                                      "hypercolumn_norm": opts["teacher_norm"]})


def dense_features(kind: str, dim: int, proj: str, arch: str, crop: int, size: int) -> Probe:
    """One crop through a feature source (forward only) to `size` x `size` descriptors."""
    from lead_hsr.lead.dense_model import build_dense_model
    from lead_hsr.lead.stage2 import FPN_DIM
    config = {"dim": dim, "proj_head": proj, "fpn_dim": FPN_DIM, "code_size": size}
    with torch.device("meta"):
        model = build_dense_model(kind, arch, config).eval()
    x = torch.zeros(2, 3, crop, crop, device="meta")
    with torch.no_grad():
        m = measure(lambda: model(x, size))
    return Probe(m.flops / 2, 0.0, state_bytes([model], 0), f"one crop -> {size}x{size} {kind} descriptors")


def regressor_step(in_dim: int, n_landmarks: int, size: int, batch: int = 4) -> Probe:
    from lead_hsr.lead.regressor import LandmarkRegressor, regression_loss
    with torch.device("meta"):
        model = LandmarkRegressor(in_dim, n_landmarks)
    feats = torch.zeros(batch, in_dim, size, size, device="meta")

    def step():
        pred = model(feats)
        regression_loss(pred, torch.zeros_like(pred)).backward()

    m = measure(step, list(model.parameters()))
    return Probe(m.flops / batch, m.saved_bytes / batch + in_dim * size * size * 4, state_bytes([model], 2),
                 f"one image's {in_dim}x{size}x{size} descriptors")


# ------------------------------------------------------------------------------------------ the job plan
@dataclass(frozen=True)
class Job:
    rule: str
    wildcards: tuple[tuple[str, str], ...]
    output: str

    @property
    def wc(self) -> dict:
        return dict(self.wildcards)


def parse_dry_run(text: str) -> list[Job]:
    """The jobs of `snakemake -n` output (blocks `rule NAME:` / `localrule NAME:` with `output:`, `wildcards:`)."""
    jobs, rule, fields = [], None, {}

    def flush():
        if rule is not None:
            pairs = [kv.split("=", 1) for kv in fields.get("wildcards", "").split(", ") if "=" in kv]
            jobs.append(Job(rule, tuple((k.strip(), v.strip()) for k, v in pairs), fields.get("output", "")))

    for line in text.splitlines():
        head = re.match(r"^(?:local)?rule (\w+):\s*$", line)
        if head:
            flush()
            rule, fields = head.group(1), {}
            continue
        field = re.match(r"^\s+(output|wildcards): (.*)$", line)
        if field and rule is not None:
            fields[field.group(1)] = field.group(2)
    flush()
    return jobs


def plan(configfile: Path, target: str | None = None) -> list[Job]:
    """Jobs Snakemake plans for `target` (default: everything) with this config, in an empty directory."""
    import tempfile
    with tempfile.TemporaryDirectory() as empty:
        cmd = [sys.executable, "-m", "snakemake", "-n", "--snakefile", str(REPO / "Snakefile"), "--directory",
               empty, "--configfile", str(Path(configfile).resolve()), "--cores", "1"]
        if target:
            cmd += ["--", target]
        # the budget is for before the data is there: plan without the raw-layout check of the prepare jobs
        env = {**os.environ, "LEAD_HSR_SKIP_RAW_CHECK": "1"}
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
    if out.returncode != 0:
        raise InputError(f"{configfile}: `snakemake -n` failed; fix the configuration first:\n{out.stderr[-3000:]}")
    return parse_dry_run(out.stdout)


def load_config(configfile: Path) -> dict:
    """config/config.yaml with `configfile` deep-merged over it (as Snakemake merges --configfile)."""
    def merge(base, over):
        for key, value in over.items():
            base[key] = merge(dict(base.get(key, {})), value) if isinstance(value, dict) and isinstance(
                base.get(key), dict) else value
        return base
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    return merge(config, yaml.safe_load(Path(configfile).read_text()) or {})


# ------------------------------------------------------------------------------------------ costing jobs
@dataclass(frozen=True)
class JobCost:
    flops: float            # whole job
    peak_bytes: float       # per GPU
    gpus: int
    unit: str               # what the per-sample probe measured


FIVE_POINTS = 5  # MAFL, AFLW_M, AFLW_R: 5 landmarks (DESIGN §4.1); 300W: readers.w300.N_POINTS


class Coster:
    """Costs of the jobs of one configuration (probes measured once per distinct shape)."""

    def __init__(self, config: dict):
        self.config = config
        self.lead, self.hsr = config["lead"], config["hsr"]
        self.crop = config["geometry"]["resize"] - 2 * config["geometry"]["crop"]
        self.res = config.get("resources", {})

    # ---- helpers
    def _gpus(self, family: str) -> int:
        return max(1, int(self.res.get(family, {}).get("gpu", 1)))

    def _count(self, store: str, split: str) -> int:
        from lead_hsr.data.prepare import PAPER_COUNTS
        from lead_hsr.data.prepare_gan import CELEBA_PARTITION_COUNTS
        spec = self.config["prepared"][store]
        if "expected_counts" in spec:
            return int(spec["expected_counts"].get(split, 0))
        if spec["preparer"] == "celeba_ssl":   # CelebA partition 0 minus every MAFL image (DESIGN §4.1)
            mafl = PAPER_COUNTS["mafl"]
            return CELEBA_PARTITION_COUNTS["train"] - mafl["train"] - mafl["test"]
        return int((PAPER_COUNTS.get(spec["preparer"]) or {}).get(split, 0))

    @staticmethod
    def _landmarks(store: str) -> int:
        from lead_hsr.data.readers.w300 import N_POINTS
        return N_POINTS if store == "w300" else FIVE_POINTS

    def _source(self, wc: dict) -> tuple[str, int, str]:
        """(dense model kind, descriptor dim, projection head) of a feature-source path."""
        stage2 = wc["stage2"]
        kind = {"none": "hypercolumn", "lead": "fpn", "cl_fpn": "fpn", "cl": "cl", "nmf": "nmf"}[stage2]
        return kind, int(wc["dim"]), wc["proj"]

    @functools.lru_cache(maxsize=None)
    def features(self, kind, dim, proj, size) -> Probe:
        return dense_features(kind, dim, proj, self.lead["stage1"]["common"].get("arch", "resnet50"), self.crop,
                              size)

    @functools.lru_cache(maxsize=None)
    def regressor(self, dim, k, size) -> Probe:
        return regressor_step(dim, k, size)

    @functools.lru_cache(maxsize=None)
    def gan(self, plr: str, aug: str, extractor: str | None, levels: str | None) -> Probe:
        train = dict(self.hsr["train"], ada=aug == "ada", pl_weight=0 if plr == "off" else 2.0)
        hsr = None
        if extractor:
            hsr = {**self.hsr.get("hsr", {}), **self.hsr["extractors"][extractor], "extractor": extractor,
                   "levels": levels, "extractor_weights": "random"}
        return gan_iteration(train, hsr, batch=4)

    @functools.lru_cache(maxsize=None)
    def metric(self, kind: str) -> Probe:
        if kind == "G":
            return generator_forward(self.hsr["train"].get("preset", "paper256"))
        # NVlabs' TorchScript networks have no random init: their torch-fidelity / lpips ports (the same
        # Inception-v3, VGG16 and LPIPS-VGG16 layers) are measured instead
        port = {"nvlabs-inception": "inception", "nvlabs-vgg16": "vgg16", "lpips-vgg": "lpips"}.get(kind, kind)
        return metric_network(port, self.config["geometry"]["resolution"])

    # ---- families
    def cost(self, job: Job) -> JobCost | None:
        method = getattr(self, f"_{job.rule}", None)
        return method(job.wc) if method else None

    def _train_stage1(self, wc):
        if wc["stage1"] not in ("byol", "moco"):
            return None
        opts = {**self.lead["stage1"]["common"], **self.lead["stage1"].get(wc["stage1"], {})}
        n = self._count(self.lead["ssl_store"], "train")
        batch = int(opts.get("batch", 256))
        from lead_hsr.lead.stage1 import EPOCHS
        steps = opts.get("steps") or math.ceil(float(opts.get("epochs", EPOCHS[wc["stage1"]])) * n / batch)
        p = stage1_step(wc["stage1"], opts.get("arch", "resnet50"), self.crop)
        gpus = self._gpus("train_stage1")
        return JobCost(steps * batch * p.flops, p.fixed_bytes + batch / gpus * p.saved_bytes, gpus, p.what)

    def _train_stage2(self, wc):
        opts = {**self.lead["stage2"]["common"], **self.lead["stage2"].get(wc["stage2"], {})}
        n = self._count(self.lead["ssl_store"], "train")
        gpus = self._gpus("train_stage2")
        if wc["stage2"] == "nmf":   # NMF: hypercolumns of nmf_images once, no gradient steps
            p = self.features("hypercolumn", 3840, "none", self.crop // 4)
            return JobCost(256 * p.flops, p.fixed_bytes, gpus, "NMF fit on the hypercolumns of 256 images")
        batch = int(opts.get("batch", 256))
        steps = opts.get("steps") or math.ceil(float(opts.get("epochs", 20)) * n / batch)
        p = stage2_step(wc["stage2"], int(wc["dim"]), wc["proj"], opts.get("arch", "resnet50"), self.crop)
        return JobCost(steps * batch * p.flops, p.fixed_bytes + batch / gpus * p.saved_bytes, gpus, p.what)

    def _regression(self, wc, store, runs):
        """runs: [(steps, images per step, training images)]; descriptors at crop / feature_stride."""
        reg = self.lead["regression"]
        size = self.crop // int(reg.get("feature_stride", 2))
        kind, dim, proj = self._source(wc)
        f, r = self.features(kind, dim, proj, size), self.regressor(dim, self._landmarks(store), size)
        test = self._count(store, "test")
        cache = float(reg.get("feature_cache_gb", 8)) * 1e9
        flops = 0.0
        for steps, batch, n_train in runs:
            frozen = (n_train + test) * dim * size * size * 4 > cache   # FrozenFeatures: extract every batch
            flops += steps * batch * (r.flops + (f.flops if frozen else 0)) + (n_train + test) * f.flops
        batch = max(b for _, b, _ in runs)
        return JobCost(flops, f.fixed_bytes + r.fixed_bytes + batch * r.saved_bytes, 1, r.what)

    def _regress_all(self, wc):
        store = self.lead["datasets"][wc["dataset"]]["store"]
        reg = self.lead["regression"]
        batch = int(reg.get("regressor", {}).get("batch_size", 32))
        return self._regression(wc, store, [(int(reg["steps"]), batch, self._count(store, "train"))])

    def _regress_scale(self, wc):
        store = self.lead["scale"]["store"]
        reg = {**self.lead["regression"], **self.lead["scale"].get("regression", {})}
        batch = int(reg.get("regressor", {}).get("batch_size", 32))
        return self._regression(wc, store, [(int(reg["steps"]), batch, self._count(store, "train"))])

    def _regress_fewshot(self, wc):
        store = self.lead["datasets"][wc["dataset"]]["store"]
        reg, fewshot = self.lead["regression"], self.lead["fewshot"]
        batch = int(reg.get("fewshot_regressor", {}).get("batch_size", 32))
        runs = [(int(reg["fewshot_steps"]), min(batch, c), c) for c in fewshot["counts"] for _ in fewshot["seeds"]]
        return self._regression(wc, store, runs)

    def _match_landmarks(self, wc):
        kind, dim, proj = self._source(wc)
        f = self.features(kind, dim, proj, self.crop)
        return JobCost(2 * int(self.lead["matching"]["pairs"]) * f.flops, f.fixed_bytes, 1, f.what)

    def _train_gan(self, wc, kimg):
        hsr = None if wc.get("hsr", "none") == "none" else wc["hsr"]
        p = self.gan(wc["plr"], wc["aug"], hsr, wc["hsr_levels"] if hsr else None)
        gpus = self._gpus("train_gan")
        batch = int(self.hsr["train"].get("batch", 16))
        return JobCost(kimg * 1000 * p.flops, p.fixed_bytes + batch / gpus * p.saved_bytes, gpus, p.what)

    def _train_gan_prefix(self, wc):     # the baseline's first hsr.start_kimg (the HSR runs start from it)
        return self._train_gan(wc, float(self.hsr["start_kimg"]))

    def _train_gan_baseline(self, wc):   # continues the prefix's trainer state to total_kimg
        return self._train_gan(wc, float(self.hsr["train"]["total_kimg"]) - float(self.hsr["start_kimg"]))

    def _train_gan_hsr(self, wc):
        return self._train_gan(wc, float(self.hsr["train"]["total_kimg"]) - float(self.hsr["start_kimg"]))

    def _gan_metrics(self, wc):
        m = self.hsr["metrics"]
        fid, pr, ppl = int(m["fid"]["num_gen"]), int(m["pr"]["num_gen"]), int(m["ppl"]["num_samples"])
        g = self.metric("G")
        flops = (fid + pr + 2 * ppl) * g.flops + fid * self.metric(m["fid"]["extractor"]).flops \
            + pr * self.metric(m["pr"]["extractor"]).flops + ppl * self.metric("lpips").flops  # any PPL distance:
        # LPIPS-VGG16 (NVlabs' TorchScript or the lpips package)
        return JobCost(flops, g.fixed_bytes, 1, "generated images (real-image features: cached per store, "
                                                  "not counted)")


# ------------------------------------------------------------------------------------------ the table
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
                                       "unit": "", "modelled": cost is not None})
        row["jobs"] += 1
        if cost is not None:
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lead_hsr.metrics.budget", description=__doc__.split("\n")[0])
    parser.add_argument("--configfile", type=Path, default=REPO / "config" / "config.yaml")
    parser.add_argument("--gpu", default=DEFAULT_GPU, choices=sorted(GPU_PEAK_TFLOPS))
    parser.add_argument("--utilisation", type=float, default=DEFAULT_UTILISATION,
                        help="fraction of the dense peak reached (default %(default)s)")
    parser.add_argument("--out", type=Path, help="also write the Markdown table here (atomically)")
    args = parser.parse_args(argv)
    text = budget(args.configfile, args.gpu, args.utilisation)
    if args.out:
        from lead_hsr.atomic import atomic_write_text
        atomic_write_text(text, args.out)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
