"""The CI slice of the paper-scale smoke (config/smoke.yaml): one job of every rule family, through a table and a
figure, at the paper's shapes (ResNet50 3840-d hypercolumns, paper256 G/D at 256x256, ViT-B/16 HSR taps,
Inception-v3/VGG16/LPIPS metric networks), each with a few steps on a few dozen synthetic images."""
from pathlib import Path

from dag_runner import slice_runner

REPO = Path(__file__).resolve().parents[2]
R = "results/smoke"
STAGE1 = "stage1~byol/stage2~none/dim~3840/proj~none"   # 3840-d hypercolumns: the paper's largest descriptors
STAGE2 = "stage1~byol/stage2~lead/dim~64/proj~256"      # LEAD's reported features
GAN_BASELINE = "dataset~ffhq10k/aug~ada/plr~on/hsr~none/hsr_levels~none"   # hsr.figures.als_run's baseline

# rule family -> the target that runs one job of it (its upstream jobs run too)
SLICE_TARGETS = {
    "data_figure": f"{R}/figures/data_mafl.png",
    "regress_all": f"{R}/lead/regression/{STAGE1}/dataset~mafl/annotations~all/seed~0/metrics.json",
    "regress_fewshot": f"{R}/lead/regression/{STAGE1}/dataset~aflw_m/annotations~1/seed~0/metrics.json",
    "match_landmarks": f"{R}/lead/matching/{STAGE2}/metrics.json",
    "regress_scale": f"{R}/lead/scale/{STAGE2}/metrics.json",
    "architecture_card": f"{R}/hsr/arch/paper256.json",
    "gan_metrics": f"{R}/hsr/metrics/{GAN_BASELINE}/metrics.json",
    "table": f"{R}/tables/fig_4.10.md",               # ALS: train_gan_baseline, train_gan_hsr, classifier, gan_als
    "figure": f"{R}/figures/fig_3.6.png",             # part clusters of LEAD stage 1 (BYOL)
}


# snakemake(workdir, *targets, options=(), timeout=3600) on config/smoke.yaml (tests/dag_runner.py)
snakemake = slice_runner("smoke.yaml", timeout=3600)
