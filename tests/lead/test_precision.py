"""bf16/fp16 autocast of LEAD stage 2 and of the landmark regressor, executed on the CPU.

What a low-precision step may differ from the fp32 step by: the networks run in bf16/fp16, so the gradient moves
by about what the fp32 gradient itself moves when its inputs and weights are rounded once to that dtype (the
"rounding floor", measured here in fp32 on the same batch). Autocast rounds again at every layer instead of
once, so the error is a small multiple of the floor: measured 1.2-1.9x here (docs/fidelity.md); the tolerance is
ROUNDING_FACTOR = 4 x floor. The bugs these tests exist for (a loss computed in bf16, fp16 gradients applied
still scaled by 2^16, inf/NaN, a step skipped for good, a GradScaler not restored on resume) are far beyond
it. The losses themselves run in full precision under autocast: there the comparison is exact.
"""

import pytest
import torch

from lead_hsr.lead import dense_objectives as do
from lead_hsr.lead import regressor as reg
from lead_hsr.lead import stage2
from lead_hsr.lead.augment import AugmentConfig, augment_view
from lead_hsr.lead.common import load_batch, training_images
from lead_hsr.train import CHECKPOINT_NAME, autocast_for, grad_scaler_for, step_generator
from lead_hsr.train.device import AUTOCAST_DTYPES

from tiny_data import random_teacher, tiny_store

torch.set_num_threads(1)
ROUNDING_FACTOR = 4.0
# crop 64: at 32 px the FPN's 1/32 branch is 1x1 and its BatchNorm over 4 values makes the fp32 gradient itself
# chaotic (rounding the input to bf16 moves it by 120%); at 64 px the floor is ~30% (random-init network)
TINY = {"crop": 64, "batch": 4, "dim": 16, "proj_head": "64", "fpn_dim": 16, "device": "cpu", "steps": 2}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("precision")
    store = tiny_store(root / "store", n_train=8, size=72)
    return store, random_teacher(store, root / "teacher.pt", crop=64)


# --- the losses: full precision inside autocast ----------------------------------------------------------------


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_losses_compute_in_full_precision_under_autocast(precision):
    gen = torch.Generator().manual_seed(0)
    student = torch.randn(4, 16, 12, 12, generator=gen)
    teacher = torch.randn(4, 40, 12, 12, generator=gen)
    hyper = torch.rand(2, 40, 12, 12, generator=gen)
    projector = do.CLProjector(40, 16, softargmax_mul=6.5)

    def run(autocast: bool):
        x = student.clone().requires_grad_()
        projector.zero_grad()
        context = torch.autocast("cpu", dtype=AUTOCAST_DTYPES[precision]) if autocast else torch.autocast(
            "cpu", enabled=False)
        with context:
            lead = do.lead_loss(x, do.pair_targets(x), teacher, do.pair_targets(teacher), chunk_size=50)
            cl = do.cl_dense_correlation_loss(x, stride=4, temperature=8.0)
            projected = projector(hyper)
        (lead + cl).backward()
        return lead, cl, x.grad, projected

    exact, low = run(False), run(True)
    for name, a, b in zip(("lead loss", "cl loss", "d loss / d features"), exact[:3], low[:3]):
        assert torch.equal(a, b), name
    # the projector's 1x1 conv runs in low precision, its spatial softmax in full precision (float32 out)
    assert low[3].dtype == torch.float32
    torch.testing.assert_close(low[3].sum((2, 3)), torch.ones(2, 16), rtol=0, atol=1e-6)


# --- stage 2: one real step in bf16/fp16 vs fp32 -----------------------------------------------------------------


def _stage2_step(store_path, teacher_path, objective, precision, round_to=None, init_scale=8.0):
    """{name: gradient} of the first real step_fn step (lr 0: the weights stay, .grad is what the step applied) and
    its scalars. round_to: instead an fp32 step whose input batch and weights (student and teacher) are first
    rounded to that dtype: the rounding floor. init_scale: fp16's first GradScaler scale (see the test)."""
    opts = stage2._resolve(TINY | {"objective": objective, "precision": precision, "lr": 0.0, "weight_decay": 0.0})
    teacher = stage2._teacher(teacher_path, "cpu")
    torch.manual_seed(0)
    student = stage2._student(opts, teacher)
    store, indices = training_images(store_path, "train", TINY["crop"], "test")
    if round_to is not None:
        with torch.no_grad():
            for p in list(student.parameters()) + list(teacher.parameters()):
                p.copy_(p.to(round_to).float())
        x = augment_view(load_batch(store, indices, 0, TINY["batch"], 0, "cpu"),
                         AugmentConfig(crop=TINY["crop"], **stage2.STAGE2_AUGMENT), step_generator(0, 0))
        student.train()
        if objective == "cl":
            student.net.eval()
        stage2.objective_loss(student, teacher, x.to(round_to).float(), opts).backward()
        return {}, _grads(student)
    optimizer = torch.optim.Adam([p for p in student.parameters() if p.requires_grad], lr=0.0)
    scaler = torch.amp.GradScaler("cpu", init_scale=init_scale) if precision == "fp16" else None
    step_fn = stage2.make_step_fn(student, teacher, optimizer, store, indices, opts, 1, torch.device("cpu"), scaler)
    return step_fn(0), _grads(student)


