"""Stage-1/stage-2 entry points on a tiny store: outputs, formats, exact resume of step functions, errors."""

import copy
import json

import numpy as np
import pandas as pd
import pytest
import torch

from lead_hsr.data.store import open_store, write_store
from lead_hsr.errors import InputError
from lead_hsr.lead import stage1, stage2
from lead_hsr.lead.dense_model import extract_features, load_dense_model
from lead_hsr.lead.common import training_images

torch.set_num_threads(1)
TINY1 = {"arch": "resnet18", "crop": 32, "steps": 2, "batch": 4, "proj_hidden": 32, "proj_dim": 16,
         "device": "cpu"}
TINY2 = {"crop": 32, "steps": 2, "batch": 4, "dim": 16, "proj_head": "64", "fpn_dim": 16, "device": "cpu"}


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("lead") / "store"
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 40, 40, 3), dtype=np.uint8)
    table = pd.DataFrame({"file": [f"{i}.png" for i in range(12)], "split": ["train"] * 10 + ["test"] * 2})
    write_store(path, images, None, table, {"name": "tiny"})
    return path


@pytest.fixture(scope="module")
def stage1_weights(store_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("s1") / "byol.pt"
    stage1.train_stage1(store_path, out, TINY1, out.parent / "work")
    return out


def test_stage1_writes_weights_and_options(stage1_weights, store_path):
    opts = json.loads(stage1_weights.with_suffix(".json").read_text())
    assert opts["objective"] == "byol" and opts["total_steps"] == 2 and opts["epochs"] == 200
    payload = torch.load(stage1_weights, weights_only=True)
    assert payload["kind"] == "hypercolumn" and payload["arch"] == "resnet18"
    model = load_dense_model(stage1_weights)
    images = open_store(store_path).images[10:12, 4:36, 4:36]
    feats = extract_features(model, images, size=16, batch=1)
    assert feats.shape == (2, 960, 16, 16) and torch.isfinite(feats).all()
    # evaluation gets per-layer unit-length blocks (layer4 512, layer3 256, layer2 128, layer1 64)
    for block in torch.split(feats, [512, 256, 128, 64], dim=1):
        assert torch.allclose(block.norm(dim=1), torch.ones(2, 16, 16), atol=1e-4)


def test_stage1_moco_and_random_init(store_path, tmp_path):
    stage1.train_stage1(store_path, tmp_path / "moco.pt", TINY1 | {"objective": "moco", "queue": 8},
                        tmp_path / "work")
    assert load_dense_model(tmp_path / "moco.pt").dim == 960
    stage1.write_random_init(store_path, tmp_path / "rand.pt", {"arch": "resnet18", "crop": 32}, bn_images=6)
    rand = load_dense_model(tmp_path / "rand.pt")
    assert rand.config["source"] == "random-init"
    assert not torch.allclose(rand.net.bn1.running_mean, torch.zeros(64))  # statistics from the data


def _snapshot(model, optimizer):
    return copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict())


def test_stage1_step_fn_resumes_exactly(store_path):
    """Steps 0-2 in one go == steps 0 then (state reload) 1-2: all randomness comes from (seed, step)."""
    opts = stage1.DEFAULTS | TINY1 | {"epochs": 1}
    store, indices = training_images(store_path, "train", 32, "test")

    def fresh():
        torch.manual_seed(0)
        model = stage1.build_ssl_model(opts)
        opt = torch.optim.SGD(model.online_parameters(), lr=0.03, momentum=0.9, weight_decay=1e-4)
        return model, opt, stage1.make_step_fn(model, opt, store, indices, opts, 3, "cpu")

    model_a, opt_a, step_a = fresh()
    for step in range(3):
        step_a(step)
    model_b, opt_b, step_b = fresh()
    step_b(0)
    saved = _snapshot(model_b, opt_b)
    torch.manual_seed(123)  # global RNG state must not matter
    model_c, opt_c, step_c = fresh()
    model_c.load_state_dict(saved[0])
    opt_c.load_state_dict(saved[1])
    step_c(1)
    step_c(2)
    for (name, a), c in zip(model_a.state_dict().items(), model_c.state_dict().values()):
        assert torch.equal(a, c), name


