"""LEAD stage 1: BYOL (LEAD) or MoCo (CL baseline) on the prepared training images (DESIGN §5).

`train_stage1` runs through `lead_hsr.train.train` (checkpoint/resume/time budget) and writes the online
backbone as a "hypercolumn" dense-feature weights file (see dense_model.py) plus the resolved options JSON.
`write_random_init` writes the random-init baseline in the same format, BatchNorm statistics recomputed on
the data (DESIGN §4.4).

Precision "bf16"/"fp16" runs the networks under autocast (on any device, CPU included); augmentation, losses, the
EMA and the optimiser stay in full precision, and fp16 scales the loss with a GradScaler that is checkpointed.
Every choice where the references differ is an option below; `bench/compare_ssl.py` shows each reference's side.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from lead_hsr.errors import InputError
from lead_hsr.lead.arch import DEFAULT_ARCH
from lead_hsr.lead.augment import AugmentConfig, augment_view, byol_views
from lead_hsr.lead.backbones import build_backbone
from lead_hsr.lead.byol import BYOL, PROJ_DIM, PROJ_HIDDEN, TAU_BASE, TAU_SCHEDULES, target_tau
from lead_hsr.lead.dense_model import DenseFeatureModel, save_dense_weights
from lead_hsr.lead.moco import (BN_GROUP_SIZE, HEADS as MOCO_HEADS, MOMENTUM as MOCO_MOMENTUM, QUEUE_INITS, QUEUE_SIZE,
                                WEIGHT_DECAY as MOCO_WEIGHT_DECAY, MoCo)
from lead_hsr.lead.common import (calibrate_batchnorm, cosine_lr, load_batch, resolve_options, set_lr, total_steps,
                                  training_images)
from lead_hsr.train import (RunConfig, autocast_for, ddp, grad_scaler_for, pick_device, step_generator, train,
                            write_options_json)
from lead_hsr.train.compile import check_compile_option, compiled

# Hypercolumns served to evaluation are L2-normalised per layer block: matching does it (contrast-landmark
# layer_wise_normalize) and DESIGN §4.4 found it mattered most for regression.
EVAL_HYPERCOLUMN_NORM = "layer"
# Paper settings (DESIGN §5 / thesis §3.3): BYOL batch 256, 200 epochs, SGD lr 3e-2 cosine;
# MoCo (CL) batch 256, 800 epochs, lr 0.03 cosine, wd 1e-4.
EPOCHS = {"byol": 200, "moco": 800}
LR_SCHEDULES = ("cosine", "cosine_epoch")
DEFAULTS = {
    "objective": "byol",
    "arch": DEFAULT_ARCH,
    "epochs": None,  # None -> EPOCHS[objective]
    "steps": None,  # overrides epochs when set
    "batch": 256,
    "lr": 0.03,
    # "cosine": per step from lr to 0 (thesis: "cosine decay"); "cosine_epoch": CL's adjust_learning_rate, constant
    # within an epoch, lr * (1 + cos(pi e / E)) / 2 for epoch e = 1..E (the last epoch at lr 0). Per step by default:
    # at 800 epochs the two differ by < 0.2% of lr, and a short run (demo: 1-2 epochs) would spend half at lr 0.
    "lr_schedule": "cosine",
    "momentum": 0.9,  # SGD momentum (MoCo-v2; the thesis does not state BYOL's)
    "weight_decay": MOCO_WEIGHT_DECAY,  # DESIGN §5 gives 1e-4 for MoCo; used for BYOL too (thesis silent)
    # weight decay on biases and BatchNorm parameters too (CL / MoCo: SGD over model.parameters()); False exempts
    # every 1-d parameter (BYOL's LARS setting; the thesis uses plain SGD)
    "wd_bias_bn": True,
    "crop": 96,
    "seed": 0,
    "proj_hidden": PROJ_HIDDEN,
    "proj_dim": PROJ_DIM,
    "byol_tau_base": TAU_BASE,  # BYOL §3.2 (byol-pytorch's default: 0.99)
    "byol_tau_schedule": "cosine",  # BYOL §3.2 (byol-pytorch: "constant")
    # target / key network BatchNorm running statistics EMA'd from the online network (True) or its own (False:
    # every reference); the trained (online) network is the same either way
    "ema_bn_stats": False,
    "queue": QUEUE_SIZE,
    "moco_momentum": MOCO_MOMENTUM,
    "moco_head": "linear",  # CL's code (MoCo-v1 head); "mlp": MoCo-v2
    "moco_queue_init": "uniform",  # CL's MemoryMoCo; "normal": facebookresearch/moco, lightly
    "moco_bn_group_size": BN_GROUP_SIZE,  # CL: 4-GPU DataParallel; 0: BatchNorm over the whole batch
    "moco_shuffle_bn": True,  # CL / MoCo shuffle-BN (acts only with several BatchNorm groups)
    "split": "train",
    "device": "auto",
    "precision": "none",
    "compile": False,  # True: the model's forward (networks + loss) through torch.compile (lead_hsr.train.compile)
    "checkpoint_every": 200,
    "log_every": 10,
}
CHOICES = {"objective": ("byol", "moco"), "lr_schedule": LR_SCHEDULES, "byol_tau_schedule": TAU_SCHEDULES,
           "moco_head": MOCO_HEADS, "moco_queue_init": QUEUE_INITS}


def check_options(opts: dict) -> None:
    for key, allowed in CHOICES.items():
        if opts[key] not in allowed:
            raise InputError(f"stage-1 option {key}={opts[key]!r}; expected one of {list(allowed)}.")
    check_compile_option(opts["compile"], "stage-1 option")
    size, batch = int(opts["moco_bn_group_size"]), int(opts["batch"])
    if opts["objective"] == "moco" and 0 < size < batch and batch % (size * ddp.world_size()):
        raise InputError(f"stage-1 option moco_bn_group_size={size}: the batch {batch} must split into whole "
                         f"BatchNorm groups on each of {ddp.world_size()} process(es); set a divisor of "
                         f"{batch // ddp.world_size()} or 0 (one group: the whole batch).")


def build_ssl_model(opts: dict) -> BYOL | MoCo:
    opts = {**DEFAULTS, **opts}
    check_options(opts)
    backbone = build_backbone(opts["arch"])
    if opts["objective"] == "byol":
        return BYOL(backbone, int(opts["proj_hidden"]), int(opts["proj_dim"]), ema_bn_stats=bool(opts["ema_bn_stats"]))
    return MoCo(backbone, queue_size=int(opts["queue"]), momentum=float(opts["moco_momentum"]), head=opts["moco_head"],
                queue_init=opts["moco_queue_init"], bn_group_size=int(opts["moco_bn_group_size"]),
                shuffle_bn=bool(opts["moco_shuffle_bn"]), ema_bn_stats=bool(opts["ema_bn_stats"]))


def build_optimizer(model: BYOL | MoCo, opts: dict) -> torch.optim.SGD:
    """SGD over the online parameters; with `wd_bias_bn` False the 1-d ones (biases, BatchNorm) get no decay."""
    params, decay = model.online_parameters(), float(opts["weight_decay"])
    if not opts["wd_bias_bn"]:
        params = [{"params": [p for p in params if p.ndim > 1]},
                  {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]
    return torch.optim.SGD(params, lr=float(opts["lr"]), momentum=float(opts["momentum"]), weight_decay=decay)


def learning_rate(opts: dict, step: int, steps: int, steps_per_epoch: int) -> float:
    """The `lr_schedule` at `step` of `steps` (see DEFAULTS)."""
    if opts["lr_schedule"] == "cosine":
        return cosine_lr(float(opts["lr"]), step, steps)
    epochs = math.ceil(steps / steps_per_epoch)
    return cosine_lr(float(opts["lr"]), step // steps_per_epoch + 1, epochs)


def uses_bn_groups(model, opts: dict) -> bool:
    """Whether MoCo's BatchNorm runs in several groups (then each process normalises its own groups)."""
    return isinstance(model, MoCo) and model.bn_groups(int(opts["batch"])) > 1


