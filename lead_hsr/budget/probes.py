"""One unit of each rule family's own code (one training sample, one generated image, ...), built at the
configured shapes on PyTorch's meta device (no weights, no data, seconds on a CPU) and counted by
`lead_hsr.budget.counting`: the GAN trainer's four phases (`GanTrainer.g_main/g_reg/d_main/d_reg`), BYOL/MoCo,
the stage-2 objectives, the landmark regressor, the metric networks. A trainer whose step changes stays
measurable as long as it runs on meta tensors (`counting.measure` gives their scalars a value)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from lead_hsr.budget.counting import measure, state_bytes


@dataclass(frozen=True)
class Probe:
    """Cost of one unit of a rule family (one training sample, one generated image, ...)."""
    flops: float           # per sample
    saved_bytes: float     # per sample
    fixed_bytes: float     # per GPU, independent of the batch
    what: str


def _gan_trainer(train: dict, hsr: dict | None, batch: int):
    from lead_hsr.gan.training import GanTrainer, resolve_options
    keys = {"preset", "lr", "gamma", "pl_weight", "pl_interval", "r1_interval", "pl_batch_shrink", "ada"}
    opts = resolve_options({**{k: v for k, v in train.items() if k in keys}, "batch": batch, "hsr": hsr,
                            "device": "meta", "precision": "none"})     # measured in float32 (lead_hsr.budget.counting)
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
