"""Stage 1 (BYOL) and stage 2 with `compile`: the compiled step gives the eager step's loss and gradients, the
weights keep their eager names, and an eager run resumes compiled.

Compiled with `aot_eager` ($LEAD_HSR_COMPILE_BACKEND: the captured forward and backward graphs, without inductor's
code generation, tens of CPU-seconds per graph); tests/train/test_compile.py runs inductor itself."""
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import stage_run  # noqa: E402
from tiny_data import random_teacher, tiny_store  # noqa: E402

from lead_hsr.errors import InputError  # noqa: E402
from lead_hsr.lead import stage1, stage2  # noqa: E402
from lead_hsr.lead.common import training_images  # noqa: E402
from lead_hsr.train import compile as compile_mod  # noqa: E402
from lead_hsr.train.device import default_dtype  # noqa: E402

STAGE1 = {"arch": "resnet18", "crop": 32, "batch": 4, "proj_hidden": 32, "proj_dim": 16, "queue": 8, "device": "cpu",
          "epochs": 1}
STAGE2 = {"crop": 32, "batch": 4, "dim": 16, "proj_head": "64", "fpn_dim": 16, "teacher_norm": "layer",
          "device": "cpu", "steps": 2}


@pytest.fixture(autouse=True)
def aot_eager(monkeypatch):
    monkeypatch.setenv(compile_mod.BACKEND_ENV, "aot_eager")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("stage_compile")
    random_teacher(tiny_store(root / "store", 12, 40), root / "teacher.pt", crop=32)
    return root


def _grads(params):
    return [p.grad.clone() for p in params]


def _stage1_steps(root, objective: str, compile: bool) -> list:
    """(loss, online gradients) after each of two steps (lr 0: the weights stay, .grad is the step's)."""
    opts = stage1.DEFAULTS | STAGE1 | {"objective": objective, "compile": compile, "lr": 0.0, "weight_decay": 0.0}
    store, indices = training_images(root / "store", "train", 32, "test")
    torch.manual_seed(0)
    model = stage1.build_ssl_model(opts)
    step_fn = stage1.make_step_fn(model, stage1.build_optimizer(model, opts), store, indices, opts, 3, "cpu")
    out = []
    for step in range(2):
        loss = step_fn(step)["loss"]
        out.append((loss, _grads(model.online_parameters())))
    return out


@pytest.mark.parametrize("objective", ["byol", "moco"])
def test_stage1_compiled_step_equals_eager(root, objective):
    for (loss_e, grads_e), (loss_c, grads_c) in zip(_stage1_steps(root, objective, False),
                                                                      _stage1_steps(root, objective, True)):
        assert loss_c == pytest.approx(loss_e, rel=1e-5)
        for a, b in zip(grads_c, grads_e):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
        assert any(g.abs().sum() > 0 for g in grads_c)


@pytest.fixture
def float64():
    """Stage 2 compared in float64: at 32-px crops the FPN's deepest GroupNorm sees one value per group, whose
    gradient is float32 rounding noise amplified by 1/sqrt(eps) (1% of the encoder's gradients, measured); float64
    keeps that noise far below the tolerance in both runs."""
    with default_dtype(torch.float64):
        yield


def _stage2_step(root, compile: bool):
    opts = stage2._resolve(STAGE2 | {"compile": compile, "lr": 0.0})
    teacher = stage2._teacher(root / "teacher.pt", "cpu")
    torch.manual_seed(0)
    student = stage2._student(opts, teacher)
    optimizer = torch.optim.Adam([p for p in student.parameters() if p.requires_grad], lr=0.0)
    store, indices = training_images(root / "store", "train", 32, "test")
    loss = stage2.make_step_fn(student, teacher, optimizer, store, indices, opts, 2, "cpu")(0)["loss"]
    return loss, _grads(p for p in student.parameters() if p.requires_grad), student


def test_stage2_compiled_step_equals_eager_and_saves_eager_names(root, float64):
    loss_e, grads_e, student_e = _stage2_step(root, False)
    loss_c, grads_c, student_c = _stage2_step(root, True)
    assert loss_c == pytest.approx(loss_e, rel=1e-5)
    for a, b in zip(grads_c, grads_e):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-8)   # float64 (rounding amplified as above: 4e-7 measured)
    assert list(student_c.state_dict()) == list(student_e.state_dict())
    assert not any("_orig_mod" in k for k in student_c.state_dict())


def test_stage1_eager_run_resumes_compiled(root, tmp_path):
    """Stopped after its first step (time budget), an eager run continues with compile on (not part of the run's
    identity: the same math) and ends at the uninterrupted eager run's weights, to float rounding; saved weights
    carry the eager names."""
    opts = STAGE1 | {"steps": 3, "checkpoint_every": 1}
    stage_run.run("stage1", root / "store", tmp_path / "ref.pt", tmp_path / "ref", opts)
    with pytest.raises(SystemExit):
        stage1.train_stage1(root / "store", tmp_path / "out.pt", opts, tmp_path / "work", time_budget_s=1e-9)
    stage_run.run("stage1", root / "store", tmp_path / "out.pt", tmp_path / "work", opts | {"compile": True})
    ref = torch.load(tmp_path / "ref.pt", weights_only=True)["state_dict"]
    out = torch.load(tmp_path / "out.pt", weights_only=True)["state_dict"]
    assert list(out) == list(ref)
    for name, tensor in ref.items():
        torch.testing.assert_close(out[name], tensor, rtol=1e-4, atol=1e-5, msg=name)


def test_compile_option_must_be_boolean(root):
    with pytest.raises(InputError, match="compile='true'"):
        stage1.check_options(stage1.DEFAULTS | {"compile": "true"})
    with pytest.raises(InputError, match="compile=1"):
        stage2._resolve(STAGE2 | {"compile": 1})
