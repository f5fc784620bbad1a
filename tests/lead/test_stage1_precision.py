"""Stage 1 (BYOL, MoCo) trained with precision bf16 / fp16: autocast runs on the CPU too, so these paths execute here.

Before the fixes: MoCo failed in both (its bf16/fp16 keys could not be written into the float32 queue: index_put
dtype error); BYOL ran with its loss (cosine, 2 - 2 cos) and MoCo's logits/cross-entropy in bf16/fp16, the
augmentation (blur convolution) under autocast, and fp16 without loss scaling.

Tolerance of one step against the fp32 step, relative to the size of the update (the gradient: the step's new part
of the SGD update). How much rounding this tiny problem amplifies is measured, not assumed: the same forward/backward
in float32 and float64 from the same state on the same views gives err32 = ||g32 - g64|| / ||g64|| (7.7e-6 BYOL,
4.6e-5 MoCo: a random-init ResNet whose deepest BatchNorm sees 4-8 values per channel amplifies float32's unit
roundoff 2^-24 several hundred-fold). A correct low-precision step is the same computation with a larger unit
roundoff u (bf16 2^-9, fp16 2^-11), so its error is about (u / 2^-24) * err32. Measured on a 2-core AVX2 machine:
BYOL bf16 0.29 (1.16 times that), fp16 0.065 (1.03); MoCo bf16 0.78 (0.52), fp16 0.25 (0.65; its loss and softmax
run in float32 in every precision). The test allows 4 times and requires at least 1/20 of it, so a step that
silently ran in float32 (autocast a no-op) fails as well as one that broke.
"""
import copy
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from tiny_data import tiny_store  # noqa: E402

from lead_hsr.lead import stage1  # noqa: E402
from lead_hsr.lead.augment import AugmentConfig, augment_view, byol_views  # noqa: E402
from lead_hsr.lead.common import load_batch, training_images  # noqa: E402
from lead_hsr.train import CHECKPOINT_NAME, step_generator  # noqa: E402
from lead_hsr.train.device import default_dtype

torch.set_num_threads(1)
OPTS = stage1.DEFAULTS | {"arch": "resnet18", "crop": 32, "batch": 4, "proj_hidden": 32, "proj_dim": 16, "queue": 8,
                          "device": "cpu", "weight_decay": 0.0, "epochs": 1}
UNIT_ROUNDOFF = {"none": 2.0 ** -24, "bf16": 2.0 ** -9, "fp16": 2.0 ** -11}
FACTOR_MAX, FACTOR_MIN = 4.0, 1 / 20
STEPS = 10
# fp16's default GradScaler starts at 2^16, which overflows this problem's first steps (they are skipped while the
# scale backs off: test_fp16_resume_restores_the_grad_scaler); one step is compared at a scale that does not.
FP16_SCALE = 2.0 ** 8


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tiny_store(tmp_path_factory.mktemp("precision") / "store", 10, 40)
    return training_images(path, "train", 32, "test")


def _flat(tensors) -> torch.Tensor:
    return torch.cat([t.detach().flatten().double() for t in tensors])


@pytest.fixture(scope="module", params=["byol", "moco"])
def after_step0(request, store):
    """(objective, model, optimizer) after the fp32 step 0: step 1 is compared (at step 0 MoCo's queue is random and
    its loss 0.03, a near-saturated softmax whose gradient float32 itself gets 1.5% wrong; at step 1 the queue holds
    the first batch's keys and the loss is 1.9)."""
    torch.manual_seed(0)
    opts = OPTS | {"objective": request.param}
    model = stage1.build_ssl_model(opts)
    optimizer = stage1.build_optimizer(model, opts)
    stage1.make_step_fn(model, optimizer, *store, opts, STEPS, "cpu")(0)
    return request.param, model, optimizer


def _copy(start, dtype=torch.float32):
    objective, model, optimizer = start
    model = copy.deepcopy(model).to(dtype)
    opt = stage1.build_optimizer(model, OPTS | {"objective": objective})
    opt.load_state_dict(optimizer.state_dict())
    return objective, model, opt


def _step1(start, precision: str, store):
    """(loss, online gradients (unscaled), parameter change, model) of step 1 through the trainer's step function."""
    objective, model, optimizer = _copy(start)
    opts = OPTS | {"objective": objective, "precision": precision}
    before = _flat(model.online_parameters())
    scaler = torch.amp.GradScaler("cpu", init_scale=FP16_SCALE) if precision == "fp16" else None
    loss = stage1.make_step_fn(model, optimizer, *store, opts, STEPS, "cpu", scaler)(1)["loss"]
    return loss, _flat(p.grad for p in model.online_parameters()), _flat(model.online_parameters()) - before, model


