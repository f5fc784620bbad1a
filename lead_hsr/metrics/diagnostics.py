"""Why do stage-1 hypercolumns match the way they do? Per-layer matching error and effective rank.

Written for the demo-scale finding of the LEAD issues: short BYOL runs improve the deepest ResNet stage for
cross-identity matching but lower every stage's effective rank (dimensional collapse, Jing et al. 2022), so the
whole hypercolumn can match worse than a random-init network's. Run on any hypercolumn weights:

    python -m lead_hsr.metrics.diagnostics results/demo/lead/stage1/stage1~byol/weights.pt \\
        results/demo/data/prepared/mafl --crop 12 --pairs 100
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lead_hsr.data.geometry import normalize_images
from lead_hsr.data.store import open_store
from lead_hsr.errors import InputError
from lead_hsr.lead.augment import center_crop
from lead_hsr.lead.dense_model import DenseFeatureModel, load_dense_model
from lead_hsr.lead.hypercolumns import hypercolumns
from lead_hsr.metrics.landmarks import match_pairs
from lead_hsr.train import pick_device


def effective_rank(vectors: torch.Tensor) -> float:
    """exp(entropy) of the normalised eigenvalue spectrum of the centred N x C vectors (Roy & Vetterli 2007).

    C for isotropic vectors, 1 when all variance lies along one direction."""
    if vectors.ndim != 2 or len(vectors) < 2:
        raise ValueError(f"effective_rank needs N x C vectors with N >= 2, got shape {tuple(vectors.shape)}")
    centred = vectors.double() - vectors.double().mean(dim=0)
    spectrum = torch.linalg.svdvals(centred) ** 2
    p = spectrum / spectrum.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


class StageSubset(nn.Module):
    """The hypercolumns of some ResNet stages (1 = layer1 ... 4 = layer4) of a hypercolumn model."""

    def __init__(self, model: DenseFeatureModel, stages: tuple[int, ...]):
        super().__init__()
        if model.kind != "hypercolumn":
            raise InputError(f"per-stage diagnostics need stage-1 hypercolumn weights, got a {model.kind!r} model.")
        self.model, self.stages = model, tuple(stages)

    @property
    def dim(self) -> int:
        return sum(self.model.net.stage_dims[i - 1] for i in self.stages)

    def forward(self, x: torch.Tensor, size: int) -> torch.Tensor:
        stages = self.model.net(x)
        return hypercolumns([stages[i - 1] for i in self.stages], size, self.model.config.get("hypercolumn_norm",
                                                                                              "none"))


@torch.no_grad()
def stage_ranks(model: DenseFeatureModel, store_path: Path, crop: int, images: int = 128) -> list[float]:
    """Effective rank of each ResNet stage's feature vectors (all cells of the first test images' crops)."""
    store = open_store(store_path)
    rows = store.split("test")[:images]
    full = np.asarray(store.images[rows])
    size = full.shape[1] - 2 * crop
    device = next(model.parameters()).device
    stages = model.net(center_crop(normalize_images(full, device), size))
    return [effective_rank(s.permute(0, 2, 3, 1).reshape(-1, s.shape[1]).cpu()) for s in stages]


def stage1_report(weights: Path, store_path: Path, options: dict) -> list[dict]:
    """One row per stage (and one for all of them): width, effective rank, same/different matching error."""
    device = pick_device(options.get("device", "cpu"))
    model = load_dense_model(weights, device)
    ranks = stage_ranks(model, store_path, int(options["crop"]))
    rows = []
    for stages in [(1,), (2,), (3,), (4,), (1, 2, 3, 4)]:
        subset = StageSubset(model, stages).eval()
        result = match_pairs(subset, store_path, options, device)
        rows.append({"stages": "+".join(f"layer{i}" for i in stages), "width": subset.dim,
                     "effective_rank": ranks[stages[0] - 1] if len(stages) == 1 else None,
                     "matching_same": result.same, "matching_different": result.different})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights", type=Path, help="stage-1 hypercolumn weights (lead/stage1/.../weights.pt)")
    parser.add_argument("store", type=Path, help="prepared MAFL store (the matching protocol's pairs)")
    parser.add_argument("--crop", type=int, required=True, help="geometry.crop of the config (12 demo, 20 paper)")
    parser.add_argument("--pairs", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    rows = stage1_report(args.weights, args.store, {"crop": args.crop, "pairs": args.pairs, "seed": args.seed,
                                                      "device": args.device})
    print(f"{'stages':28s} {'width':>5s} {'eff. rank':>9s} {'same px':>8s} {'diff px':>8s}")
    for row in rows:
        rank = "" if row["effective_rank"] is None else f"{row['effective_rank']:.1f}"
        print(f"{row['stages']:28s} {row['width']:5d} {rank:>9s} {row['matching_same']:8.2f} "
              f"{row['matching_different']:8.2f}")


if __name__ == "__main__":
    main()