def _grads(model) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.requires_grad and p.grad is not None}


def _rel(a: dict, b: dict, prefix: str = "") -> float:
    names = [n for n in b if n.startswith(prefix)]
    assert names and set(a) == set(b)
    diff = torch.cat([(a[n] - b[n]).flatten() for n in names])
    return (diff.norm() / torch.cat([b[n].flatten() for n in names]).norm()).item()


# the output layers: the FPN model's projection head, CL's projector (all CL trains)
OUTPUT_LAYERS = {"lead": "net.head.", "cl": "projector."}


@pytest.mark.parametrize("objective", ["lead", "cl"])
def test_stage2_step_in_bf16_and_fp16_is_the_fp32_step_within_rounding(setup, objective):
    """fp16 starts its GradScaler at 8: this random network's first step overflows fp16 at any scale above 32
    (the default 2^16 backs off by 2 per skipped try, 11 tries here; tested on the regressor, where it is cheap)."""
    store, teacher = setup
    exact_scalars, exact = _stage2_step(store, teacher, objective, "none")
    for precision, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
        scalars, low = _stage2_step(store, teacher, objective, precision)
        _, rounded = _stage2_step(store, teacher, objective, "none", round_to=dtype)
        assert all(torch.isfinite(g).all() for g in low.values())
        for part in ("", OUTPUT_LAYERS[objective]):
            floor, error = _rel(rounded, exact, part), _rel(low, exact, part)
            print(f"{objective} {precision} {part or 'all'}: gradient error {error:.3e}, floor {floor:.3e} "
                  f"(x{error / floor:.2f}); loss {scalars['loss']:.6f} vs {exact_scalars['loss']:.6f}")
            assert error <= ROUNDING_FACTOR * floor, (precision, part, error, floor)
        # the loss value moves by 3e-4..5e-3 (relative; cl bf16 the most: its x6.5 spatial softmax of the conv)
        assert abs(scalars["loss"] - exact_scalars["loss"]) <= 2e-2 * abs(exact_scalars["loss"])
        if precision == "fp16":
            assert scalars["loss_scale"] == 8.0  # no overflow: the gradients applied were the unscaled ones


def _final_state(work_dir):
    return torch.load(work_dir / CHECKPOINT_NAME, weights_only=True)["state"]


@pytest.mark.parametrize("objective,precision", [("lead", "bf16"), ("lead", "fp16")])
def test_stage2_low_precision_run_resumed_equals_uninterrupted(setup, tmp_path, objective, precision):
    """fp16: this random network overflows fp16 at the default scale, so every step here is skipped and the
    GradScaler halves its scale each time: a resume that did not restore the scaler would end at another scale."""
    store, teacher = setup
    opts = TINY | {"crop": 32, "steps": 2, "checkpoint_every": 1, "objective": objective, "precision": precision}
    stage2.train_stage2(store, teacher, tmp_path / "full.pt", opts, tmp_path / "full")
    with pytest.raises(SystemExit):
        stage2.train_stage2(store, teacher, tmp_path / "r.pt", opts, tmp_path / "r", time_budget_s=1e-3)
    assert torch.load(tmp_path / "r" / CHECKPOINT_NAME, weights_only=True)["step"] == 1
    stage2.train_stage2(store, teacher, tmp_path / "r.pt", opts, tmp_path / "r")
    full = torch.load(tmp_path / "full.pt", weights_only=True)["state_dict"]
    resumed = torch.load(tmp_path / "r.pt", weights_only=True)["state_dict"]
    for name, value in full.items():
        assert torch.equal(value, resumed[name]), name
    full_state, resumed_state = _final_state(tmp_path / "full"), _final_state(tmp_path / "r")
    assert ("scaler" in full_state) == (precision == "fp16")  # bf16/fp32 checkpoints keep their old set of states
    if precision == "fp16":
        assert full_state["scaler"] == resumed_state["scaler"]
        assert full_state["scaler"]["scale"] < 2.0 ** 16  # the scale really moved during the run


