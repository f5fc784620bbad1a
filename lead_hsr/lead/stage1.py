"""LEAD stage 1: BYOL (LEAD) or MoCo-v2 (CL baseline) on the prepared training images (DESIGN §5).

`train_stage1` runs through `lead_hsr.train.train` (checkpoint/resume/time budget) and writes the online
backbone as a "hypercolumn" dense-feature weights file (see dense_model.py) plus the resolved options JSON.
`write_random_init` writes the random-init baseline in the same format, BatchNorm statistics recomputed on
the data (DESIGN §4.4).
"""

from __future__ import annotations

from pathlib import Path

import torch

from lead_hsr.errors import InputError
from lead_hsr.lead.arch import DEFAULT_ARCH
from lead_hsr.lead.augment import AugmentConfig, augment_view, byol_views
from lead_hsr.lead.backbones import build_backbone
from lead_hsr.lead.byol import BYOL, PROJ_DIM, PROJ_HIDDEN, target_tau
from lead_hsr.lead.dense_model import DenseFeatureModel, save_dense_weights
from lead_hsr.lead.moco import MoCo, QUEUE_SIZE, WEIGHT_DECAY as MOCO_WEIGHT_DECAY
from lead_hsr.lead.common import (calibrate_batchnorm, cosine_lr, load_batch, resolve_options, set_lr, total_steps,
                                  training_images)
from lead_hsr.train import RunConfig, autocast_for, ddp, pick_device, step_generator, train, write_options_json

# Hypercolumns served to evaluation are L2-normalised per layer block: matching does it (contrast-landmark
# layer_wise_normalize) and DESIGN §4.4 found it mattered most for regression.
EVAL_HYPERCOLUMN_NORM = "layer"
# Paper settings (DESIGN §5 / thesis §3.3): BYOL batch 256, 200 epochs, SGD lr 3e-2 cosine;
# MoCo-v2 (CL) batch 256, 800 epochs, lr 0.03 cosine, wd 1e-4.
EPOCHS = {"byol": 200, "moco": 800}
DEFAULTS = {
    "objective": "byol",
    "arch": DEFAULT_ARCH,
    "epochs": None,  # None -> EPOCHS[objective]
    "steps": None,  # overrides epochs when set
    "batch": 256,
    "lr": 0.03,
    "momentum": 0.9,  # SGD momentum (MoCo-v2; the thesis does not state BYOL's)
    "weight_decay": MOCO_WEIGHT_DECAY,  # DESIGN §5 gives 1e-4 for MoCo; used for BYOL too (thesis silent)
    "crop": 96,
    "seed": 0,
    "proj_hidden": PROJ_HIDDEN,
    "proj_dim": PROJ_DIM,
    "queue": QUEUE_SIZE,
    "split": "train",
    "device": "auto",
    "precision": "none",
    "checkpoint_every": 200,
    "log_every": 10,
}


def build_ssl_model(opts: dict) -> BYOL | MoCo:
    backbone = build_backbone(opts["arch"])
    if opts["objective"] == "byol":
        return BYOL(backbone, int(opts["proj_hidden"]), int(opts["proj_dim"]))
    if opts["objective"] == "moco":
        return MoCo(backbone, queue_size=int(opts["queue"]))
    raise InputError(f"stage-1 option objective={opts['objective']!r}; expected 'byol' or 'moco'.")


def make_step_fn(model, optimizer, store, indices, opts: dict, steps: int, device):
    """step_fn(step) for `train`: batch and augmentations come from (seed, step), so resume is exact.

    Under torchrun every rank augments the whole global batch (same generator) and keeps its own share, so
    with global-batch BatchNorm (`ddp.sync_batchnorm`) and averaged gradients a step equals one process's.
    """
    aug = AugmentConfig(crop=int(opts["crop"]))
    seed, batch = int(opts["seed"]), int(opts["batch"])
    share = ddp.rank_slice(batch)

    def step_fn(step: int) -> dict[str, float]:
        model.train()
        lr = cosine_lr(float(opts["lr"]), step, steps)
        set_lr(optimizer, lr)
        images = load_batch(store, indices, step, batch, seed, device)
        gen = step_generator(seed, step)
        with autocast_for(device, opts["precision"]):
            if isinstance(model, BYOL):
                view1, view2 = byol_views(images, aug, gen)
                loss = model(view1[share], view2[share])
            else:
                model.momentum_update()
                query, key = augment_view(images, aug, gen), augment_view(images, aug, gen)
                loss = model(query[share], key[share])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        ddp.average_gradients(model)
        optimizer.step()
        if isinstance(model, BYOL):
            model.update_target(target_tau(step, steps))
        return {"loss": ddp.mean_over_ranks(float(loss.detach())), "lr": lr}

    return step_fn


def train_stage1(store_path, out_weights, options: dict | None, work_dir, time_budget_s: float | None = None,
                 out_options=None) -> dict:
    """Train the stage-1 SSL network; write its backbone (hypercolumn extractor) and options JSON.

    Returns the resolved options. Raises SystemExit(TERMINATED_EXIT_CODE) when stopped before the end.
    """
    opts = resolve_options(options, DEFAULTS, "LEAD stage-1 options")
    if opts["epochs"] is None:
        opts["epochs"] = EPOCHS.get(opts["objective"], 200)
    store, indices = training_images(store_path, opts["split"], int(opts["crop"]), "LEAD stage 1")
    steps = total_steps(opts, len(indices), "LEAD stage-1 options")
    opts["total_steps"] = steps
    ddp.init_from_env(pick_device(opts["device"]))  # no-op without torchrun
    device = pick_device(opts["device"])  # this process's GPU under torchrun
    torch.manual_seed(int(opts["seed"]))  # model init (the same on every rank); train() reseeds the loop itself
    model = ddp.sync_batchnorm(build_ssl_model(opts).to(device), device)
    optimizer = torch.optim.SGD(model.online_parameters(), lr=float(opts["lr"]), momentum=float(opts["momentum"]),
                                weight_decay=float(opts["weight_decay"]))
    cfg = RunConfig(work_dir=Path(work_dir), total_steps=steps, seed=int(opts["seed"]),
                    checkpoint_every=int(opts["checkpoint_every"]), time_budget_s=time_budget_s,
                    log_every=int(opts["log_every"]), images_per_step=int(opts["batch"]))
    train(cfg, {"model": model, "optimizer": optimizer},
          make_step_fn(model, optimizer, store, indices, opts, steps, device))
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