@pytest.mark.parametrize("objective,kind", [("lead", "fpn"), ("cl", "cl"), ("cl_fpn", "fpn"), ("nmf", "nmf")])
def test_stage2_objectives_write_loadable_models(objective, kind, store_path, stage1_weights, tmp_path):
    out = tmp_path / f"{objective}.pt"
    opts = stage2.train_stage2(store_path, stage1_weights, out, TINY2 | {"objective": objective, "nmf_images": 4,
                                                                         "nmf_iters": 20}, tmp_path / "work")
    assert json.loads(out.with_suffix(".json").read_text())["objective"] == objective == opts["objective"]
    model = load_dense_model(out)
    assert model.kind == kind and model.dim == 16
    images = open_store(store_path).images[10:12, 4:36, 4:36]
    feats = extract_features(model, images, size=32, batch=2)
    assert feats.shape == (2, 16, 32, 32) and torch.isfinite(feats).all()


def test_stage2_lead_encoder_starts_from_stage1(stage1_weights):
    opts = stage2._resolve(TINY2)
    teacher = stage2._teacher(stage1_weights, "cpu")
    student = stage2._student(opts, teacher)
    assert torch.equal(student.net.encoder.conv1.weight, teacher.net.conv1.weight)


def test_sharpening_defaults_are_the_thesis_settings():
    opts = stage2._resolve({})
    assert opts["tau"] == 0.05 and opts["teacher_tau"] is None and opts["center_teacher"] is False
    assert opts["epochs"] == 20 and opts["batch"] == 256 and opts["dim"] == 64


def test_cl_settings_default_to_contrast_landmark_per_width(stage1_weights, tmp_path):
    """CL README: softargmax_mul 6.5 / temperature 8 at 64-d, 7 / 7 at 128 and 256; train_feature_projector.py
    --adam uses betas (0.5, 0.999). LEAD's objectives keep torch's betas; explicit values win."""
    for dim, expected in ((64, (6.5, 8.0)), (128, (7.0, 7.0)), (256, (7.0, 7.0))):
        opts = stage2._resolve({"objective": "cl", "dim": dim})
        assert (opts["cl_softargmax_mul"], opts["cl_temperature"]) == expected
    assert stage2._resolve({"objective": "cl"})["betas"] == [0.5, 0.999]
    assert stage2._resolve({"objective": "lead"})["betas"] == stage2._resolve({"objective": "cl_fpn"})["betas"] == [
        0.9, 0.999]
    assert stage2._resolve({"objective": "cl", "dim": 64, "cl_temperature": 5.0})["cl_temperature"] == 5.0
    # the projector's multiplier travels in the weights file; files from before it was a setting used 7
    opts = stage2._resolve(TINY2 | {"objective": "cl", "dim": 64})
    student = stage2._student(opts, stage2._teacher(stage1_weights, "cpu"))
    assert student.projector.softargmax_mul == 6.5 and student.config["softargmax_mul"] == 6.5
    from lead_hsr.lead.dense_model import save_dense_weights
    save_dense_weights(tmp_path / "cl.pt", "cl", student.arch, student.config, student)
    assert load_dense_model(tmp_path / "cl.pt").projector.softargmax_mul == 6.5
    old_config = {k: v for k, v in student.config.items() if k != "softargmax_mul"}
    save_dense_weights(tmp_path / "old.pt", "cl", student.arch, old_config, student)
    assert load_dense_model(tmp_path / "old.pt").projector.softargmax_mul == 7.0


