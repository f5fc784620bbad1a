"""LEAD stage 2 and its baselines on frozen stage-1 hypercolumns (thesis §3.2.3, DESIGN §5).

objective "lead": DenseNet (encoder initialised from stage 1 + FPN + projection head) trained so that its
  cross-image similarity distributions match the frozen hypercolumns' (dense_objectives.lead_loss).
objective "cl": ContrastLandmarks' feature projector (1x1 conv hypercolumn -> C + spatial softmax) trained with
  the within-image dense correlation loss (dense_objectives.cl_dense_correlation_loss).
objective "cl_fpn": the CL loss on the LEAD network (encoder from stage 1 + FPN + head): isolates the objective.
objective "nmf": NMF basis of hypercolumns fitted once ("BYOL + NMF", Table 3.1); no gradient steps.
All write a dense-feature weights file (dense_model.py) and the resolved options JSON.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lead_hsr.data.geometry import normalize_images
from lead_hsr.errors import InputError
from lead_hsr.lead.augment import AugmentConfig, augment_view, center_crop
from lead_hsr.lead.dense_model import build_dense_model, load_dense_model, save_dense_weights
from lead_hsr.lead.dense_objectives import (DEFAULT_CHUNK, LEAD_TAU, cl_constants, cl_dense_correlation_loss,
                                            lead_loss, pair_targets)
from lead_hsr.lead.fpn import FPN_DIM, HEAD_VARIANTS
from lead_hsr.lead.hypercolumns import hypercolumns
from lead_hsr.lead.nmf import FIT_ITERS, fit_nmf
from lead_hsr.lead.common import (calibrate_batchnorm, cosine_lr, load_batch, resolve_options, set_lr,
                                  total_steps, training_images)
from lead_hsr.train import (RunConfig, autocast_for, ddp, full_precision, grad_scaler_for, pick_device, step_generator,
                            train, write_options_json)
from lead_hsr.train.compile import check_compile_option, compiled

OBJECTIVES = ("lead", "cl", "cl_fpn", "nmf")
CL_ADAM_BETAS = (0.5, 0.999)  # contrast-landmark train_feature_projector.py: --beta1 0.5 --beta2 0.999 with --adam
TORCH_ADAM_BETAS = (0.9, 0.999)  # LEAD's stage 2: the thesis names no betas; torch's default
OUTPUT_STRIDE = 4  # thesis §3.3: features at 1/4 resolution (24x24 for 96x96 crops)
# Stage-2 augmentation: crops and flips only. Pairs are two different images (thesis §3.2.3), so photometric
# invariance is already the teacher's; the thesis does not list stage-2 augmentations.
STAGE2_AUGMENT = dict(jitter_p=0.0, gray_p=0.0, blur_p=0.0)
DEFAULTS = {
    "objective": "lead",
    "epochs": 20,  # thesis §3.3: stage 2 for 20 epochs, batch 256
    "steps": None,
    "batch": 256,
    "lr": 1e-3,  # Adam; lead: not stated in the thesis; cl: CL train_feature_projector.py default 1e-3
    "weight_decay": None,  # None -> cl/cl_fpn: 5e-4 (CL train_feature_projector.py default); lead: 0
    "betas": None,  # Adam betas; None -> cl: (0.5, 0.999) (CL train_feature_projector.py --adam); else torch's
    "dim": 64,  # thesis §3.3: C = 64 (Table 3.1 also 128/256)
    "proj_head": "256",  # hidden width of g^D (ablation: none / 64 / 256)
    "fpn_dim": FPN_DIM,
    "tau": LEAD_TAU,
    "teacher_tau": None,  # None -> tau (thesis); a lower value sharpens weak demo teachers (DESIGN §4.4)
    "center_teacher": False,  # thesis: False; True removes the batch-mean hypercolumn before the cosine
    "teacher_norm": "none",  # hypercolumn normalisation before the cosine: thesis = plain cosine ("none")
    "cl_temperature": None,  # None -> CL README per dim: 8 for dim 64, else 7 (dense_objectives.cl_constants)
    "cl_softargmax_mul": None,  # None -> CL README per dim: 6.5 for dim 64, else 7 (the cl projector's softmax)
    "nmf_images": 256,  # images whose hypercolumns fit the NMF basis
    "nmf_vectors": 20000,  # random subsample of their hypercolumn vectors (bounds the fit's cost)
    "nmf_iters": FIT_ITERS,
    "chunk": DEFAULT_CHUNK,
    "crop": 96,
    "seed": 0,
    "split": "train",
    "device": "auto",
    "precision": "none",
    "compile": False,  # True: objective_loss (student, teacher, loss) through torch.compile (lead_hsr.train.compile)
    "checkpoint_every": 200,
    "log_every": 10,
}


def _resolve(options) -> dict:
    opts = resolve_options(options, DEFAULTS, "LEAD stage-2 options")
    objective = opts["objective"]
    if objective not in OBJECTIVES:
        raise InputError(f"LEAD stage-2 options: objective={objective!r}; expected one of {OBJECTIVES}.")
    if str(opts["proj_head"]) not in HEAD_VARIANTS:
        raise InputError(f"LEAD stage-2 options: proj_head={opts['proj_head']!r}; expected one of {HEAD_VARIANTS}.")
    opts["proj_head"] = str(opts["proj_head"])
    check_compile_option(opts["compile"], "LEAD stage-2 options")
    if opts["weight_decay"] is None:
        opts["weight_decay"] = 5e-4 if objective in ("cl", "cl_fpn") else 0.0
    if opts["betas"] is None:
        opts["betas"] = list(CL_ADAM_BETAS if objective == "cl" else TORCH_ADAM_BETAS)
    softargmax_mul, temperature = cl_constants(int(opts["dim"]))
    if opts["cl_temperature"] is None:
        opts["cl_temperature"] = temperature
    if opts["cl_softargmax_mul"] is None:
        opts["cl_softargmax_mul"] = softargmax_mul
    if opts["crop"] % OUTPUT_STRIDE:
        raise InputError(f"LEAD stage-2 options: crop={opts['crop']} must be divisible by {OUTPUT_STRIDE}.")
    return opts


def _teacher(stage1_weights, device):
    teacher = load_dense_model(stage1_weights, device)
    if teacher.kind != "hypercolumn":
        raise InputError(f"{stage1_weights}: stage 2 needs stage-1 (hypercolumn) weights, got kind "
                         f"{teacher.kind!r}; point `stage1_weights` at a stage-1 output.")
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def _student(opts: dict, teacher) -> torch.nn.Module:
    """The trainable model, wrapped as a DenseFeatureModel so saving/loading is shared with evaluation."""
    arch = teacher.arch
    if opts["objective"] in ("lead", "cl_fpn"):
        config = {"dim": int(opts["dim"]), "proj_head": opts["proj_head"], "fpn_dim": int(opts["fpn_dim"])}
        model = build_dense_model("fpn", arch, config)
        model.net.encoder.load_state_dict(teacher.net.state_dict())  # thesis: encoder initialised from stage 1
    else:
        config = {"dim": int(opts["dim"]), "hypercolumn_norm": opts["teacher_norm"],
                  "softargmax_mul": float(opts["cl_softargmax_mul"])}
        model = build_dense_model("cl", arch, config)
        model.net.load_state_dict(teacher.net.state_dict())
        model.net.requires_grad_(False)
    return model


def untrained_model(stage1_weights, options: dict | None, device: str | torch.device = "cpu", store_path=None,
                    bn_images: int = 512) -> torch.nn.Module:
    """The stage-2 network exactly as training would start it (seeded init, encoder from `stage1_weights`).

    With random-init stage-1 weights this is "the same network at random init", the baseline learning is
    measured against. With `store_path`, every BatchNorm's statistics (encoder, projection head) are recomputed on
    `bn_images` of its training crops, as for the random-init hypercolumns (DESIGN §4.4: a fair baseline).
    """
    opts = _resolve(options)
    teacher = _teacher(stage1_weights, device)
    torch.manual_seed(int(opts["seed"]))
    model = _student(opts, teacher).to(device)
    if store_path is not None:
        store, indices = training_images(store_path, opts["split"], int(opts["crop"]), "the untrained baseline")
        calibrate_batchnorm(model.net, store, indices, int(opts["crop"]), bn_images, int(opts["seed"]), device)
    return model.eval()


def objective_loss(student, teacher, x: torch.Tensor, opts: dict) -> torch.Tensor:
    """The stage-2 loss of one normalised batch `x` for the configured objective."""
    size = int(opts["crop"]) // OUTPUT_STRIDE
    if opts["objective"] == "cl_fpn":
        return cl_dense_correlation_loss(full_precision(student.net(x)), OUTPUT_STRIDE, float(opts["cl_temperature"]))
    with torch.no_grad():
        hyper = full_precision(hypercolumns(teacher.net(x), size, opts["teacher_norm"]))
    if opts["objective"] == "lead":
        feat = full_precision(student.net(x))
        return lead_loss(feat, pair_targets(feat), hyper, pair_targets(hyper), tau=float(opts["tau"]),
                         teacher_tau=opts["teacher_tau"], center_teacher=bool(opts["center_teacher"]),
                         chunk_size=int(opts["chunk"]))
    feat = full_precision(student.projector(hyper))  # cl: only the projector trains on frozen hypercolumns
    return cl_dense_correlation_loss(feat, OUTPUT_STRIDE, float(opts["cl_temperature"]))


def make_step_fn(student, teacher, optimizer, store, indices, opts: dict, steps: int, device, scaler=None):
    """step_fn(step) for `train`: batch and augmentation come from (seed, step), so resume is exact.

    Precision: the networks run under `autocast_for(device, precision)`; the losses compute their similarities
    and softmaxes in full precision (dense_objectives). fp16 needs `scaler` (grad_scaler_for: its state is
    checkpointed with the model); a step whose scaled gradients overflow is skipped, as torch's GradScaler does.

    Under torchrun every rank augments the whole global batch and keeps its share (pairs never straddle ranks:
    `pair_targets` pairs neighbours), BatchNorm uses global-batch statistics and gradients are averaged, so a
    step equals one process's with the same global batch.
    """
    aug = AugmentConfig(crop=int(opts["crop"]), **STAGE2_AUGMENT)
    seed, batch = int(opts["seed"]), int(opts["batch"])
    # `compile`: the whole loss (teacher hypercolumns, student, objective) as one compiled function of the batch
    loss_of = compiled(lambda x: objective_loss(student, teacher, x, opts), opts["compile"])
    share = ddp.rank_slice(batch)
    if ddp.world_size() > 1 and (share.stop - share.start) % 2:
        raise InputError(f"LEAD stage-2 options: batch {batch} over {ddp.world_size()} processes gives an odd "
                         "share per process; image pairs must not straddle processes: use an even share.")

    def step_fn(step: int) -> dict[str, float]:
        lr = cosine_lr(float(opts["lr"]), step, steps)
        set_lr(optimizer, lr)
        images = load_batch(store, indices, step, batch, seed, device)
        x = augment_view(images, aug, step_generator(seed, step))[share]
        student.train()
        if opts["objective"] == "cl":
            student.net.eval()  # the frozen backbone keeps its BatchNorm statistics
        with autocast_for(device, opts["precision"]):
            loss = loss_of(x)
        optimizer.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            ddp.average_gradients(student)
            optimizer.step()
            return {"loss": ddp.mean_over_ranks(float(loss.detach())), "lr": lr}
        scaler.scale(loss).backward()
        ddp.average_gradients(student)  # scaled gradients: an overflow on any rank reaches every rank
        scaler.step(optimizer)
        scaler.update()
        return {"loss": ddp.mean_over_ranks(float(loss.detach())), "lr": lr, "loss_scale": scaler.get_scale()}

    return step_fn


def train_stage2(store_path, stage1_weights, out_weights, options: dict | None, work_dir,
                 time_budget_s: float | None = None, out_options=None) -> dict:
    """Train (or fit, for NMF) a stage-2 dense model; write weights + options JSON; return the options."""
    opts = _resolve(options)
    store, indices = training_images(store_path, opts["split"], int(opts["crop"]), "LEAD stage 2")
    ddp.init_from_env(pick_device(opts["device"]))  # no-op without torchrun
    device = pick_device(opts["device"])  # this process's GPU under torchrun
    teacher = _teacher(stage1_weights, device)
    opts["arch"], opts["stage1_weights"] = teacher.arch, str(stage1_weights)
    torch.manual_seed(int(opts["seed"]))
    if opts["objective"] == "nmf":
        model = _fit_nmf_model(teacher, store, indices, opts, device)
    else:
        model = _train_gradient_model(store, indices, teacher, opts, work_dir, time_budget_s, device)
    if ddp.is_main_process():
        save_dense_weights(out_weights, model.kind, model.arch, model.config, model)
        write_options_json(out_options or Path(out_weights).with_suffix(".json"),
                           opts | {"world_size": ddp.world_size()})
    ddp.barrier()
    return opts


def _train_gradient_model(store, indices, teacher, opts, work_dir, time_budget_s, device):
    steps = total_steps(opts, len(indices), "LEAD stage-2 options")
    opts["total_steps"] = steps
    student = ddp.sync_batchnorm(_student(opts, teacher).to(device), device)
    params = [p for p in student.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=float(opts["lr"]), weight_decay=float(opts["weight_decay"]),
                                 betas=tuple(float(b) for b in opts["betas"]))
    cfg = RunConfig(work_dir=Path(work_dir), total_steps=steps, seed=int(opts["seed"]),
                    checkpoint_every=int(opts["checkpoint_every"]), time_budget_s=time_budget_s,
                    log_every=int(opts["log_every"]), images_per_step=int(opts["batch"]))
    state = {"model": student, "optimizer": optimizer}
    scaler = None
    if opts["precision"] == "fp16":  # only then: checkpoints of bf16/fp32 runs keep their old set of states
        scaler = state["scaler"] = grad_scaler_for(device, "fp16")
    train(cfg, state, make_step_fn(student, teacher, optimizer, store, indices, opts, steps, device, scaler))
    return student


@torch.no_grad()
def _fit_nmf_model(teacher, store, indices, opts, device):
    size = int(opts["crop"]) // OUTPUT_STRIDE
    rows = np.sort(np.random.default_rng(int(opts["seed"])).permutation(indices)[:int(opts["nmf_images"])])
    vectors = []
    for start in range(0, len(rows), 64):
        x = center_crop(normalize_images(store.images[rows[start:start + 64]], device), int(opts["crop"]))
        hyper = hypercolumns(teacher.net(x), size, opts["teacher_norm"]).clamp_min(0)
        vectors.append(hyper.permute(0, 2, 3, 1).reshape(-1, hyper.shape[1]).cpu())
    vectors = torch.cat(vectors)
    keep = torch.randperm(len(vectors), generator=torch.Generator().manual_seed(int(opts["seed"])))
    vectors = vectors[keep[:int(opts["nmf_vectors"])]]
    basis = fit_nmf(vectors.to(device), int(opts["dim"]), int(opts["nmf_iters"]), int(opts["seed"])).cpu()
    config = {"dim": int(opts["dim"]), "hypercolumn_norm": opts["teacher_norm"], "code_size": size}
    model = build_dense_model("nmf", teacher.arch, config)
    model.net.load_state_dict(teacher.net.state_dict())
    model.projector.basis.copy_(basis)
    return model
