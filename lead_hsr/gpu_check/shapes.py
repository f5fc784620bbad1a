"""What the check runs at: the paper's per-GPU shapes read from config/config.yaml (`paper_shapes`), or tiny
shapes that run on a CPU in seconds (`tiny_shapes`, what the test suite runs). Per-GPU batch = the configured
batch / the GPUs its rule asks for (`resources.<rule>.gpu`): each GPU of a DDP job sees that many images."""
from __future__ import annotations

import math
from dataclasses import dataclass

GAN_PRECISIONS = ("none", "fp16", "bf16")   # lead_hsr.train.AUTOCAST_DTYPES order: fp32, the official fp16, bf16
# 16 px, narrow: the float16 blocks of the official recipe run ~10x slower than float32 on a CPU; at the demo
# preset's 32 px one fp16 step takes seconds, here a quarter second
TINY_GAN_PRESET = {"resolution": 16, "z_dim": 32, "w_dim": 32, "channel_base": 256, "channel_max": 32}


@dataclass(frozen=True)
class Shapes:
    name: str
    arch: str
    prepared: int               # landmark images as prepared (136: resized before the 96 crop)
    crop: int
    stage1_batch: int           # per GPU
    stage1_precision: str
    stage2_batch: int           # per GPU
    stage2_precision: str
    stage2_dim: int
    stage2_proj: str
    regressor_batch: int
    regressor_size: int         # descriptors at crop / feature_stride
    n_landmarks: int
    match_batch: int
    gan_preset: str | dict      # a preset name, or a dict over the demo preset (get_preset)
    gan_batch: int              # per GPU
    gan_global_batch: int
    gan_gpus: int
    gan_precision: str          # the config's
    gan_warmup: int
    gan_steps: int              # timed steps: a multiple of both lazy intervals amortises R1 and path length exactly
    metric_extractor: str
    metric_batch: int
    generator_batch: int
    steps: int                  # timed steps of the LEAD families
    compiled_precisions: tuple  # GAN precisions also measured compiled
    warmup: int


def _per_gpu(batch: int, gpus: int, what: str) -> int:
    if batch % gpus:
        raise ValueError(f"{what}: batch {batch} does not split over {gpus} GPUs")
    return batch // gpus


def paper_shapes() -> Shapes:
    from lead_hsr.budget.costs import FIVE_POINTS
    from lead_hsr.budget.dry_run import REPO, load_config
    from lead_hsr.gan.training import DEFAULT_OPTIONS, R1_INTERVAL
    from lead_hsr.lead import stage2
    from lead_hsr.lead.regressor import BATCH_SIZE
    from lead_hsr.metrics.features import DEFAULT_BATCH
    config = load_config(REPO / "config" / "config.yaml")
    lead, train, res = config["lead"], config["hsr"]["train"], config["resources"]
    geometry = config["geometry"]
    crop = geometry["resize"] - 2 * geometry["crop"]
    s1, s2 = lead["stage1"]["common"], lead["stage2"]["common"]
    gan_gpus = int(res["train_gan"]["gpu"])
    pl_interval = int(train.get("pl_interval", DEFAULT_OPTIONS["pl_interval"]))
    return Shapes(
        name="paper", arch=s1["arch"], prepared=geometry["resize"], crop=crop,
        stage1_batch=_per_gpu(int(s1["batch"]), int(res["train_stage1"]["gpu"]), "lead.stage1"),
        stage1_precision=s1.get("precision", "none"),
        stage2_batch=_per_gpu(int(s2["batch"]), int(res["train_stage2"]["gpu"]), "lead.stage2"),
        stage2_precision=s2.get("precision", "none"), stage2_dim=int(stage2.DEFAULTS["dim"]),
        stage2_proj=str(stage2.DEFAULTS["proj_head"]),
        regressor_batch=int(lead["regression"].get("regressor", {}).get("batch_size", BATCH_SIZE)),
        regressor_size=crop // int(lead["regression"].get("feature_stride", 2)), n_landmarks=FIVE_POINTS,
        match_batch=8, gan_preset=train["preset"], gan_batch=_per_gpu(int(train["batch"]), gan_gpus, "hsr.train"),
        gan_global_batch=int(train["batch"]), gan_gpus=gan_gpus, gan_precision=train.get("precision", "fp16"),
        gan_warmup=2, gan_steps=math.lcm(pl_interval, R1_INTERVAL),
        metric_extractor="inception", metric_batch=DEFAULT_BATCH, generator_batch=32, steps=10, warmup=2,
        compiled_precisions=GAN_PRECISIONS)


def tiny_shapes() -> Shapes:
    """resnet18 at 32 px, a 16 px GAN, the random CNN for the metric network: seconds on a CPU."""
    return Shapes(
        name="tiny", arch="resnet18", prepared=40, crop=32, stage1_batch=4, stage1_precision="none",
        stage2_batch=4, stage2_precision="none", stage2_dim=16, stage2_proj="64",
        regressor_batch=4, regressor_size=16, n_landmarks=5, match_batch=2, gan_preset=TINY_GAN_PRESET, gan_batch=4,
        gan_global_batch=4, gan_gpus=1, gan_precision="none", gan_warmup=1, gan_steps=2,
        metric_extractor="random-cnn", metric_batch=8, generator_batch=4, steps=2, warmup=1,
        compiled_precisions=())   # compiling takes CPU minutes (the compile option's own tests cover it)


def preset_label(preset: str | dict) -> str:
    return preset if isinstance(preset, str) else f"{preset['resolution']}px test preset"
