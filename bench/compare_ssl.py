"""Differential check of stage 1 (BYOL, MoCo) against reference implementations (DESIGN §12).

Both sides get the same backbone/head weights (state dicts copied across), the same pre-made views (no augmentation
randomness) and the same shuffle permutations, run a few steps in float64 and in float32, and are compared on: the
loss, every online parameter's gradient, the parameters after the SGD step, the target/key network after its
momentum update (and the tau schedule), BatchNorm running statistics, MoCo's queue contents and pointer. Rows marked
"setting" show where a reference's default differs from ours on purpose and the stage-1 option that selects its
behaviour (lead_hsr/lead/stage1.py DEFAULTS); there ours runs with that option set to the reference's behaviour for
the "ok" rows, and with our default for the "setting" row.

References (each optional; a missing one is skipped with a note):
  byol-pytorch  (`--byol-pytorch byol_pytorch`): BYOL loss, gradients, EMA, its 0.99 constant decay.
  contrast-landmark (`--contrast-landmark DIR`, a checkout: github.com/ZezhouCheng/contrast-landmark): the MoCo code
      that trained ContrastLandmarks' networks (train_moco.py, NCE/NCEAverage.MemoryMoCo, NCESoftmaxLoss,
      models/resnet.py). Run on the CPU: its `.cuda()` calls are made no-ops while it runs, and its 4-GPU
      nn.DataParallel is emulated (`data_parallel` below: torch.chunk scatter, replicas sharing the parameters,
      replica 0 also the buffers, as DataParallel documents). Its modules `tensorboard_logger`, `torchfile` are
      stubbed when missing (used only for logging / data loading).
  lightly (`--lightly lightly`, e.g. `pip install --no-deps --target /tmp/lightly lightly` then `--path /tmp/lightly`):
      MoCo-v2 head, NTXentLoss with a memory bank, update_momentum, batch_shuffle, cosine_schedule,
      NegativeCosineSimilarity.

    PYTHONPATH=. .venv/bin/python bench/compare_ssl.py --contrast-landmark /tmp/ref/contrast-landmark \\
        --path /tmp/lightly [--steps 3] [--arch resnet18] [--crop 64] [--batch 8]

Prints: component, dtype, what was compared, max abs diff, max rel diff (per tensor max|a - b| / max|b|, the largest
over tensors and steps; a tensor that is zero in exact arithmetic, as the gradient of a bias before BatchNorm, is
measured against 1e-6 of the step's largest value), norm rel (||a - b|| / ||b|| over the tensors of a step), fp32 err
ours / theirs (each side's float32 result against its own float64 result on the same inputs) and, for rows that must
agree, ok / DIFF: float64 max rel <= 1e-9; float32 norm rel <= 2 x (fp32 err ours + fp32 err theirs) + 2^-20. The
float32 criterion follows how much this problem amplifies float32 rounding: BatchNorm over a few values per channel
and ReLU / max-pool decisions that a 1e-7 relative change of the input flips make a step's gradient jump by up to
1e-1 between float32 and float64 (either side, either way), so it holds on any CPU; the float64 rows are the tight
check. Exit status 1 when a row that must agree does not.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib
import math
import sys
import types
import warnings
from pathlib import Path

import torch

from lead_hsr.lead import stage1
from lead_hsr.lead.byol import target_tau
from lead_hsr.lead.moco import initial_queue
from lead_hsr.train.device import default_dtype

TOL64 = 1e-9  # float64: max rel diff per tensor
NOISE_FACTOR, FLOOR32 = 2.0, 2.0 ** -20  # float32: norm rel <= 2 x (both sides' own float32 error) + 8 ulps
ROWS: list[tuple] = []


# ------------------------------------------------------------------------------------------------ comparison helpers
class Diff:
    """max|a - b| and max|a - b| / max|b| per tensor (largest over tensors and steps), and ||a - b|| / ||b|| over the
    tensors compared together at a step (largest over steps): the measure for float32, where tensors of near-zero
    values (a BatchNorm bias gradient, a key-encoder bias near its zero init) make the per-tensor ratio meaningless."""

    def __init__(self):
        self.abs = self.rel = self.norm_rel = 0.0

    @staticmethod
    def _ratio(num: float, den: float) -> float:
        return num / den if den > 0 else (0.0 if num == 0 else math.inf)

    def step(self, ours: dict, theirs: dict) -> "Diff":
        num = den = 0.0
        # a tensor that is zero in exact arithmetic (the gradient of a bias before BatchNorm) holds only rounding:
        # its per-tensor ratio is taken against 1e-6 of the step's largest value instead
        floor = 1e-6 * max((float(b.abs().max()) for b in theirs.values() if b.numel()), default=0.0)
        for name, a in ours.items():
            b = theirs[name]
            d = float((a - b).abs().max()) if a.numel() else 0.0
            self.abs = max(self.abs, d)
            self.rel = max(self.rel, self._ratio(d, max(float(b.abs().max()) if b.numel() else 0.0, floor)))
            num += float((a - b).pow(2).sum())
            den += float(b.pow(2).sum())
        self.norm_rel = max(self.norm_rel, self._ratio(math.sqrt(num), math.sqrt(den)))
        return self


class Record:
    """What one run compared: per key, a list over steps of (ours, theirs) {name: float64 tensor} dicts."""

    def __init__(self):
        self.steps: dict[str, list[tuple[dict, dict]]] = {}

    def add(self, key: str, ours, theirs, names: dict | None = None) -> None:
        if not isinstance(ours, dict):
            ours, theirs = {key: ours}, {key: theirs}
        names = names or {}
        copy64 = lambda v: torch.as_tensor(v).detach().double().clone()  # noqa: E731
        self.steps.setdefault(key, []).append(({n: copy64(v) for n, v in ours.items()},
                                               {n: copy64(theirs[names.get(n, n)]) for n in ours}))

    def diff(self, key: str, side: int = 1, other: "Record | None" = None, other_side: int | None = None) -> Diff:
        """ours vs theirs (defaults), or this record's `side` (0 ours, 1 theirs) vs `other`'s `other_side` (float32
        vs float64 on the same inputs: that side's own float32 error)."""
        d = Diff()
        for i, pair in enumerate(self.steps[key]):
            if other is None:
                d.step(pair[0], pair[side])
            else:
                d.step(pair[side], other.steps[key][i][side if other_side is None else other_side])
        return d


def row(component: str, dtype: str, what: str, diff: Diff, kind: str = "ok", note: str = "",
        noise: tuple[Diff, Diff] | None = None) -> None:
    """kind "ok": must agree (float64: max rel <= TOL64; float32: norm rel <= NOISE_FACTOR x (ours' + theirs' own
    float32 error) + FLOOR32, `noise` = (ours, theirs) in float32 vs float64 on the same inputs); "setting": differs
    on purpose (`note`)."""
    ROWS.append((component, dtype, what, diff, kind, note, noise))


def emit(component: str, labels: dict, rec64: Record, rec32: Record, kinds: dict | None = None) -> None:
    """One float64 and one float32 row per compared key."""
    for key, label in labels.items():
        kind, note = (kinds or {}).get(key, ("ok", ""))
        row(component, "float64", label, rec64.diff(key), kind, note)
        row(component, "float32", label, rec32.diff(key), kind, note,
            noise=(rec32.diff(key, 0, rec64), rec32.diff(key, 1, rec64)))


def print_table() -> bool:
    header = ("component", "dtype", "what compared", "max abs diff", "max rel diff", "norm rel", "fp32 err ours",
              "fp32 err theirs", "")
    lines, failed = [], False
    for comp, dtype, what, diff, kind, note, noise in ROWS:
        own = [f"{n.norm_rel:.2e}" for n in noise] if noise else ["", ""]
        if kind == "ok":
            if dtype == "float64":
                good = diff.rel <= TOL64
            else:
                good = diff.norm_rel <= NOISE_FACTOR * sum(n.norm_rel for n in noise or ()) + FLOOR32
            failed |= not good
            status = "ok" if good else "DIFF"
        else:
            status = f"setting: {note}"
        lines.append((comp, dtype, what, f"{diff.abs:.2e}", f"{diff.rel:.2e}", f"{diff.norm_rel:.2e}", *own, status))
    widths = [max(len(str(x[i])) for x in [header, *lines]) for i in range(8)]
    for line in [header, *lines]:
        print("  ".join(str(c).ljust(w) for c, w in zip(line[:8], widths)) + "  " + line[8])
    return not failed


def grads(module: torch.nn.Module, prefix: str = "") -> dict:
    return {prefix + n: p.grad for n, p in module.named_parameters() if p.grad is not None}


def params(module: torch.nn.Module, prefix: str = "") -> dict:
    return {prefix + n: p.detach() for n, p in module.named_parameters()}


def make_views(steps: int, batch: int, crop: int, dtype) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Pre-made view pairs, drawn in float64 (the float32 run gets the same views, rounded)."""
    gen = torch.Generator().manual_seed(1)
    draw = lambda: torch.randn(batch, 3, crop, crop, generator=gen, dtype=torch.float64).to(dtype)  # noqa: E731
    return [(draw(), draw()) for _ in range(steps)]


@contextlib.contextmanager
def cpu_cuda_calls():
    """Reference code calls `.cuda()` on tensors and modules; on the CPU make those no-ops while it runs."""
    saved = torch.Tensor.cuda, torch.nn.Module.cuda
    torch.Tensor.cuda = lambda self, *a, **k: self
    torch.nn.Module.cuda = lambda self, *a, **k: self
    try:
        yield
    finally:
        torch.Tensor.cuda, torch.nn.Module.cuda = saved


def data_parallel(module: torch.nn.Module, x: torch.Tensor, devices: int) -> torch.Tensor:
    """nn.DataParallel(module)(x) over `devices` GPUs, on the CPU: the batch scattered in torch.chunk pieces; every
    replica uses the module's parameters (gradients sum into them); replica 0 also shares its buffers, the others
    get copies, so only the first chunk's BatchNorm running-statistics update is kept (torch docs of DataParallel)."""
    if devices <= 1:
        return module(x)
    chunks = x.chunk(devices)
    outs = [module(chunks[0])]
    for chunk in chunks[1:]:
        buffers = {name: b.clone() for name, b in module.named_buffers()}
        outs.append(torch.func.functional_call(module, buffers, (chunk,)))
    return torch.cat(outs)


def ours_stage1(objective: str, args, **options):
    """Our model and optimiser from the stage-1 options (float32 init; the caller converts)."""
    opts = stage1.DEFAULTS | {"objective": objective, "arch": args.arch, "crop": args.crop, "batch": args.batch,
                              "proj_hidden": args.proj_hidden, "proj_dim": args.proj_dim, "queue": args.queue,
                              "lr": args.lr, "device": "cpu"} | options
    torch.manual_seed(0)
    return stage1.build_ssl_model(opts).train(), opts


def step_both(pairs) -> None:
    """zero_grad, backward, step for each (optimizer, loss)."""
    for opt, loss in pairs:
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def quiet(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args)


# --------------------------------------------------------------------------------------------------- byol-pytorch
def run_byol_pytorch(package, args, dtype, ema_bn_stats: bool) -> Record:
    import torchvision

    ours, opts = ours_stage1("byol", args, ema_bn_stats=ema_bn_stats, byol_tau_schedule="constant",
                             byol_tau_base=0.99)
    net = getattr(torchvision.models, args.arch)(weights=None)
    n = args.batch
    theirs = package.BYOL(net, image_size=args.crop, hidden_layer="avgpool", projection_size=args.proj_dim,
                          projection_hidden_size=args.proj_hidden, use_simplicial_embeddings=False,
                          augment_fn=lambda x: x[:n], augment_fn2=lambda x: x[n:])
    fc = {k: v for k, v in net.state_dict().items() if k.startswith("fc.")}
    with torch.no_grad():  # same weights: ours -> theirs, online and target
        net.load_state_dict(ours.backbone.state_dict() | fc)
        theirs.online_encoder.projector.load_state_dict(ours.projector.state_dict())
        theirs.online_predictor.load_state_dict(ours.predictor.state_dict())
        theirs.target_encoder.net.load_state_dict(ours.target_backbone.state_dict() | fc)
        theirs.target_encoder.projector.load_state_dict(ours.target_projector.state_dict())
    ours.to(dtype)
    theirs.to(dtype).train()
    opt_ours = stage1.build_optimizer(ours, opts)
    opt_theirs = torch.optim.SGD([p for p in theirs.parameters() if p.requires_grad], lr=args.lr,
                                 momentum=opts["momentum"], weight_decay=opts["weight_decay"])
    online = {"backbone.": net, "projector.": theirs.online_encoder.projector, "predictor.": theirs.online_predictor}
    target = {"target_backbone.": theirs.target_encoder.net, "target_projector.": theirs.target_encoder.projector}
    their = lambda fn, parts: {k: v for pre, m in parts.items() for k, v in fn(m, pre).items()}  # noqa: E731
    state = lambda m, pre: {pre + k: v for k, v in m.state_dict().items()}  # noqa: E731
    rec = Record()
    with default_dtype(dtype):
        for step, (v1, v2) in enumerate(make_views(args.steps, n, args.crop, dtype)):
            loss_o, loss_t = ours(v1, v2), theirs(torch.cat([v1, v2]))
            rec.add("loss", loss_o, loss_t)
            step_both([(opt_ours, loss_o), (opt_theirs, loss_t)])
            rec.add("grad", grads(ours), their(grads, online))
            rec.add("param", {k: v for k, v in params(ours).items() if not k.startswith("target_")},
                    their(params, online))
            tau = target_tau(step, args.steps, opts["byol_tau_base"], opts["byol_tau_schedule"])
            rec.add("tau", tau, theirs.target_ema_updater.beta)
            ours.update_target(tau)
            theirs.update_moving_average()
            mine, other = ours.state_dict(), their(state, target)
            rec.add("target", {k: v for k, v in params(ours).items() if k.startswith("target_")}, other)
            rec.add("tbuf", {k: v for k, v in mine.items() if k.startswith("target_") and "running" in k}, other)
    return rec


def compare_byol_pytorch(args, module_name: str) -> None:
    package = importlib.import_module(module_name)
    comp = "BYOL vs byol-pytorch"
    recs = {(dtype, ema): run_byol_pytorch(package, args, dtype, ema)
            for dtype in (torch.float64, torch.float32) for ema in (False, True)}
    emit(comp, {"loss": "loss (symmetric 2-2cos, batch mean)", "grad": "every online gradient",
                "param": "online params after SGD step (wd on all)",
                "tau": "tau (byol_tau_schedule=constant, byol_tau_base=0.99)", "target": "target params after EMA",
                "tbuf": "target BN running stats (ema_bn_stats=false)"},
         recs[torch.float64, False], recs[torch.float32, False])
    emit(comp, {"tbuf": "target BN running stats, ours ema_bn_stats=true"}, recs[torch.float64, True],
         recs[torch.float32, True], {"tbuf": ("setting", "ema_bn_stats (theirs: the target's own statistics)")})
    steps = 1000
    d = Diff().step({"tau": torch.tensor([target_tau(k, steps) for k in range(steps)], dtype=torch.float64)},
                    {"tau": torch.full((steps,), 0.99, dtype=torch.float64)})
    row(comp, "float64", f"tau over {steps} steps: our defaults vs theirs (0.99)", d, "setting",
        "byol_tau_base 0.996 + byol_tau_schedule cosine (BYOL paper)")


# -------------------------------------------------------------------------------------------- contrast-landmark (CL)
def import_contrast_landmark(root: Path):
    for stub in ("tensorboard_logger", "torchfile"):  # logging / data-loading only
        if importlib.util.find_spec(stub) is None:
            sys.modules[stub] = types.ModuleType(stub)
    sys.path.insert(0, str(root))
    train_moco = quiet(importlib.import_module, "train_moco")
    return (train_moco, importlib.import_module("NCE.NCEAverage"), importlib.import_module("NCE.NCECriterion"),
            importlib.import_module("models.resnet"), importlib.import_module("utils.util"))


def run_contrast_landmark(cl, args, dtype, devices: int, queue: int) -> tuple[Record, Diff]:
    train_moco, nce, crit, resnet, _ = cl
    n, dim = args.batch, 128
    ours, opts = ours_stage1("moco", args, queue=queue, moco_bn_group_size=n // devices if devices > 1 else 0)
    model = getattr(resnet, args.arch)(low_dim=dim, pool_size=args.crop // 32)
    model_ema = getattr(resnet, args.arch)(low_dim=dim, pool_size=args.crop // 32)
    with torch.no_grad():
        model.load_state_dict(ours.backbone.state_dict() | {"fc.weight": ours.head[0].weight,
                                                            "fc.bias": ours.head[0].bias})
    quiet(train_moco.moment_update, model, model_ema, 0)  # CL's initial copy (parameters)
    torch.manual_seed(5)
    with cpu_cuda_calls():
        contrast = nce.MemoryMoCo(dim, 1000, queue, 0.07, use_softmax=True)
        criterion = crit.NCESoftmaxLoss()
    torch.manual_seed(5)
    init = Diff().step({"q": initial_queue("uniform", queue, dim).double()}, {"q": contrast.memory.double()})
    with torch.no_grad():
        ours.queue.copy_(contrast.memory)
    ours.to(dtype)
    model.to(dtype).train()
    model_ema.to(dtype).eval()
    model_ema.apply(lambda m: m.train() if "BatchNorm" in m.__class__.__name__ else None)  # as train_moco
    contrast.to(dtype)
    opt_ours = stage1.build_optimizer(ours, opts)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4)  # as train_moco
    names = {**{f"backbone.{k}": k for k, _ in model.named_parameters() if not k.startswith("fc.")},
             "head.0.weight": "fc.weight", "head.0.bias": "fc.bias"}
    running = [k for k in model.state_dict() if "running" in k]
    key_params = lambda: {k: v for k, v in params(ours).items() if k.startswith("key_")}  # noqa: E731
    rec = Record()
    with default_dtype(dtype):
        for x1, x2 in make_views(args.steps, n, args.crop, dtype):
            ours.momentum_update()  # ours: before the keys; CL: after the previous optimiser step
            rec.add("key", key_params(), params(model_ema), {f"key_{k}": v for k, v in names.items()})
            torch.manual_seed(7)
            with cpu_cuda_calls():
                shuffle_ids, reverse_ids = train_moco.get_shuffle_ids(n)
                feat_q = data_parallel(model, x1, devices)
                with torch.no_grad():
                    feat_k = data_parallel(model_ema, x2[shuffle_ids], devices)[reverse_ids]
                loss_t = criterion(contrast(feat_q, feat_k))
            if ours.shuffles(n):
                loss_o = ours(x1, x2[shuffle_ids], torch.argsort(shuffle_ids))
            else:  # one BatchNorm group: no shuffle (CL's shuffle changes only the summation order)
                loss_o = ours(x1, x2)
            rec.add("loss", loss_o, loss_t)
            step_both([(opt_ours, loss_o), (optimizer, loss_t)])
            quiet(train_moco.moment_update, model, model_ema, 0.999)
            rec.add("grad", grads(ours), grads(model), names)
            rec.add("param", {k: v for k, v in params(ours).items() if k in names}, params(model), names)
            rec.add("queue", ours.queue, contrast.memory)
            rec.add("ptr", ours.queue_ptr, contrast.index)
            rec.add("bn", {f"backbone.{k}": ours.backbone.state_dict()[k] for k in running}, model.state_dict(),
                    {f"backbone.{k}": k for k in running})
            rec.add("kbn", {f"key_backbone.{k}": ours.key_backbone.state_dict()[k] for k in running},
                    model_ema.state_dict(), {f"key_backbone.{k}": k for k in running})
        ours.momentum_update()
        rec.add("key", key_params(), params(model_ema), {f"key_{k}": v for k, v in names.items()})
    return rec, init


def compare_contrast_landmark(args, root: Path) -> None:
    cl = import_contrast_landmark(root)
    comp = "MoCo vs contrast-landmark"
    n = args.batch
    for devices, queue in ((args.gpus, args.queue), (args.gpus, args.queue - n // 2), (1, args.queue)):
        (rec64, init64), (rec32, init32) = (run_contrast_landmark(cl, args, dtype, devices, queue)
                                            for dtype in (torch.float64, torch.float32))
        setup = (f"DataParallel x{devices} = moco_bn_group_size {n // devices}" if devices > 1 else
                 "1 GPU = moco_bn_group_size 0") + f", K={queue}, B={n}, moco_head=linear"
        if queue == args.queue:
            row(comp, "float32", f"[{setup}] queue init, same seed (moco_queue_init=uniform)", init32)
        emit(comp, {"loss": f"[{setup}] loss (InfoNCE; CL shuffle-BN)", "grad": f"[{setup}] every online gradient",
                    "param": f"[{setup}] online params after SGD step (wd on all)",
                    "key": f"[{setup}] key encoder (m=0.999; ours before the keys)",
                    "queue": f"[{setup}] queue contents (ring buffer)", "ptr": f"[{setup}] queue pointer",
                    "bn": f"[{setup}] online BN running stats", "kbn": f"[{setup}] key BN running stats"},
             rec64, rec32)
    # learning rate: CL adjust_learning_rate(epoch, opt) with --cosine, called before each epoch (epochs from 1)
    epochs, per_epoch = 8, 5
    cl_opt = argparse.Namespace(cosine=True, learning_rate=0.03, epochs=epochs)
    sgd = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.03)
    theirs = []
    for epoch in range(1, epochs + 1):
        cl[4].adjust_learning_rate(epoch, cl_opt, sgd)
        theirs += [sgd.param_groups[0]["lr"]] * per_epoch
    total = epochs * per_epoch
    for schedule, kind, note in (("cosine_epoch", "ok", ""), ("cosine", "setting", "lr_schedule (ours per step)")):
        ours_lr = [stage1.learning_rate({"lr": 0.03, "lr_schedule": schedule}, k, total, per_epoch)
                   for k in range(total)]
        d = Diff().step({"lr": torch.tensor(ours_lr, dtype=torch.float64)},
                        {"lr": torch.tensor(theirs, dtype=torch.float64)})
        row(comp, "float64", f"lr, {epochs} epochs x {per_epoch} steps, lr_schedule={schedule}", d, kind, note)


# ---------------------------------------------------------------------------------------------------------- lightly
def run_lightly(args, dtype, queue: int) -> tuple[Record, Diff]:
    from lightly.loss import NTXentLoss
    from lightly.models.modules import MoCoProjectionHead
    from lightly.models.utils import batch_shuffle, batch_unshuffle, update_momentum

    n, dim = args.batch, 128
    ours, opts = ours_stage1("moco", args, queue=queue, moco_head="mlp", moco_queue_init="normal",
                             moco_bn_group_size=0)
    width = ours.backbone.out_dim
    backbone = copy.deepcopy(ours.backbone)
    head = MoCoProjectionHead(width, width, dim)  # MoCo-v2: Linear-ReLU-Linear, hidden = input width
    head.load_state_dict({f"layers.{k}": v for k, v in ours.head.state_dict().items()})
    backbone_m, head_m = copy.deepcopy(backbone), copy.deepcopy(head)
    for p in [*backbone_m.parameters(), *head_m.parameters()]:
        p.requires_grad_(False)
    torch.manual_seed(3)
    criterion = NTXentLoss(temperature=0.07, memory_bank_size=(queue, dim))
    torch.manual_seed(3)
    init = Diff().step({"q": initial_queue("normal", queue, dim).double()},
                       {"q": criterion.memory_bank.bank.double()})
    with torch.no_grad():
        ours.queue.copy_(criterion.memory_bank.bank)
    for m in (ours, backbone, head, backbone_m, head_m, criterion):
        m.to(dtype).train()
    opt_ours = stage1.build_optimizer(ours, opts)
    optimizer = torch.optim.SGD([*backbone.parameters(), *head.parameters()], lr=args.lr, momentum=0.9,
                                weight_decay=1e-4)
    names = {**{f"backbone.{k}": f"b.{k}" for k, _ in backbone.named_parameters()},
             **{f"head.{k}": f"h.layers.{k}" for k, _ in ours.head.named_parameters()}}
    rec = Record()
    with default_dtype(dtype):
        for x1, x2 in make_views(args.steps, n, args.crop, dtype):
            ours.momentum_update()
            update_momentum(backbone, backbone_m, 0.999)
            update_momentum(head, head_m, 0.999)
            rec.add("key", {k: v for k, v in params(ours).items() if k.startswith("key_")},
                    params(backbone_m, "b.") | params(head_m, "h."), {f"key_{k}": v for k, v in names.items()})
            query = head(backbone(x1)[-1].mean((2, 3)))
            with torch.no_grad():
                torch.manual_seed(7)
                shuffled, shuffle = batch_shuffle(x2)  # one process: BatchNorm of the whole batch
                key = batch_unshuffle(head_m(backbone_m(shuffled)[-1].mean((2, 3))), shuffle)
            loss_t = criterion(query, key)
            loss_o = ours(x1, x2)
            rec.add("loss", loss_o, loss_t)
            step_both([(opt_ours, loss_o), (optimizer, loss_t)])
            rec.add("grad", grads(ours), grads(backbone, "b.") | grads(head, "h."), names)
            rec.add("param", {k: v for k, v in params(ours).items() if k in names},
                    params(backbone, "b.") | params(head, "h."), names)
            rec.add("queue", ours.queue, criterion.memory_bank.bank)
            rec.add("ptr", ours.queue_ptr, criterion.memory_bank.bank_ptr[0])
    return rec, init


def compare_lightly(args, module_name: str) -> None:
    importlib.import_module(module_name)
    from lightly.loss import NegativeCosineSimilarity
    from lightly.utils.scheduler import cosine_schedule

    from lead_hsr.lead.byol import regression_loss

    comp = "MoCo vs lightly"
    n = args.batch
    for queue in (args.queue, args.queue - n // 2):
        (rec64, _), (rec32, init32) = (run_lightly(args, dtype, queue) for dtype in (torch.float64, torch.float32))
        setup = f"K={queue}, B={n}, moco_head=mlp"
        if queue % n == 0:
            row(comp, "float32", f"[{setup}] bank init, same seed (moco_queue_init=normal)", init32)
            emit(comp, {"loss": f"[{setup}] loss (NTXentLoss + memory bank, T=0.07)",
                        "grad": f"[{setup}] every online gradient", "param": f"[{setup}] online params after SGD step",
                        "key": f"[{setup}] momentum encoder (m=0.999)", "queue": f"[{setup}] queue contents",
                        "ptr": f"[{setup}] queue pointer"}, rec64, rec32)
        else:
            wrap = ("setting", "ours wraps (CL fmod); lightly drops the overflow, restarts at 0")
            emit(comp, {"queue": f"[{setup}] queue contents", "ptr": f"[{setup}] queue pointer",
                        "loss": f"[{setup}] loss (follows the queue)"}, rec64, rec32,
                 {"queue": wrap, "ptr": wrap, "loss": ("setting", "follows the queue")})
    steps = 1000
    d = Diff().step({"tau": torch.tensor([target_tau(k, steps) for k in range(steps)], dtype=torch.float64)},
                    {"tau": torch.tensor([cosine_schedule(k, steps, 0.996, 1.0) for k in range(steps)],
                                         dtype=torch.float64)})
    row("BYOL vs lightly", "float64", f"tau over {steps} steps: ours vs cosine_schedule(k, K, 0.996, 1)", d,
        "setting", "ours: BYOL's cos(pi k / K); lightly: K - 1")
    # BYOL loss scale: lightly's example 0.5 * (NegCos(p0, z1) + NegCos(p1, z0)); ours (BYOL) the sum of 2 - 2 cos
    torch.manual_seed(0)
    p = torch.randn(2, n, 16, dtype=torch.float64, requires_grad=True)
    z = torch.randn(2, n, 16, dtype=torch.float64)
    (g_ours,) = torch.autograd.grad((regression_loss(p[0], z[1]) + regression_loss(p[1], z[0])).mean(), p)
    neg = NegativeCosineSimilarity()
    (g_light,) = torch.autograd.grad(0.5 * (neg(p[0], z[1]) + neg(p[1], z[0])), p)
    row("BYOL vs lightly", "float64", "loss gradient: ours vs 4 x lightly example's (0.5 sum -cos)",
        Diff().step({"g": g_ours}, {"g": 4 * g_light}))


# ------------------------------------------------------------------------------------------------------------- main
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--byol-pytorch", default="byol_pytorch", help="import name of byol-pytorch ('' to skip)")
    parser.add_argument("--lightly", default="lightly", help="import name of lightly ('' to skip)")
    parser.add_argument("--contrast-landmark", type=Path, default=None, help="contrast-landmark checkout")
    parser.add_argument("--path", action="append", default=[], help="extra sys.path entry (e.g. a --target install)")
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--queue", type=int, default=16, help="MoCo queue (a multiple of the batch; K - B/2 also run)")
    parser.add_argument("--gpus", type=int, default=2, help="CL's DataParallel devices to emulate (CL README: 4)")
    parser.add_argument("--proj-hidden", type=int, default=64)
    parser.add_argument("--proj-dim", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.03)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sys.path[:0] = args.path
    checks = [("byol-pytorch", args.byol_pytorch, compare_byol_pytorch),
              ("contrast-landmark", args.contrast_landmark, compare_contrast_landmark),
              ("lightly", args.lightly, compare_lightly)]
    for name, where, fn in checks:
        if not where:
            print(f"# {name}: skipped (not given)")
            continue
        try:
            if isinstance(where, str):
                importlib.import_module(where)
        except ImportError as error:
            print(f"# {name}: skipped ({error})")
            continue
        fn(args, where)
    print(f"# {args.arch}, {args.crop}px views, batch {args.batch}, {args.steps} steps. max rel = max|a-b| / max|b| "
          f"per "
          f"tensor; norm rel = ||a-b|| / ||b|| per step; fp32 err = norm rel of a side in float32 vs float64 (same "
          f"inputs). ok: float64 max rel <= {TOL64:g}; float32 norm rel <= {NOISE_FACTOR:g} x (fp32 err ours + theirs) "
          f"+ 2^-20")
    return 0 if print_table() else 1


if __name__ == "__main__":
    sys.exit(main())
