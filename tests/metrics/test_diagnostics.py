"""Stage-1 diagnostics: effective rank against known spectra; per-stage matching rows on a tiny store."""
import sys
from pathlib import Path

import pytest
import torch

from lead_hsr.errors import InputError
from lead_hsr.lead.dense_model import load_dense_model
from lead_hsr.metrics import diagnostics

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lead"))
from tiny_data import random_teacher, tiny_store  # noqa: E402


def test_effective_rank_of_known_spectra():
    gen = torch.Generator().manual_seed(0)
    isotropic = torch.randn(20000, 8, generator=gen)
    assert diagnostics.effective_rank(isotropic) == pytest.approx(8.0, rel=0.01)
    line = torch.randn(500, 1, generator=gen) * torch.tensor([[1.0, -2.0, 0.5]])  # all variance on one direction
    assert diagnostics.effective_rank(line) == pytest.approx(1.0, abs=1e-6)
    # two equal directions and a third one: exp(entropy) of (1/2, 1/2, 0) -> 2
    planar = torch.randn(20000, 2, generator=gen) @ torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]) / torch.tensor(
        [2.0 ** 0.5, 1.0, 2.0 ** 0.5])
    assert diagnostics.effective_rank(planar) == pytest.approx(2.0, rel=0.01)
    with pytest.raises(ValueError):
        diagnostics.effective_rank(torch.ones(1, 4))


def test_stage1_report_rows(tmp_path):
    store = tiny_store(tmp_path / "store", n_train=8, size=40, n_test=8, n_landmarks=5)
    weights = random_teacher(store, tmp_path / "w.pt", crop=32)
    rows = diagnostics.stage1_report(weights, store, {"crop": 4, "pairs": 4, "seed": 0, "device": "cpu"})
    assert [r["stages"] for r in rows] == ["layer1", "layer2", "layer3", "layer4", "layer1+layer2+layer3+layer4"]
    assert [r["width"] for r in rows] == [64, 128, 256, 512, 960]  # resnet18 stage widths
    assert all(0 < r["effective_rank"] <= r["width"] for r in rows[:4]) and rows[4]["effective_rank"] is None
    assert all(r["matching_same"] >= 0 and r["matching_different"] >= 0 for r in rows)
    model = load_dense_model(weights)
    whole = diagnostics.StageSubset(model, (1, 2, 3, 4))
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(whole.eval()(x, 32), model(x, 32))  # all stages = the model's own hypercolumns


def test_stage_subset_refuses_other_models():
    class Fake:
        kind = "fpn"
    with pytest.raises(InputError, match="hypercolumn"):
        diagnostics.StageSubset(Fake(), (1,))
