"""The GAN's precisions on the CPU (the official fp16 recipe, bf16 autocast) and the StyleGAN2-ADA semantics the
step comparison with the official code found (bench/compare_stylegan2_step.py runs that comparison itself).

Tolerances: a float16 block rounds activations to ~1e-3 relative; Adam's first steps are close to
sign(gradient), so the tests compare losses and gradient directions between precisions, not parameters."""
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
import tiny_gan_run as tiny  # noqa: E402

from lead_hsr.gan import loss as L  # noqa: E402
from lead_hsr.gan.layers import modulated_conv2d  # noqa: E402
from lead_hsr.gan.networks import Discriminator, Generator, fp16_resolution  # noqa: E402


# float16 from 8 px up at 16 px (2 blocks), like paper256's 4 highest of 7 from 32 px up
FP16_RES = 2


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tiny.make_store(tmp_path_factory.mktemp("gan_precision") / "store")


def _trainer(store, **overrides):
    return tiny.make_trainer(store, **overrides)


def test_fp16_resolution_is_the_official_rule():
    assert fp16_resolution(256, 4) == 32            # paper256: blocks 32..256 in float16
    assert fp16_resolution(256, 0) == 512           # none
    assert fp16_resolution(16, 4) == 8              # never below 8


def test_fp16_blocks_run_in_float16_and_match_float32():
    torch.manual_seed(0)
    G32 = Generator(**tiny.TINY_PRESET).eval()
    G16 = Generator(**tiny.TINY_PRESET, num_fp16_res=FP16_RES).eval()
    G16.load_state_dict(G32.state_dict())
    assert [b.use_fp16 for b in G16.synthesis.blocks] == [False, True, True]
    ws = G32.mapping(torch.randn(4, 16))
    img32, feats32, _ = G32.synthesis(ws, noise_mode="const", return_features=True)
    img16, feats16, _ = G16.synthesis(ws, noise_mode="const", return_features=True)
    assert feats16[4].dtype == torch.float32 and feats16[8].dtype == feats16[16].dtype == torch.float16
    assert img16.dtype == torch.float32                     # the RGB skip image stays float32
    err = (img16 - img32).abs().max() / img32.abs().max()
    assert 0 < err < 1e-2
    D32 = Discriminator(**tiny.TINY_PRESET)
    D16 = Discriminator(**tiny.TINY_PRESET, num_fp16_res=FP16_RES)
    D16.load_state_dict(D32.state_dict())
    assert [b.use_fp16 for b in D16.blocks] == [True, True]
    logits32, logits16 = D32(img32), D16(img32)
    assert logits16.dtype == torch.float32
    assert (logits16 - logits32).abs().max() < 1e-2 * logits32.abs().max() + 1e-3


def test_fp16_modulated_conv_prenormalises_against_overflow():
    torch.manual_seed(1)
    x = torch.randn(2, 8, 6, 6)
    w = torch.randn(4, 8, 3, 3) * 300
    styles = torch.randn(2, 8) * 300                      # x * styles * w sums to ~1e6 > float16's 65504
    ref = modulated_conv2d(x.double(), w.double(), styles.double())
    out = modulated_conv2d(x.half(), w, styles)
    assert out.dtype == torch.float16 and torch.isfinite(out).all()
    torch.testing.assert_close(out.double(), ref, atol=5e-3 * ref.abs().max().item(), rtol=0)
    naive = F.conv2d((x * styles[:, :, None, None]).half(), w.half(), padding=1)
    assert not torch.isfinite(naive).all()               # what the pre-normalisation avoids


def _grads_of_phase(trainer, phase):
    torch.manual_seed(7)
    z = trainer.phase_latents()
    real = trainer.data.batch(np.arange(8), "cpu")
    out = {"g_main": lambda: trainer.g_main(z[0]), "d_main": lambda: trainer.d_main(real, z[2]),
           "g_reg": lambda: trainer.g_reg(z[1]), "d_reg": lambda: trainer.d_reg(real)}[phase]()
    module = trainer.G if phase.startswith("g") else trainer.D
    return out, torch.cat([p.grad.flatten().double() for p in module.parameters()])


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
@pytest.mark.parametrize("phase,loss_key", [("g_main", "loss_G"), ("d_main", "loss_D"), ("g_reg", "pl_penalty"),
                                            ("d_reg", "r1_penalty")])
