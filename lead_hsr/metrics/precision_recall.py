"""Improved precision and recall (Kynkaanniemi et al. 2019) on VGG16 fc2 features (DESIGN §7).

Each set defines a manifold: the union of balls around its points with radius = distance to the k-th nearest
neighbour (the point itself excluded). Precision = share of generated points inside the real manifold;
recall = share of real points inside the generated manifold. Distances are computed in row/column batches so
50k x 200k never sits in memory at once. (StyleGAN2-ADA stores the features in float16; we keep float32.)
"""
from __future__ import annotations

import numpy as np
import torch

from lead_hsr.errors import InputError
from lead_hsr.metrics.fid import generated_sample_set
from lead_hsr.report.samples import ratio_entry

PR_NEIGHBOURHOOD = 3  # k of the k-NN radius: Kynkaanniemi et al. 2019 and StyleGAN2-ADA pr50k3 (nhood_size=3)
PR_NUM_GEN = 50_000  # StyleGAN2-ADA pr50k3_full: 50k generated ...
PR_MAX_REAL = 200_000  # ... vs up to 200k real images
PR_BATCH = 10_000  # StyleGAN2-ADA row/column batch size


def _distances(rows: torch.Tensor, columns: torch.Tensor, batch: int) -> torch.Tensor:
    return torch.cat([torch.cdist(rows, part) for part in columns.split(batch)], dim=1)


def knn_radii(manifold: torch.Tensor, k: int = PR_NEIGHBOURHOOD, batch: int = PR_BATCH) -> torch.Tensor:
    """Distance from each point to its k-th nearest neighbour within the set (k + 1 counts the point itself)."""
    return torch.cat([_distances(rows, manifold, batch).kthvalue(k + 1, dim=1).values
                      for rows in manifold.split(batch)])


def inside_manifold(probes: torch.Tensor, manifold: torch.Tensor, radii: torch.Tensor,
                    batch: int = PR_BATCH) -> torch.Tensor:
    """Boolean per probe: within radius of at least one manifold point (boundary counts as inside)."""
    return torch.cat([(_distances(rows, manifold, batch) <= radii).any(dim=1) for rows in probes.split(batch)])


def precision_recall(generated: np.ndarray, real: np.ndarray, k: int = PR_NEIGHBOURHOOD,
                     batch: int = PR_BATCH, device: str | torch.device = "cpu") -> tuple[float, float]:
    generated_inside, real_inside = manifold_flags(generated, real, k, batch, device)
    return float(generated_inside.mean()), float(real_inside.mean())


def manifold_flags(generated: np.ndarray, real: np.ndarray, k: int = PR_NEIGHBOURHOOD, batch: int = PR_BATCH,
                   device: str | torch.device = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Per generated image: inside the real manifold (precision is their mean); per real image: inside the
    generated manifold (recall is their mean). Float64 0/1 arrays."""
    for name, features in (("generated", generated), ("real", real)):
        if len(features) <= k:
            raise InputError(f"{len(features)} {name} feature vectors: expected more than k = {k} for k-NN "
                             f"radii. Fix: raise the number of {name} images in the metric config")
    generated = torch.as_tensor(np.asarray(generated, dtype=np.float32), device=device)
    real = torch.as_tensor(np.asarray(real, dtype=np.float32), device=device)
    generated_inside = inside_manifold(generated, real, knn_radii(real, k, batch), batch)
    real_inside = inside_manifold(real, generated, knn_radii(generated, k, batch), batch)
    return generated_inside.double().cpu().numpy(), real_inside.double().cpu().numpy()


def pr_for_generator(G, real_images: np.ndarray, dataset_key: str, extractor, cache_dir,
                     num_gen: int = PR_NUM_GEN, max_real: int = PR_MAX_REAL, batch_size: int = 32, seed: int = 0,
                     device="cpu", source_id: str | None = None) -> dict:
    """Precision/recall of a generator vs the first `max_real` real images (VGG16 fc2 extractor in the paper)."""
    from lead_hsr.metrics.features import generated_features, real_features

    real = real_features(real_images, dataset_key, extractor, cache_dir, max_items=max_real,
                         source_id=source_id)
    generated = generated_features(G, extractor, num_gen, batch_size, seed, device)
    generated_inside, real_inside = manifold_flags(generated, real, device=device)
    # per-sample entries for the orderings' bootstrap (popped by the caller): precision resamples the generated
    # images with the real manifold fixed, recall the real images with the generated manifold fixed
    samples = {"precision": ratio_entry(generated_inside, np.ones_like(generated_inside),
                                        generated_sample_set(seed, num_gen)),
               "recall": ratio_entry(real_inside, np.ones_like(real_inside),
                                     f"real images of {dataset_key} (n={len(real)})")}
    return {"precision": float(generated_inside.mean()), "recall": float(real_inside.mean()),
            "k": PR_NEIGHBOURHOOD, "num_gen": num_gen, "num_real": len(real), "seed": seed, **extractor.record,
            "samples": samples}
