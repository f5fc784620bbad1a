"""Training-curve figures: gathered from a real run's log.csv/progress.json, one PNG per run, written whole."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lead_hsr.report.training_curves import figure_name, write_training_curves
from lead_hsr.train import RunConfig, train
from lead_hsr.train.progress import curve_data, find_runs, run_curves


def _run(work_dir: Path, unit: str, images_per_step: int, total: int = 12):
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.1)

    def step_fn(step):
        loss = (param - 1) ** 2
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.item(), **({"lazy": 1.0} if step % 4 == 0 else {})}

    cfg = RunConfig(work_dir, total, checkpoint_every=6, log_every=2, images_per_step=images_per_step,
                    progress_unit=unit, tensorboard=False)
    train(cfg, {"param": torch.nn.Linear(1, 1), "opt": opt}, step_fn)


def test_curve_data_and_one_figure_per_run(tmp_path):
    root = tmp_path / "work"
    _run(root / "lead" / "stage1~byol", "steps", 32)
    _run(root / "hsr" / "dataset~x" / "hsr~none", "kimg", 16)
    runs = {run.relative_to(root).as_posix(): curve_data(run) for run in find_runs(root)}
    gan = runs["hsr/dataset~x/hsr~none"]
    assert gan["x_label"] == "kimg" and gan["x"] == pytest.approx([0.032, 0.064, 0.096, 0.128, 0.16, 0.192])
    assert set(gan["series"]) == {"loss", "lazy"}
    assert np.isnan(gan["series"]["lazy"]).tolist() == [False, True] * 3    # logged at steps 0, 4, 8 only
    lead = runs["lead/stage1~byol"]
    assert lead["x_label"] == "step" and lead["x"] == [2, 4, 6, 8, 10, 12]
    assert lead["series"]["loss"][-1] < lead["series"]["loss"][0]      # the logged loss went down

    out = write_training_curves(runs, tmp_path / "results" / "training_curves")
    names = sorted(p.name for p in out.iterdir())
    assert names == ["hsr__dataset~x__hsr~none.png", "lead__stage1~byol.png"]
    assert figure_name("lead/stage1~byol") == "lead__stage1~byol.png"
    width, height = Image.open(out / names[0]).size
    assert width > 400 and height > 200
    # a second drawing replaces the directory whole (no stale figure of a run that is gone)
    write_training_curves({"lead/stage1~byol": lead}, out)
    assert sorted(p.name for p in out.iterdir()) == ["lead__stage1~byol.png"]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".tmp-")]


def test_run_curves_names_runs_under_the_root_and_skips_runs_without_a_log(tmp_path):
    root = tmp_path / "work"
    _run(root / "lead" / "stage1~byol", "steps", 32)
    (root / "lead" / "stage1~random").mkdir(parents=True)          # in the DAG, never logs a row
    curves = run_curves([root / "lead" / "stage1~byol", root / "lead" / "stage1~random"], root)
    assert list(curves) == ["lead/stage1~byol"] and curves["lead/stage1~byol"] == curve_data(root / "lead/stage1~byol")
