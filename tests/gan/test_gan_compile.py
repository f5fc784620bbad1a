"""GAN `compile`: compiled Gmain/Dmain give eager's losses and gradients, the double-backward phases (R1, path
length) still run (eagerly) beside them, checkpoints keep the eager names, a compiled run resumes an eager one.

Unit tests compile with `aot_eager` (the graphs torch.compile captures, without inductor's code generation that
costs tens of CPU-seconds per graph); tests/train/test_compile.py runs the inductor backend itself."""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import tiny_gan_run as tiny  # noqa: E402

from lead_hsr.errors import InputError  # noqa: E402
from lead_hsr.gan.training import PHASES, resolve_options, run_identity, train_gan  # noqa: E402
from lead_hsr.train import compile as compile_mod  # noqa: E402


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tiny.make_store(tmp_path_factory.mktemp("gan_compile") / "store")


@pytest.fixture(autouse=True)
def aot_eager(monkeypatch):
    monkeypatch.setenv(compile_mod.BACKEND_ENV, "aot_eager")


def _grads(module):
    return {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}


def _phase_results(trainer, seed=3):
    """Losses and gradients after each phase of one step (the optimizers step with the gradients kept)."""
    torch.manual_seed(seed)
    real = trainer.data.batch(np.arange(8), trainer.device)
    z = dict(zip(PHASES, trainer.phase_latents()))
    trainer.ada.p.fill_(0.4)   # augmentation on, so its draws interleave with the compiled calls
    out = {}
    out["Gmain"] = (trainer.g_main(z["Gmain"]), _grads(trainer.G))
    out["Greg"] = (trainer.g_reg(z["Greg"]), _grads(trainer.G))
    out["Dmain"] = (trainer.d_main(real, z["Dmain"]), _grads(trainer.D))
    out["Dreg"] = (trainer.d_reg(real), _grads(trainer.D))
    out["rng"] = torch.rand(4)      # the compiled phases drew what the eager ones did, in the same order
    return out


def test_compiled_phases_equal_eager_losses_and_gradients(store):
    eager = _phase_results(tiny.make_trainer(store, hsr=tiny.TINY_HSR))
    fast = _phase_results(tiny.make_trainer(store, hsr=tiny.TINY_HSR, compile=True))
    assert torch.equal(eager["rng"], fast["rng"])
    for phase in PHASES:
        (loss_e, grad_e), (loss_c, grad_c) = eager[phase], fast[phase]
        assert loss_e.keys() == loss_c.keys() and grad_e.keys() == grad_c.keys(), phase
        for name in loss_e:
            assert loss_c[name] == pytest.approx(loss_e[name], rel=1e-5, abs=1e-6), (phase, name)
        for name in grad_e:
            torch.testing.assert_close(grad_c[name], grad_e[name], rtol=1e-4, atol=1e-6, msg=f"{phase} {name}")
        assert any(g.abs().sum() > 0 for g in grad_c.values()), phase


def test_checkpoint_keys_are_the_eager_modules(store):
    trainer = tiny.make_trainer(store, compile=True)
    eager = tiny.make_trainer(store)
    for name, obj in trainer.state().items():
        keys = list(obj.state_dict())
        assert not any("_orig_mod" in str(k) for k in keys), name
        assert keys == list(eager.state()[name].state_dict()), name
    snap = trainer.snapshot(0.0)
    assert list(snap["G"]) == list(eager.G.state_dict()) and list(snap["D"]) == list(eager.D.state_dict())


def test_compile_is_not_part_of_the_run_identity_and_must_be_boolean(store):
    assert run_identity(resolve_options(tiny.tiny_options(compile=True))) == run_identity(
        resolve_options(tiny.tiny_options()))
    with pytest.raises(InputError, match="compile='yes'"):
        tiny.make_trainer(store, compile="yes")


def test_compiled_run_resumes_an_eager_one(store, tmp_path):
    """An eager run stopped at its checkpoint continues compiled (the same math: resume accepts it) and ends where
    an uninterrupted eager run ends, to float rounding."""
    opts = tiny.tiny_options(total_kimg=0.048)                   # 6 steps; checkpoint_every 3
    ref = torch.load(train_gan(store, tmp_path / "ref", opts, tmp_path / "ref_work"), weights_only=True)
    with pytest.raises(SystemExit):
        train_gan(store, tmp_path / "out", opts, tmp_path / "work", time_budget_s=1e-9)   # stops after step 1
    assert torch.load(tmp_path / "work" / "checkpoint.pt", weights_only=True)["step"] == 1
    resumed = torch.load(train_gan(store, tmp_path / "out", dict(opts, compile=True), tmp_path / "work"),
                         weights_only=True)
    assert resumed["options"]["compile"] is True
    for part in ("G", "G_ema", "D"):
        for name, tensor in ref[part].items():
            torch.testing.assert_close(resumed[part][name], tensor, rtol=1e-4, atol=1e-5, msg=f"{part} {name}")
