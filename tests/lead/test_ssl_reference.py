"""Stage-1 settings where the references differ (lead_hsr/lead/stage1.py DEFAULTS), each checked against an independent
computation, and BYOL against byol-pytorch in float64 (one step: loss, every gradient, the SGD step, the EMA).
bench/compare_ssl.py runs the full comparison (contrast-landmark, lightly, float32, several steps)."""
import copy

import pytest
import torch
import torch.nn.functional as F
import yaml

from lead_hsr.errors import InputError
from lead_hsr.lead import byol, moco, stage1
from lead_hsr.lead.backbones import build_backbone
from lead_hsr.train.device import default_dtype

torch.set_num_threads(1)
TINY = {"arch": "resnet18", "crop": 32, "batch": 4, "proj_hidden": 32, "proj_dim": 16, "queue": 8, "device": "cpu"}
F64_TOL = 1e-10  # float64 on both sides: summation-order rounding only (measured <= 1e-13 relative)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def _in_float64(fn):
    with default_dtype(torch.float64):
        return fn()


def test_byol_one_step_equals_byol_pytorch_in_float64():
    """Same weights and views: loss, every online gradient, the SGD step, the target EMA and the target's own BatchNorm
    statistics (ema_bn_stats=false, as byol-pytorch) agree to float64 rounding."""
    import torchvision
    from byol_pytorch import BYOL as PackageBYOL

    opts = stage1.DEFAULTS | TINY | {"byol_tau_schedule": "constant", "byol_tau_base": 0.99}
    torch.manual_seed(0)
    ours = stage1.build_ssl_model(opts)
    net = torchvision.models.resnet18(weights=None)
    n = 4
    theirs = PackageBYOL(net, image_size=32, hidden_layer="avgpool", projection_size=16, projection_hidden_size=32,
                         use_simplicial_embeddings=False, augment_fn=lambda x: x[:n], augment_fn2=lambda x: x[n:])
    fc = {k: v for k, v in net.state_dict().items() if k.startswith("fc.")}
    with torch.no_grad():
        net.load_state_dict(ours.backbone.state_dict() | fc)
        theirs.online_encoder.projector.load_state_dict(ours.projector.state_dict())
        theirs.online_predictor.load_state_dict(ours.predictor.state_dict())
        theirs.target_encoder.net.load_state_dict(ours.target_backbone.state_dict() | fc)
        theirs.target_encoder.projector.load_state_dict(ours.target_projector.state_dict())
    ours.double().train()
    theirs.double().train()
    pairs = {"backbone": net, "projector": theirs.online_encoder.projector, "predictor": theirs.online_predictor,
             "target_backbone": theirs.target_encoder.net, "target_projector": theirs.target_encoder.projector}
    opt_ours = stage1.build_optimizer(ours, opts)
    opt_theirs = torch.optim.SGD([p for p in theirs.parameters() if p.requires_grad], lr=opts["lr"],
                                 momentum=opts["momentum"], weight_decay=opts["weight_decay"])
    gen = torch.Generator().manual_seed(1)
    v1, v2 = (torch.randn(n, 3, 32, 32, generator=gen, dtype=torch.float64) for _ in range(2))
    loss_o, loss_t = _in_float64(lambda: ours(v1, v2)), theirs(torch.cat([v1, v2]))
    assert _rel(loss_o, loss_t) < F64_TOL
    for opt, loss in ((opt_ours, loss_o), (opt_theirs, loss_t)):
        opt.zero_grad()
        loss.backward()
        opt.step()
    tau = byol.target_tau(0, 10, opts["byol_tau_base"], opts["byol_tau_schedule"])
    assert tau == theirs.target_ema_updater.beta == 0.99
    ours.update_target(tau)
    theirs.update_moving_average()
    checked = 0
    for part, module in pairs.items():
        mine = dict(getattr(ours, part).named_parameters())
        theirs_state = module.state_dict()
        for name, param in module.named_parameters():
            if name.startswith("fc."):
                continue
            if param.grad is not None:  # online: gradient and updated value
                assert _rel(mine[name].grad, param.grad) < F64_TOL or param.grad.abs().max() < 1e-14, (part, name)
            assert _rel(mine[name], param) < F64_TOL, (part, name)
            checked += 1
        for name, value in getattr(ours, part).state_dict().items():
            if "running" in name:
                assert _rel(value, theirs_state[name]) < F64_TOL, (part, name)
    assert checked == 2 * sum(1 for _ in ours.backbone.parameters()) + 3 * 6  # backbones; projectors, predictor