# --- regressor ---------------------------------------------------------------------------------------------------


def _regressor_batch():
    from test_regressor import _blob_features
    feats, pixels = _blob_features(16, seed=0)
    return feats, pixels


def _regressor_grads(precision, feats, pixels, round_to=None):
    torch.manual_seed(0)
    model = reg.LandmarkRegressor(feats.shape[1], pixels.shape[1])
    if round_to is not None:
        with torch.no_grad():
            model.project.weight.copy_(model.project.weight.to(round_to).float())
        feats = feats.to(round_to).float()
    target = reg.pixels_to_unit(pixels, 24, "dve")
    with autocast_for("cpu", precision):
        pred = model(feats)
    assert pred.dtype == torch.float32
    loss = reg.regression_loss(pred, target)
    scaler = grad_scaler_for("cpu", precision)
    scaler.scale(loss).backward()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.0)
    scaler.unscale_(optimizer) if scaler.is_enabled() else None
    return loss.item(), _grads(model)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_regressor_step_in_low_precision_is_the_fp32_step_within_rounding(precision):
    """Only the 1x1 projection runs in bf16/fp16 (one rounding stage): measured 1.2x (bf16) and 1.6x (fp16) the
    rounding floor on blob features with the protocol's std-1 filters."""
    feats, pixels = _regressor_batch()
    loss, exact = _regressor_grads("none", feats, pixels)
    low_loss, low = _regressor_grads(precision, feats, pixels)
    _, rounded = _regressor_grads("none", feats, pixels, round_to=AUTOCAST_DTYPES[precision])
    floor, error = _rel(rounded, exact), _rel(low, exact)
    print(f"regressor {precision}: gradient error {error:.3e}, floor {floor:.3e}; loss {low_loss:.6f} vs {loss:.6f}")
    assert error <= ROUNDING_FACTOR * floor
    assert abs(low_loss - loss) <= 1e-3 * loss


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_regressor_fit_in_low_precision_follows_fp32_and_resumes_exactly(tmp_path, precision):
    """bf16: 6 steps end within 10% of the fp32 run's update (measured 1-2%). fp16: the x100 soft-argmax makes
    the default 2^16-scaled gradients overflow, so the GradScaler skips the first step(s) and halves its scale
    (fewer updates: not comparable step for step; the step test above checks its accuracy)."""
    feats, pixels = _regressor_batch()
    base = dict(batch_size=8, filter_init_std=0.1, lr=0.01)
    fits = {name: reg.fit_regressor(feats, pixels, 24, steps=6, seed=0, work_dir=tmp_path / name, log_every=1,
                                    options=reg.RegressorOptions(**base, precision=name))
            for name in ("none", precision)}
    if precision == "bf16":
        torch.manual_seed(0)  # fit_regressor seeds the same way: the shared initial weights
        start = reg.LandmarkRegressor(feats.shape[1], pixels.shape[1], filter_init_std=0.1).state_dict()
        for name, init in start.items():
            exact, low = fits["none"].state_dict()[name], fits[precision].state_dict()[name]
            ratio = ((low - exact).norm() / (exact - init).norm()).item()
            print(f"regressor fit bf16 {name}: |bf16 - fp32| / |fp32 update| = {ratio:.3e}")
            assert ratio <= 0.1, name
    else:
        scales = [float(row.split(",")[-1]) for row in (tmp_path / "fp16" / "log.csv").read_text().splitlines()[1:]]
        assert scales == sorted(scales, reverse=True) and 2.0 ** 12 <= scales[-1] <= 2.0 ** 15, scales
        assert all(torch.isfinite(v).all() for v in fits["fp16"].state_dict().values())
    # resume: stopped by the time budget after its first step, then continued: bitwise the uninterrupted run
    options = reg.RegressorOptions(**base, precision=precision)
    with pytest.raises(SystemExit):
        reg.fit_regressor(feats, pixels, 24, steps=6, seed=0, work_dir=tmp_path / "r", options=options,
                          time_budget_s=1e-3)
    resumed = reg.fit_regressor(feats, pixels, 24, steps=6, seed=0, work_dir=tmp_path / "r", options=options)
    for name, value in fits[precision].state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name
    state, resumed_state = _final_state(tmp_path / precision), _final_state(tmp_path / "r")
    assert ("scaler" in state) == (precision == "fp16")
    if precision == "fp16":
        assert state["scaler"] == resumed_state["scaler"]
