"""Learning happened: short training on synthetic textures changes the networks in the intended direction.

Stage 2 (measured matching): textures with a known shift and a photometric change between the two images;
matching by cosine argmax with the trained stage-2 features beats the same network before training.
Stage 1: the BYOL loss falls. (A short stage-1 run did NOT beat random init at matching in our measurements,
see the LEAD training report; that comparison belongs to the demo-scale integration tests.)
"""

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from lead_hsr.data.store import write_store
from lead_hsr.lead import stage1, stage2
from lead_hsr.lead.dense_model import extract_features, load_dense_model

RESIZE, CROP, MARGIN = 40, 32, 4


def textures(n: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth random colour textures (uint8 n x 40 x 40 x 3): every location is distinctive but not trivially."""
    coarse = torch.from_numpy(rng.random((n, 3, RESIZE // 4, RESIZE // 4))).float()
    fine = torch.from_numpy(rng.random((n, 3, RESIZE // 2, RESIZE // 2))).float()
    x = 0.6 * F.interpolate(coarse, size=(RESIZE, RESIZE), mode="bicubic", align_corners=False)
    x = x + 0.4 * F.interpolate(fine, size=(RESIZE, RESIZE), mode="bilinear", align_corners=False)
    return (x.clamp(0, 1) * 255).byte().permute(0, 2, 3, 1).numpy()


def shifted_pairs(n: int, seed: int):
    """Image A = central crop; image B = crop shifted by (dx, dy) in [-3, 3] with random gain and offset."""
    rng = np.random.default_rng(seed)
    base = textures(n, rng)
    shifts = rng.integers(-3, 4, size=(n, 2))
    a = base[:, MARGIN:MARGIN + CROP, MARGIN:MARGIN + CROP]
    b = np.stack([img[MARGIN + dy:MARGIN + dy + CROP, MARGIN + dx:MARGIN + dx + CROP]
                  for img, (dx, dy) in zip(base, shifts)]).astype(float)
    b = b * rng.uniform(0.6, 1.4, size=(n, 1, 1, 3)) + rng.uniform(-30, 30, size=(n, 1, 1, 1))
    return a, np.clip(b, 0, 255).astype(np.uint8), shifts


def matching_error(model, pairs) -> float:
    """Mean pixel error of cosine-argmax matches of a grid of query points from A into B."""
    a, b, shifts = pairs
    fa = F.normalize(extract_features(model, a, CROP), dim=1)
    fb = F.normalize(extract_features(model, b, CROP), dim=1)
    errors = []
    for i, (dx, dy) in enumerate(shifts):
        for y in range(6, CROP - 6, 3):
            for x in range(6, CROP - 6, 3):
                sim = torch.einsum("c,chw->hw", fa[i, :, y, x], fb[i])
                py, px = divmod(int(sim.argmax()), CROP)
                errors.append(np.hypot(px - (x - dx), py - (y - dy)))
    return float(np.mean(errors))


@pytest.fixture(scope="module")
def texture_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("learning") / "store"
    images = textures(200, np.random.default_rng(0))
    table = pd.DataFrame({"file": [f"{i}.png" for i in range(200)], "split": ["train"] * 200})
    write_store(path, images, None, table, {"name": "textures"})
    return path


def test_stage2_training_improves_matching(texture_store, tmp_path):
    torch.set_num_threads(1)
    teacher = tmp_path / "teacher.pt"
    stage1.write_random_init(texture_store, teacher, {"arch": "resnet18", "crop": CROP}, bn_images=64)
    opts = {"crop": CROP, "steps": 50, "batch": 16, "dim": 32, "proj_head": "64", "fpn_dim": 32,
            "teacher_norm": "layer", "device": "cpu"}
    untrained = stage2._student(stage2._resolve(opts), stage2._teacher(teacher, "cpu"))
    stage2.train_stage2(texture_store, teacher, tmp_path / "lead.pt", opts, tmp_path / "work")
    pairs = shifted_pairs(24, seed=1)
    before = matching_error(untrained, pairs)
    after = matching_error(load_dense_model(tmp_path / "lead.pt"), pairs)
    print(f"stage-2 matching error: untrained {before:.2f} px, trained {after:.2f} px")
    assert after < 0.7 * before, (before, after)
    log = pd.read_csv(tmp_path / "work" / "log.csv")
    assert log["loss"].iloc[-1] < log["loss"].iloc[0]


def test_stage1_byol_loss_falls(texture_store, tmp_path):
    torch.set_num_threads(1)
    opts = {"arch": "resnet18", "crop": CROP, "steps": 40, "batch": 32, "lr": 0.05, "proj_hidden": 256,
            "proj_dim": 64, "device": "cpu"}
    stage1.train_stage1(texture_store, tmp_path / "byol.pt", opts, tmp_path / "work")
    log = pd.read_csv(tmp_path / "work" / "log.csv")
    first, last = log["loss"].iloc[0], log["loss"].iloc[-1]
    print(f"stage-1 BYOL loss: first window {first:.3f}, last window {last:.3f}")
    assert last < 0.95 * first, (first, last)