def make_step_fn(model, optimizer, store, indices, opts: dict, steps: int, device, scaler=None):
    """step_fn(step) for `train`: batch and augmentations come from (seed, step), so resume is exact.

    Under torchrun every rank augments the whole global batch (same generator) and keeps its own share, so
    with global-batch BatchNorm (`ddp.sync_batchnorm`) and averaged gradients a step equals one process's.
    Augmentation runs outside autocast (the views are the same in every precision); `scaler`: the GradScaler
    (`grad_scaler_for(device, precision)`, disabled unless fp16). With `compile` the model's forward (both
    networks and the loss; MoCo's without its queue update, `MoCo.loss_and_keys`) runs compiled; the EMA updates,
    MoCo's enqueue (after the backward) and the optimizer stay eager.
    """
    opts = {**DEFAULTS, **opts}
    check_options(opts)
    # shares the model's parameters and buffers; MoCo's queue update stays out of the graph (MoCo.loss_and_keys)
    forward = compiled(model if isinstance(model, BYOL) else model.loss_and_keys, opts["compile"])
    aug = AugmentConfig(crop=int(opts["crop"]))
    seed, batch = int(opts["seed"]), int(opts["batch"])
    share = ddp.rank_slice(batch)
    steps_per_epoch = math.ceil(len(indices) / batch)
    scaler = scaler if scaler is not None else grad_scaler_for(device, opts["precision"])

    def step_fn(step: int) -> dict[str, float]:
        model.train()
        lr = learning_rate(opts, step, steps, steps_per_epoch)
        set_lr(optimizer, lr)
        images = load_batch(store, indices, step, batch, seed, device)
        gen = step_generator(seed, step)
        if isinstance(model, BYOL):
            view1, view2 = byol_views(images, aug, gen)
            with autocast_for(device, opts["precision"]):
                loss = forward(view1[share], view2[share])
        else:
            model.momentum_update()
            query, key = augment_view(images, aug, gen), augment_view(images, aug, gen)
            unshuffle = None
            if model.shuffles(batch):  # shuffle-BN: keys of the permuted global batch (CL get_shuffle_ids)
                order = torch.randperm(batch, generator=gen)
                key, unshuffle = key[order.to(key.device)], torch.argsort(order)
            with autocast_for(device, opts["precision"]):
                loss, keys = forward(query[share], key[share], unshuffle)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        ddp.average_gradients(model)
        scaler.step(optimizer)
        scaler.update()
        if isinstance(model, BYOL):
            model.update_target(target_tau(step, steps, float(opts["byol_tau_base"]), opts["byol_tau_schedule"]))
        else:
            model.enqueue(keys)
        return {"loss": ddp.mean_over_ranks(float(loss.detach())), "lr": lr}

    return step_fn