def test_bad_inputs_raise_input_error(store_path, stage1_weights, tmp_path):
    with pytest.raises(InputError, match="unknown option"):
        stage1.train_stage1(store_path, tmp_path / "x.pt", TINY1 | {"bacth": 3}, tmp_path / "w")
    with pytest.raises(InputError, match="smaller than the crop"):
        stage1.train_stage1(store_path, tmp_path / "x.pt", TINY1 | {"crop": 64}, tmp_path / "w")
    with pytest.raises(InputError, match="objective"):
        stage2.train_stage2(store_path, stage1_weights, tmp_path / "x.pt", {"objective": "dve"}, tmp_path / "w")
    lead_out = tmp_path / "lead.pt"
    stage2.train_stage2(store_path, stage1_weights, lead_out, TINY2 | {"steps": 1}, tmp_path / "w2")
    with pytest.raises(InputError, match="stage-1"):
        stage2.train_stage2(store_path, lead_out, tmp_path / "y.pt", TINY2, tmp_path / "w3")
    bogus = tmp_path / "bogus.pt"
    torch.save({"a": torch.zeros(1)}, bogus)
    with pytest.raises(InputError, match="bogus.pt"):
        load_dense_model(bogus)
    with pytest.raises(InputError, match="not found"):
        load_dense_model(tmp_path / "missing.pt")


@pytest.mark.parametrize("objective", ["byol", "moco"])
def test_stage1_stopped_by_budget_then_resumed_matches_uninterrupted_run(objective, store_path, tmp_path):
    from lead_hsr.train import TERMINATED_EXIT_CODE

    opts = TINY1 | {"objective": objective, "steps": 3, "queue": 8, "checkpoint_every": 1}
    stage1.train_stage1(store_path, tmp_path / "full.pt", opts, tmp_path / "full")
    with pytest.raises(SystemExit) as stop:  # a tiny budget stops the run after its first step
        stage1.train_stage1(store_path, tmp_path / "resumed.pt", opts, tmp_path / "resumed", time_budget_s=1e-3)
    assert stop.value.code == TERMINATED_EXIT_CODE and not (tmp_path / "resumed.pt").exists()
    partial = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)["step"]
    assert 1 <= partial < 3  # really stopped part-way
    stage1.train_stage1(store_path, tmp_path / "resumed.pt", opts, tmp_path / "resumed")
    full = torch.load(tmp_path / "full.pt", weights_only=True)["state_dict"]
    resumed = torch.load(tmp_path / "resumed.pt", weights_only=True)["state_dict"]
    for name, value in full.items():
        assert torch.equal(value, resumed[name]), name


def test_stage2_stopped_by_budget_then_resumed_matches_uninterrupted_run(store_path, stage1_weights, tmp_path):
    opts = TINY2 | {"steps": 3, "checkpoint_every": 1}
    stage2.train_stage2(store_path, stage1_weights, tmp_path / "full.pt", opts, tmp_path / "full")
    with pytest.raises(SystemExit):
        stage2.train_stage2(store_path, stage1_weights, tmp_path / "r.pt", opts, tmp_path / "r", time_budget_s=1e-3)
    stage2.train_stage2(store_path, stage1_weights, tmp_path / "r.pt", opts, tmp_path / "r")
    full = torch.load(tmp_path / "full.pt", weights_only=True)["state_dict"]
    resumed = torch.load(tmp_path / "r.pt", weights_only=True)["state_dict"]
    for name, value in full.items():
        assert torch.equal(value, resumed[name]), name


def test_untrained_stage2_baseline_gets_data_batchnorm_statistics(store_path, tmp_path):
    """The random-init stage-2 baseline: every BatchNorm (encoder and projection head) takes data statistics."""
    stage1.write_random_init(store_path, tmp_path / "rand.pt", {"arch": "resnet18", "crop": 32}, bn_images=6)
    options = {**TINY2, "objective": "lead"}  # proj_head "64": 1x1 conv -> BatchNorm -> ReLU -> 1x1 conv
    plain = stage2.untrained_model(tmp_path / "rand.pt", options)
    fair = stage2.untrained_model(tmp_path / "rand.pt", options, store_path=store_path, bn_images=6)

    def head_variances(model):
        return [m.running_var for m in model.net.head.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert head_variances(plain) and all(torch.equal(v, torch.ones_like(v)) for v in head_variances(plain))
    assert not any(torch.equal(v, torch.ones_like(v)) for v in head_variances(fair))  # statistics of the data
    weights = {k: v for k, v in fair.state_dict().items() if "running" not in k and "num_batches" not in k}
    assert all(torch.equal(v, plain.state_dict()[k]) for k, v in weights.items())  # only the statistics differ
    assert not fair.training