def test_target_bn_statistics_setting_changes_only_the_target_buffers():
    """ema_bn_stats: the target's BatchNorm statistics EMA'd from the online network or its own; in training mode
    BatchNorm uses batch statistics, so everything else is bitwise the same."""
    states = []
    for ema_bn_stats in (False, True):
        opts = stage1.DEFAULTS | TINY | {"ema_bn_stats": ema_bn_stats}
        torch.manual_seed(0)
        model = stage1.build_ssl_model(opts)
        opt = stage1.build_optimizer(model, opts)
        gen = torch.Generator().manual_seed(1)
        for step in range(2):
            loss = model(torch.randn(4, 3, 32, 32, generator=gen), torch.randn(4, 3, 32, 32, generator=gen))
            opt.zero_grad()
            loss.backward()
            opt.step()
            model.update_target(byol.target_tau(step, 10))
        states.append(model.state_dict())
    own, ema = states
    target_buffers = [k for k in own if k.startswith("target_") and "running" in k]
    assert target_buffers and all(not torch.equal(own[k], ema[k]) for k in target_buffers)
    assert all(torch.equal(own[k], ema[k]) for k in own if k not in target_buffers)


def _replica_embed(model: moco.MoCo, x: torch.Tensor, group: int):
    """nn.DataParallel's semantics written out with module copies: each group through its own replica (replica 0
    is the model itself, so only its BatchNorm statistics persist); gradients of the replicas summed."""
    replicas = [model.backbone] + [copy.deepcopy(model.backbone) for _ in range(len(x) // group - 1)]
    outs = [F.normalize(model.head(r(c)[-1].mean((2, 3))), dim=1) for r, c in zip(replicas, x.split(group))]
    return torch.cat(outs), replicas


def test_moco_batchnorm_groups_follow_dataparallel():
    torch.manual_seed(0)
    model = moco.MoCo(build_backbone("resnet18"), queue_size=8, bn_group_size=2).double().train()
    reference = copy.deepcopy(model)
    x = torch.randn(6, 3, 32, 32, dtype=torch.float64)
    out = _in_float64(lambda: model._embed(model.backbone, model.head, x))
    expected, replicas = _replica_embed(reference, x, 2)
    assert _rel(out, expected) < F64_TOL
    weights = torch.randn_like(out)
    (out * weights).sum().backward()
    (expected * weights).sum().backward()
    for (name, param), ref in zip(model.backbone.named_parameters(), zip(*(r.parameters() for r in replicas))):
        assert _rel(param.grad, sum(p.grad for p in ref)) < F64_TOL, name
    for name, value in model.backbone.state_dict().items():  # statistics of the first group only
        assert torch.equal(value, reference.backbone.state_dict()[name]), name
    whole = moco.MoCo(build_backbone("resnet18"), queue_size=8).double().train()
    whole.load_state_dict(reference.state_dict())
    assert _rel(_in_float64(lambda: whole._embed(whole.backbone, whole.head, x)), expected) > 1e-3  # groups matter


def test_moco_shuffle_bn_computes_keys_of_the_permuted_batch():
    """With several groups the keys come from the permuted batch, unpermuted (CL get_shuffle_ids); with one group
    there is nothing to shuffle."""
    torch.manual_seed(0)
    model = moco.MoCo(build_backbone("resnet18"), queue_size=6, bn_group_size=2).double().train()
    assert model.shuffles(6) and not model.shuffles(2)
    assert not moco.MoCo(build_backbone("resnet18"), bn_group_size=0).shuffles(256)
    x_q, x_k = torch.randn(2, 6, 3, 32, 32, dtype=torch.float64)
    order = torch.randperm(6, generator=torch.Generator().manual_seed(3))
    reference = copy.deepcopy(model)
    _in_float64(lambda: model(x_q, x_k[order], torch.argsort(order)))
    with torch.no_grad():
        keys, _ = _replica_embed(reference, x_k[order], 2)
        plain, _ = _replica_embed(copy.deepcopy(reference), x_k, 2)
    assert _rel(model.queue, keys[torch.argsort(order)]) < F64_TOL  # enqueued in the batch's own order
    assert _rel(model.queue, plain) > 1e-3  # shuffling changed the BatchNorm groups of the keys


def test_moco_heads_and_queue_inits():
    torch.manual_seed(0)
    linear = moco.MoCo(build_backbone("resnet18"), queue_size=4096)  # defaults: CL's code
    assert [type(m) for m in linear.head] == [torch.nn.Linear] and linear.head[0].out_features == 128
    norms = linear.queue.norm(dim=1)
    bound = 1 / (128 / 3) ** 0.5  # CL MemoryMoCo: U(-s, s), s = 1 / sqrt(dim / 3)
    assert linear.queue.abs().max() <= bound and abs(float(norms.pow(2).mean()) - 1) < 0.01
    assert norms.std() > 0.02  # rows are not normalised (std of the norm ~0.04 for 128 dims)
    mlp = moco.MoCo(build_backbone("resnet18"), head="mlp", queue_init="normal")  # MoCo-v2
    assert [type(m) for m in mlp.head] == [torch.nn.Linear, torch.nn.ReLU, torch.nn.Linear]
    assert torch.allclose(mlp.queue.norm(dim=1), torch.ones(4096))
    with pytest.raises(ValueError):
        moco.build_head("bogus", 8)


def test_weight_decay_setting_exempts_biases_and_batchnorm():
    for wd_bias_bn in (True, False):
        opts = stage1.DEFAULTS | TINY | {"objective": "moco", "wd_bias_bn": wd_bias_bn, "weight_decay": 0.5,
                                         "momentum": 0.0, "lr": 0.1}
        model = stage1.build_ssl_model(opts)
        opt = stage1.build_optimizer(model, opts)
        params = model.online_parameters()
        before = [p.detach().clone() for p in params]
        for p in params:
            p.grad = torch.zeros_like(p)
        opt.step()
        for p, b in zip(params, before):
            decayed = wd_bias_bn or p.ndim > 1
            assert torch.allclose(p, b * (1 - 0.05) if decayed else b), (wd_bias_bn, p.shape)


def test_lr_schedules():
    opts = {"lr": 0.03, "lr_schedule": "cosine"}
    assert stage1.learning_rate(opts, 0, 100, 7) == 0.03  # per step, from lr
    assert abs(stage1.learning_rate(opts, 50, 100, 7) - 0.015) < 1e-12
    opts["lr_schedule"] = "cosine_epoch"  # CL: epochs from 1, constant within an epoch, the last at 0
    lrs = [stage1.learning_rate(opts, k, 40, 10) for k in range(40)]
    assert lrs[:10] == [lrs[0]] * 10 and abs(lrs[0] - 0.03 * (1 + 2 ** -0.5) / 2) < 1e-12
    assert max(lrs[30:]) < 1e-15


def test_bad_settings_are_input_errors(tmp_path):
    for bad in ({"moco_head": "bogus"}, {"moco_queue_init": "zeros"}, {"byol_tau_schedule": "linear"},
                {"lr_schedule": "step"}, {"objective": "simclr"}):
        with pytest.raises(InputError, match=next(iter(bad))):
            stage1.build_ssl_model(stage1.DEFAULTS | TINY | bad)
    with pytest.raises(InputError, match="moco_bn_group_size"):
        stage1.check_options(stage1.DEFAULTS | {"objective": "moco", "batch": 100, "moco_bn_group_size": 64})
    stage1.check_options(stage1.DEFAULTS | {"objective": "moco", "batch": 32})  # one group: the whole batch


def test_schema_lists_the_settings_choices():
    from pathlib import Path
    schema = yaml.safe_load((Path(__file__).parents[2] / "config" / "schema.yaml").read_text())
    props = schema["$defs"]["stage1_options"]["properties"]
    assert props["lr_schedule"]["enum"] == list(stage1.LR_SCHEDULES)
    assert props["byol_tau_schedule"]["enum"] == list(byol.TAU_SCHEDULES)
    assert props["moco_head"]["enum"] == list(moco.HEADS)
    assert props["moco_queue_init"]["enum"] == list(moco.QUEUE_INITS)