def train_stage1(store_path, out_weights, options: dict | None, work_dir, time_budget_s: float | None = None,
                 out_options=None) -> dict:
    """Train the stage-1 SSL network; write its backbone (hypercolumn extractor) and options JSON.

    Returns the resolved options. Raises SystemExit(TERMINATED_EXIT_CODE) when stopped before the end.
    """
    opts = resolve_options(options, DEFAULTS, "LEAD stage-1 options")
    check_options(opts)
    if opts["epochs"] is None:
        opts["epochs"] = EPOCHS.get(opts["objective"], 200)
    store, indices = training_images(store_path, opts["split"], int(opts["crop"]), "LEAD stage 1")
    steps = total_steps(opts, len(indices), "LEAD stage-1 options")
    opts["total_steps"] = steps
    ddp.init_from_env(pick_device(opts["device"]))  # no-op without torchrun
    device = pick_device(opts["device"])  # this process's GPU under torchrun
    torch.manual_seed(int(opts["seed"]))  # model init (the same on every rank); train() reseeds the loop itself
    model = build_ssl_model(opts).to(device)
    if not uses_bn_groups(model, opts):  # several MoCo BatchNorm groups: each process normalises its own groups
        model = ddp.sync_batchnorm(model, device)
    optimizer = build_optimizer(model, opts)
    scaler = grad_scaler_for(device, opts["precision"])
    cfg = RunConfig(work_dir=Path(work_dir), total_steps=steps, seed=int(opts["seed"]),
                    checkpoint_every=int(opts["checkpoint_every"]), time_budget_s=time_budget_s,
                    log_every=int(opts["log_every"]), images_per_step=int(opts["batch"]))
    state = {"model": model, "optimizer": optimizer} | ({"scaler": scaler} if scaler.is_enabled() else {})
    train(cfg, state, make_step_fn(model, optimizer, store, indices, opts, steps, device, scaler))
    if ddp.is_main_process():
        config = {"hypercolumn_norm": EVAL_HYPERCOLUMN_NORM, "source": f"stage1-{opts['objective']}"}
        save_dense_weights(out_weights, "hypercolumn", opts["arch"], config, _as_dense(model.backbone))
        write_options_json(out_options or Path(out_weights).with_suffix(".json"),
                           opts | {"world_size": ddp.world_size()})
    ddp.barrier()
    return opts


def _as_dense(backbone):
    """The hypercolumn model wraps the backbone as `net`; save its state under that prefix."""
    return DenseFeatureModel("hypercolumn", backbone.arch, {}, backbone)


def write_random_init(store_path, out_weights, options: dict | None, out_options=None, bn_images: int = 512) -> dict:
    """Random-init baseline weights, BatchNorm statistics recomputed on central crops of training images."""
    defaults = {k: DEFAULTS[k] for k in ("arch", "crop", "seed", "split", "device")} | {"bn_images": bn_images}
    opts = resolve_options(options, defaults, "LEAD random-init options")
    store, indices = training_images(store_path, opts["split"], int(opts["crop"]), "the random-init baseline")
    device = pick_device(opts["device"])
    torch.manual_seed(int(opts["seed"]))
    backbone = build_backbone(opts["arch"]).to(device)
    calibrate_batchnorm(backbone, store, indices, int(opts["crop"]), int(opts["bn_images"]), int(opts["seed"]), device)
    config = {"hypercolumn_norm": EVAL_HYPERCOLUMN_NORM, "source": "random-init"}
    save_dense_weights(out_weights, "hypercolumn", opts["arch"], config, _as_dense(backbone))
    write_options_json(out_options or Path(out_weights).with_suffix(".json"), opts)
    return opts