def _model_step1(start, dtype: torch.dtype, store):
    """Step 1's loss and gradients at the model level (same state and views as `_step1`) in `dtype`."""
    objective, model, _ = _copy(start, dtype)
    images = load_batch(*store, 1, OPTS["batch"], 0, "cpu")
    gen, aug = step_generator(0, 1), AugmentConfig(crop=OPTS["crop"])
    if objective == "byol":  # the views in float32, as the trainer draws them
        views = byol_views(images, aug, gen)
    else:
        views = augment_view(images, aug, gen), augment_view(images, aug, gen)
    with default_dtype(dtype):  # full_precision() keeps float32 and float64; the networks are built in the default dtype
        model.train()
        if objective == "moco":
            model.momentum_update()
        loss = model(*(v.to(dtype) for v in views))
        loss.backward()
    return loss.item(), _flat(p.grad for p in model.online_parameters())


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def test_one_low_precision_step_agrees_with_the_fp32_step(after_step0, store):
    loss64, grad64 = _model_step1(after_step0, torch.float64, store)
    loss32, grad32, _, model32 = _step1(after_step0, "none", store)
    assert torch.equal(_model_step1(after_step0, torch.float32, store)[1], grad32)  # same state and views
    err32, loss_err32 = _rel(grad32, grad64), abs(loss32 - loss64) / abs(loss64)
    assert 0 < err32 < 1e-3
    for precision in ("bf16", "fp16"):
        loss, grad, move, model = _step1(after_step0, precision, store)
        assert torch.isfinite(move).all() and move.abs().max() > 0, f"{precision}: the step moved nothing"
        bound = UNIT_ROUNDOFF[precision] / UNIT_ROUNDOFF["none"] * err32
        err = _rel(grad, grad32)
        assert FACTOR_MIN * bound <= err <= FACTOR_MAX * bound, (precision, err, bound)
        loss_bound = UNIT_ROUNDOFF[precision] / UNIT_ROUNDOFF["none"] * max(loss_err32, 1e-7)
        assert abs(loss - loss32) / abs(loss32) <= FACTOR_MAX * loss_bound, (precision, loss, loss32)
        if after_step0[0] == "moco":  # broke before: bf16/fp16 keys into the float32 queue (index_put dtype error)
            assert model.queue.dtype == torch.float32 and int(model.queue_ptr) == 0  # 8 rows, 2 steps of 4
            assert torch.allclose(model.queue.norm(dim=1), torch.ones(8), atol=1e-5)  # normalised in full precision
            assert torch.equal(model.queue[:4], model32.queue[:4])  # step 0's keys (fp32 in both)
            assert _rel(model.queue[4:], model32.queue[4:]) <= FACTOR_MAX * bound


def _train(store_path, out, work, options, budget=None):
    return stage1.train_stage1(store_path, out, options, work, time_budget_s=budget)


def _interrupted_equals_uninterrupted(tmp_path, options):
    store_path = tiny_store(tmp_path / "store", 10, 40)
    _train(store_path, tmp_path / "full.pt", tmp_path / "full", options)
    with pytest.raises(SystemExit):  # a tiny budget stops the run after its first step
        _train(store_path, tmp_path / "resumed.pt", tmp_path / "resumed", options, budget=1e-3)
    partial = torch.load(tmp_path / "resumed" / CHECKPOINT_NAME, weights_only=True)
    assert 1 <= partial["step"] < options["steps"]
    _train(store_path, tmp_path / "resumed.pt", tmp_path / "resumed", options)
    full = torch.load(tmp_path / "full.pt", weights_only=True)["state_dict"]
    resumed = torch.load(tmp_path / "resumed.pt", weights_only=True)["state_dict"]
    for name, value in full.items():
        assert torch.equal(value, resumed[name]), name
    return partial, [torch.load(tmp_path / run / CHECKPOINT_NAME, weights_only=True) for run in ("full", "resumed")]


@pytest.mark.parametrize("objective", ["byol", "moco"])
def test_resumed_bf16_run_equals_uninterrupted_run(objective, tmp_path):
    options = OPTS | {"objective": objective, "precision": "bf16", "steps": 3, "checkpoint_every": 1}
    _, (full, _) = _interrupted_equals_uninterrupted(tmp_path, options)
    assert "scaler" not in full["state"]  # bf16 needs no loss scaling: checkpoints as before


def test_fp16_resume_restores_the_grad_scaler(tmp_path):
    """fp16 scales the loss (GradScaler from grad_scaler_for, 2^16 at first); this problem overflows at that scale,
    so the first steps are skipped while the scale halves. A resumed run that restarted the scale would skip again
    and end with another scale (and, once steps are taken, other weights): it equals the uninterrupted run only
    because the scale is checkpointed. (Batch 2, 2 steps: float16 convolutions run the slow reference kernels on a
    CPU, ~2 s per step here.)"""
    options = OPTS | {"objective": "byol", "precision": "fp16", "steps": 2, "batch": 2, "checkpoint_every": 1}
    partial, (full, resumed) = _interrupted_equals_uninterrupted(tmp_path, options)
    assert partial["state"]["scaler"]["scale"] < 2.0 ** 16  # backed off before the interruption
    assert full["state"]["scaler"]["scale"] == resumed["state"]["scaler"]["scale"] < partial["state"]["scaler"]["scale"]