def test_each_phase_in_reduced_precision_follows_float32(store, precision, phase, loss_key):
    out32, g32 = _grads_of_phase(_trainer(store, precision="none"), phase)
    low = _trainer(store, precision=precision, num_fp16_res=FP16_RES)
    out16, g16 = _grads_of_phase(low, phase)
    assert torch.isfinite(g16).all()
    # bf16 keeps 8 bits of mantissa (2^-8 ~ 4e-3 per rounding, many roundings per value), fp16 11
    tol = {"fp16": 0.02, "bf16": 0.1}[precision]
    assert abs(out16[loss_key] - out32[loss_key]) <= tol * abs(out32[loss_key]) + 1e-6
    cosine = F.cosine_similarity(g16, g32, dim=0).item()
    assert cosine > 1 - tol, cosine                       # the same update direction


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_full_steps_in_reduced_precision_are_finite(store, precision):
    trainer = _trainer(store, precision=precision, num_fp16_res=FP16_RES)
    torch.manual_seed(3)
    outs = [trainer.step(s, np.arange(8) + s) for s in range(4)]   # every phase, lazy ones included
    assert {"pl_penalty", "r1_penalty"} <= set(outs[0])
    assert all(math.isfinite(v) for o in outs for v in o.values())
    assert all(torch.isfinite(p).all() for p in trainer.G.parameters())


def test_non_finite_gradients_are_replaced_as_the_official_loop_does(store):
    trainer = _trainer(store)
    p = trainer.D.epilogue_out.bias
    before = p.detach().clone()
    loss = (p * torch.tensor([float("inf")])).sum() + (p * torch.tensor([float("nan")])).sum()
    trainer._step([(trainer.D, trainer.opt_D)], loss)
    assert p.grad.item() == 0.0                        # nan -> 0 (inf + nan = nan)
    trainer._step([(trainer.D, trainer.opt_D)], (p * torch.tensor([float("-inf")])).sum())
    assert p.grad.item() == -1e5 and torch.isfinite(p).all() and not torch.equal(p, before)


def test_regularisation_phases_step_every_parameter(store):
    """The official img*0 / logits*0 terms: every parameter gets a gradient, so Adam advances all of them."""
    trainer = _trainer(store)
    _grads_of_phase(trainer, "g_reg")
    assert all(p.grad is not None for p in trainer.G.parameters())
    assert trainer.G.synthesis.blocks[-1].torgb.bias.grad.abs().max() == 0   # not reached by the penalty
    _grads_of_phase(trainer, "d_reg")
    assert all(p.grad is not None for p in trainer.D.parameters())
    assert trainer.D.epilogue_out.bias.grad.abs().max() == 0


def test_path_length_mean_carries_gradient():
    """penalty_i = (l_i - m)^2 with m = pl_mean + decay * (mean(l) - pl_mean), m not detached (official)."""
    decay = 0.25
    state = L.PathLengthState(decay).double()
    state.pl_mean.fill_(0.5)
    lengths = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64, requires_grad=True)
    state.penalty(lengths).sum().backward()
    m = 0.5 + decay * (7 / 3 - 0.5)
    l = lengths.detach()
    expected = 2 * (l - m) - 2 * decay / 3 * (l - m).sum()
    torch.testing.assert_close(lengths.grad, expected)
    assert state.pl_mean.item() == pytest.approx(m)


def test_style_mixing_draws_in_the_official_order():
    torch.manual_seed(0)
    G = Generator(**tiny.TINY_PRESET)
    z = torch.randn(3, 16)
    torch.manual_seed(11)
    cutoff = torch.empty([], dtype=torch.int64).random_(1, G.num_ws)
    coin = torch.rand([])
    z2 = torch.randn_like(z)
    torch.manual_seed(11)
    mixed = L.mix_styles(G.eval(), z, prob=1.0)
    assert bool(coin < 1.0)
    torch.testing.assert_close(mixed[:, :cutoff], G.mapping(z)[:, :cutoff])
    torch.testing.assert_close(mixed[:, cutoff:], G.mapping(z2)[:, cutoff:])
    after = torch.rand([])
    torch.manual_seed(11)
    L.mix_styles(G, z, prob=0.5)                          # the draws happen whether or not it mixes
    assert torch.rand([]) == after


def test_ada_statistic_counts_the_r1_reals_and_ema_rampup_starts_from_g(store):
    trainer = _trainer(store, ema_rampup=0.05)
    torch.manual_seed(0)
    trainer.step(0, np.arange(8))                          # step 0: Gmain, Greg, Dmain, Dreg
    assert trainer.ada.sign_count.item() == 16             # Dmain's 8 reals + Dreg's 8 reals
    # the ramp-up sees the 0 images before the first step: beta = 0, G_ema becomes G
    for p_ema, p in zip(trainer.G_ema.parameters(), trainer.G.parameters()):
        assert torch.equal(p_ema, p)


def test_every_network_records_its_training_precision():
    from lead_hsr.gan.training import precision_record
    assert precision_record({"options": {"precision": "fp16", "num_fp16_res": 4}}) == {
        "trained": {"precision": "fp16", "num_fp16_res": 4}, "evaluated_in": "float32"}
    assert precision_record({"options": {"precision": "bf16", "num_fp16_res": 4}})["trained"] == {
        "precision": "bf16", "num_fp16_res": 0}
    assert precision_record({"imported": {"G_num_fp16_res": 4}})["trained"] == {"precision": "fp16",
                                                                                "num_fp16_res": 4}
