"""Differential check: our StyleGAN2-ADA training step against NVlabs' official code, phase by phase and over
consecutive iterations (issue 25 item 1; DESIGN §12).

Both sides start from identical weights (ours mapped onto the official names by `lead_hsr.gan.checkpoints`),
see identical reals, and are seeded identically before each iteration: our trainer draws its random numbers in the
official order (one z batch per phase before the phases, the style-mixing cutoff / coin / second z, per-layer noise,
the path-length noise), so z, style mixing and noise are the same draws on both sides. ADA is off. Compared:

- per phase (Gmain, Greg, Dmain, Dreg) from the same state: the loss the official loss reports
  (`training_stats`) and every parameter's gradient after the official `nan_to_num`;
- after N full iterations (lazy regularisation at the given intervals, Adam with the k/(k+1) correction, the G
  EMA with its ramp-up, `w_avg`, `pl_mean`): every parameter and buffer of G, D and G_ema.

The official loss and networks run unchanged from the checkout given with `--reference`; the loop around them (the
phase list, the optimisers, zero_grad / requires_grad / nan_to_num / step, the EMA) follows
training/training_loop.py lines 150-300, which cannot run without CUDA. float64: the official code casts to
float32 in its networks (`ws.to(torch.float32)`, block dtypes); the bench runs it in float64 by aliasing
`torch.float32` to float64 inside `training.networks` and reducing its statistics in float64 (no line of it
changed). float32: both sides as shipped; differences are then float rounding amplified by Adam, reported relative
to the size of the update.

With `--hsr` the reference is a val-iisc/HSR checkout: the official `FeatureGuidedGenerator` (its heads inside G,
trained by G's Adam) and `StyleGAN2HSR` loss against our trainer with HSR (ViT-DINO levels at G's 8/16/32/64 px
blocks), a random-init ViT-B/16 standing in for the downloaded DINO behind `torch.hub.load` (bench/compare_hsr.py's
stand-in), so the official feature extractor wrapper and feature loss run unchanged. HSR's training loop is
StyleGAN2-ADA's with the heads in G's optimizer (an extra param group with the same lr): the same driver applies.

    .venv/bin/python bench/compare_stylegan2_step.py --reference /path/to/stylegan2-ada-pytorch
        [--dtype float64 float32] [--iterations 10] [--batch 4] [--preset demo] [--mixing 0 1]
    .venv/bin/python bench/compare_stylegan2_step.py --reference /path/to/HSR --hsr [--preset hsr64] ...
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import sys
import types
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lead_hsr.gan import checkpoints as C  # noqa: E402
from lead_hsr.gan.networks import Discriminator, Generator, get_preset  # noqa: E402
from lead_hsr.gan.training import GanTrainer, resolve_options  # noqa: E402


class FixedReals:
    """Stands in for GanData: `batch()` returns the reals the bench chose for this iteration."""

    def __init__(self):
        self.current = None

    def batch(self, indices, device):
        return self.current


# The smallest generator the official HSR heads fit (they read G's 8, 16, 32 and 64 px blocks).
HSR64 = dict(resolution=64, z_dim=64, w_dim=64, mapping_layers=2, channel_base=2048, channel_max=128, mbstd_group=4)
HSR_FEATURE_DIM = 768       # ViT-B/16 (PretrainedFE('DINO').layer_dims)


def load_reference(path: Path, hsr: bool = False):
    sys.path.insert(0, str(path))
    import training.loss as official_loss
    import training.networks as official_networks
    from torch_utils import misc, training_stats
    if hsr and not hasattr(official_networks, "FeatureGuidedGenerator"):
        raise SystemExit(f"{path}: --hsr needs a val-iisc/HSR checkout (no FeatureGuidedGenerator)")
    return types.SimpleNamespace(networks=official_networks, loss=official_loss, misc=misc, stats=training_stats,
                                 hsr=hsr)


@contextlib.contextmanager
def reference_precision(ref, dtype: torch.dtype):
    """Run the official code in `dtype`: for float64, `torch.float32` inside training.networks means float64,
    training_stats reduces in float64, and training.loss draws its path-length noise in the default dtype (the
    float32 draws of a float32 run, when default dtype is float32) before casting; restored afterwards."""
    saved = ref.networks.torch, ref.loss.torch, ref.stats._reduce_dtype
    if dtype == torch.float64:
        net_alias, loss_alias = types.ModuleType("torch"), types.ModuleType("torch")
        net_alias.__getattr__ = lambda name: torch.float64 if name == "float32" else getattr(torch, name)
        loss_alias.__getattr__ = lambda name: getattr(torch, name)
        loss_alias.randn_like = lambda x: torch.randn(x.shape, device=x.device).to(x.dtype)
        ref.networks.torch, ref.loss.torch, ref.stats._reduce_dtype = net_alias, loss_alias, torch.float64
    try:
        yield
    finally:
        ref.networks.torch, ref.loss.torch, ref.stats._reduce_dtype = saved


def to_dtype(module: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """The official module in `dtype`, its FIR filters kept float32 (conv2d_resample asserts that)."""
    module.to(dtype)
    for sub in module.modules():
        if "resample_filter" in sub._buffers:
            sub._buffers["resample_filter"] = sub._buffers["resample_filter"].float()
    return module


def official_state(ours: torch.nn.Module, official: torch.nn.Module, pairs) -> dict:
    state = official.state_dict()
    src = ours.state_dict()
    state.update({o: src[name].detach().clone() for o, name in pairs})
    return state


def load(official: torch.nn.Module, state: dict) -> None:
    """load_state_dict that keeps each official tensor's dtype (float32 filters stay float32)."""
    with torch.no_grad():
        for name, t in {**dict(official.named_parameters()), **dict(official.named_buffers())}.items():
            t.copy_(state[name])


def build(ref, opts: dict, dtype: torch.dtype, seed: int):
    torch.set_default_dtype(dtype)
    torch.manual_seed(seed)
    trainer = GanTrainer(resolve_options(opts), FixedReals(), "cpu")
    return trainer, build_official(ref, trainer, dtype)


def build_official(ref, trainer: GanTrainer, dtype: torch.dtype):
    """The official G, D, G_ema, loss and phases (training_loop.py) with the trainer's current weights in `dtype`."""
    preset, o = trainer.opts["preset"], trainer.opts
    g_kwargs, d_kwargs = C.official_init_kwargs(preset, o["num_fp16_res"] if o["precision"] == "fp16" else 0)
    g_class = ref.networks.Generator
    if ref.hsr:
        g_class = ref.networks.FeatureGuidedGenerator
        g_kwargs["synthesis_kwargs"]["pred_feat_dims"] = [HSR_FEATURE_DIM] * 4
    G = to_dtype(g_class(**g_kwargs), dtype).train().requires_grad_(False)
    D = to_dtype(ref.networks.Discriminator(**d_kwargs), dtype).train().requires_grad_(False)
    g_pairs, _ = C.generator_name_pairs(preset)
    d_pairs, _ = C.discriminator_name_pairs(preset)
    state = official_state(trainer.G, G, g_pairs)
    head_pairs = []
    if ref.hsr:   # our heads -> the official Head of the same level (equalized-lr 1x1 convs, same convention)
        head_pairs = [(f"synthesis.feat_transfer_list.{i}.conv1x1_{j + 1}.{p}", f"heads.{i}.{layer}.{p}")
                      for i in range(4) for j, layer in enumerate(("hidden", "out")) for p in ("weight", "bias")]
        heads = trainer.heads.state_dict()
        state.update({o_name: heads[ours].detach().clone() for o_name, ours in head_pairs})
    load(G, state)
    load(D, official_state(trainer.D, D, d_pairs))
    G_ema = copy.deepcopy(G).eval()
    loss_class, extra = ref.loss.StyleGAN2Loss, {}
    if ref.hsr:
        from compare_hsr import DinoHubStandIn, patch_hub
        patch_hub({"dino_vitb16": DinoHubStandIn(trainer.extractor.model)})   # our extractor's random ViT
        loss_class, extra = ref.loss.StyleGAN2HSR, dict(model_name="DINO")
    loss = loss_class(device=torch.device("cpu"), G_mapping=G.mapping, G_synthesis=G.synthesis, D=D,
                      augment_pipe=None, style_mixing_prob=o["style_mixing"], r1_gamma=o["gamma"],
                      pl_batch_shrink=o["pl_batch_shrink"], pl_decay=o["pl_decay"], pl_weight=o["pl_weight"],
                      **extra)
    loss.pl_mean = loss.pl_mean.to(dtype)
    phases = []
    for name, module, interval in (("G", G, o["pl_interval"]), ("D", D, o["r1_interval"])):
        ratio = interval / (interval + 1)   # training_loop.py: lazy regularisation
        opt = torch.optim.Adam(module.parameters(), lr=o["lr"] * ratio, betas=[b ** ratio for b in (0, 0.99)],
                               eps=1e-8)
        phases += [types.SimpleNamespace(name=name + "main", module=module, opt=opt, interval=1),
                   types.SimpleNamespace(name=name + "reg", module=module, opt=opt, interval=interval)]
    return types.SimpleNamespace(G=G, D=D, G_ema=G_ema, loss=loss, phases=phases, g_pairs=g_pairs, d_pairs=d_pairs,
                                 head_pairs=head_pairs, dtype=dtype)


def official_phase(ref, off, phase, real, gen_z, batch_idx: int) -> None:
    """One phase of training_loop.py's iteration (batch_gpu = batch, one GPU)."""
    if batch_idx % phase.interval != 0:
        return
    phase.opt.zero_grad(set_to_none=True)
    phase.module.requires_grad_(True)
    c = torch.zeros([real.shape[0], 0])
    off.loss.accumulate_gradients(phase=phase.name, real_img=real, real_c=c, gen_z=gen_z, gen_c=c, sync=True,
                                  gain=phase.interval)
    phase.module.requires_grad_(False)
    for param in phase.module.parameters():
        if param.grad is not None:
            ref.misc.nan_to_num(param.grad, nan=0, posinf=1e5, neginf=-1e5, out=param.grad)
    phase.opt.step()


def official_iteration(ref, off, real, batch: int, batch_idx: int, cur_nimg: int, o: dict) -> None:
    with reference_precision(ref, off.dtype):
        all_gen_z = torch.randn([len(off.phases) * batch, off.G.z_dim])
        for phase, gen_z in zip(off.phases, all_gen_z.split(batch)):
            official_phase(ref, off, phase, real.to(off.dtype), gen_z, batch_idx)
    ema_nimg = o["ema_kimg"] * 1000
    if o["ema_rampup"] is not None:
        ema_nimg = min(ema_nimg, cur_nimg * o["ema_rampup"])
    ema_beta = 0.5 ** (batch / max(ema_nimg, 1e-8))
    with torch.no_grad():
        for p_ema, p in zip(off.G_ema.parameters(), off.G.parameters()):
            p_ema.copy_(p.lerp(p_ema, ema_beta))
        for b_ema, b in zip(off.G_ema.buffers(), off.G.buffers()):
            b_ema.copy_(b)


def diff(ours: dict, official: dict, pairs) -> tuple[float, float]:
    """Max abs difference and max abs difference / max abs official value, over named tensors."""
    abs_d = rel_d = 0.0
    for o, name in pairs:
        a, b = ours[name], official[o]
        if a is None and b is None:
            continue
        if a is None or b is None:
            return float("inf"), float("inf")
        d = (a.double() - b.double()).abs().max().item()
        abs_d = max(abs_d, d)
        rel_d = max(rel_d, d / max(b.double().abs().max().item(), 1e-30))
    return abs_d, rel_d


def grads(module: torch.nn.Module) -> dict:
    return {n: p.grad for n, p in module.named_parameters()}


def tensors(module: torch.nn.Module) -> dict:
    return {**dict(module.named_parameters()), **dict(module.named_buffers())}


def param_pairs(pairs, module) -> list:
    names = dict(module.named_parameters())
    return [(o, ours) for o, ours in pairs if ours in names]


PHASE_LOSSES = {"Gmain": ("Loss/G/loss", "loss_G"), "Greg": ("Loss/pl_penalty", "pl_penalty"),
                "Dmain": ("Loss/D/loss", "loss_D"), "Dreg": ("Loss/r1_penalty", "r1_penalty")}


def compare_phases(ref, opts: dict, dtype, seed: int, batch: int) -> list[tuple]:
    rows = []
    for phase_name in ("Gmain", "Greg", "Dmain", "Dreg"):
        trainer, off = build(ref, opts, dtype, seed)
        real = torch.rand(batch, 3, trainer.G.resolution, trainer.G.resolution) * 2 - 1
        trainer.data.current = real
        phase = next(p for p in off.phases if p.name == phase_name)
        collector = ref.stats.Collector(regex=".*")
        torch.manual_seed(seed + 1)
        z = trainer.phase_latents()[["Gmain", "Greg", "Dmain", "Dreg"].index(phase_name)]
        ours = {"Gmain": lambda: trainer.g_main(z), "Greg": lambda: trainer.g_reg(z),
                "Dmain": lambda: trainer.d_main(real, z), "Dreg": lambda: trainer.d_reg(real)}[phase_name]()
        torch.manual_seed(seed + 1)
        z_off = torch.randn([len(off.phases) * batch, off.G.z_dim]).split(batch)[
            [p.name for p in off.phases].index(phase_name)]
        with reference_precision(ref, dtype):
            official_phase(ref, off, phase, real, z_off, batch_idx=0)
            collector.update()
        stat, key = PHASE_LOSSES[phase_name]
        loss_off = collector.mean(stat)
        loss_diff = abs(ours[key] - loss_off)
        if phase_name == "Gmain" and off.head_pairs:
            feat = sum(collector.mean(f"Loss/G/feat_loss_{r}") for r in (8, 16, 32, 64))
            d = abs(ours["loss_hsr"] - feat)
            ours_heads = {n: p.grad for n, p in trainer.heads.named_parameters()}
            off_heads = {n: p.grad for n, p in off.G.named_parameters()}
            ha, hr = diff(ours_heads, off_heads, off.head_pairs)
            rows.append(("Gmain HSR feature loss, heads", str(dtype).split(".")[-1], f"loss {feat:.6g}", d,
                         d / max(abs(feat), 1e-30), ha, hr))
        module, pairs = ((trainer.G, off.g_pairs), off.G) if phase_name[0] == "G" else ((trainer.D, off.d_pairs), off.D)
        (our_module, name_pairs), off_module = module, pairs
        g_abs, g_rel = diff(grads(our_module), grads(off_module), param_pairs(name_pairs, our_module))
        rows.append((phase_name, str(dtype).split(".")[-1], f"loss {ours[key]:.6g}", loss_diff,
                     loss_diff / max(abs(loss_off), 1e-30), g_abs, g_rel))
        if phase_name == "Greg":
            d = abs(trainer.pl.pl_mean.item() - off.loss.pl_mean.item())
            rows.append(("Greg pl_mean", str(dtype).split(".")[-1], f"{off.loss.pl_mean.item():.6g}", d,
                         d / max(abs(off.loss.pl_mean.item()), 1e-30), float("nan"), float("nan")))
    return rows


def compare_iterations(ref, opts: dict, dtype, seed: int, batch: int, iterations: int) -> list[tuple]:
    """N full iterations on both sides. In float32 a third run, the official code in float64 from the same
    weights, measures how far float32 rounding alone takes the official run (Adam's first steps are nearly
    sign(gradient), so gradients at rounding level flip whole updates): ours is judged against that."""
    trainer, off = build(ref, opts, dtype, seed)
    # (not in the fp16 recipe: its float16 blocks would stay float16 in the "float64" run)
    shadow = (build_official(ref, trainer, torch.float64)
              if dtype != torch.float64 and trainer.opts["precision"] == "none" else None)
    before = {k: v.detach().clone() for k, v in tensors(trainer.G).items()}
    before_d = {k: v.detach().clone() for k, v in tensors(trainer.D).items()}
    gen = torch.Generator().manual_seed(seed + 2)
    for i in range(iterations):
        real = torch.rand(batch, 3, trainer.G.resolution, trainer.G.resolution, generator=gen) * 2 - 1
        trainer.data.current = real
        torch.manual_seed(seed + 100 + i)
        trainer.step(i, np.arange(batch))
        for run in (off, shadow) if shadow is not None else (off,):
            torch.manual_seed(seed + 100 + i)
            official_iteration(ref, run, real, batch, i, i * batch, trainer.opts)
    rows = []
    dt = str(dtype).split(".")[-1]
    for what, ours_m, pairs, start in (("G", trainer.G, off.g_pairs, before), ("D", trainer.D, off.d_pairs, before_d),
                                       ("G_ema", trainer.G_ema, off.g_pairs, before)):
        ours_t, off_t = tensors(ours_m), tensors(getattr(off, what))
        a, r = diff(ours_t, off_t, pairs)
        update = max((ours_t[n].double() - start[n].double()).abs().max().item() for _, n in pairs)
        rows.append((f"{what} after {iterations} it.", dt, f"max update {update:.3g}", a, a / max(update, 1e-30),
                     float("nan"), r))
        if shadow is not None:
            sh = tensors(getattr(shadow, what))
            for label, t in (("ours", ours_t), ("official", None)):
                src = t if t is not None else {n: off_t[o] for o, n in pairs}
                a, r = diff(src, sh, pairs)
                rows.append((f"{what}: {label} {dt} vs official float64", dt, f"max update {update:.3g}", a,
                             a / max(update, 1e-30), float("nan"), r))
    if off.head_pairs:
        start = {n: p.detach() for n, p in build(ref, opts, dtype, seed)[0].heads.named_parameters()}
        ours_t, off_t = dict(trainer.heads.named_parameters()), dict(off.G.named_parameters())
        a, r = diff(ours_t, off_t, off.head_pairs)
        update = max((ours_t[n].double() - start[n].double()).abs().max().item() for _, n in off.head_pairs)
        rows.append((f"HSR heads after {iterations} it.", dt, f"max update {update:.3g}", a, a / max(update, 1e-30),
                     float("nan"), r))
    d = abs(trainer.pl.pl_mean.item() - off.loss.pl_mean.item())
    rows.append((f"pl_mean after {iterations} it.", dt, f"{off.loss.pl_mean.item():.6g}", d,
                 d / max(abs(off.loss.pl_mean.item()), 1e-30), float("nan"), float("nan")))
    return rows


def compare_forward(ref, preset_name: str, num_fp16_res: int, batch: int, seed: int) -> list[tuple]:
    """Images and D logits of the same weights: ours and the official in float32 and in the fp16 recipe."""
    torch.set_default_dtype(torch.float32)
    preset = get_preset(preset_name)
    torch.manual_seed(seed)
    ours = {p: (Generator(**preset, num_fp16_res=n).eval(), Discriminator(**preset, num_fp16_res=n))
            for p, n in (("fp32", 0), ("fp16", num_fp16_res))}
    ours["fp16"][0].load_state_dict(ours["fp32"][0].state_dict())
    ours["fp16"][1].load_state_dict(ours["fp32"][1].state_dict())
    g_pairs, _ = C.generator_name_pairs(preset)
    d_pairs, _ = C.discriminator_name_pairs(preset)
    official = {}
    for p, n in (("fp32", 0), ("fp16", num_fp16_res)):
        g_kwargs, d_kwargs = C.official_init_kwargs(preset, n)
        G, D = ref.networks.Generator(**g_kwargs).eval(), ref.networks.Discriminator(**d_kwargs)
        load(G, official_state(ours["fp32"][0], G, g_pairs))
        load(D, official_state(ours["fp32"][1], D, d_pairs))
        official[p] = (G, D)
    ws = ours["fp32"][0].mapping(torch.randn(batch, preset["z_dim"]))
    out = {}
    with torch.no_grad():
        for side, nets in (("ours", ours), ("official", official)):
            for p, (G, D) in nets.items():
                img = G.synthesis(ws, noise_mode="const")
                out[side, p] = (img, D(img, torch.zeros([batch, 0])) if side == "official" else D(img))
    rows = []
    for label, a, b in (("ours vs official, float32", ("ours", "fp32"), ("official", "fp32")),
                        ("ours vs official, fp16 recipe", ("ours", "fp16"), ("official", "fp16")),
                        ("official fp16 vs official float32", ("official", "fp16"), ("official", "fp32")),
                        ("ours fp16 vs ours float32", ("ours", "fp16"), ("ours", "fp32"))):
        for i, what in enumerate(("image", "D logits")):
            x, y = out[a][i].double(), out[b][i].double()
            d = (x - y).abs().max().item()
            rows.append((f"{what}: {label}", f"{preset_name}, batch {batch}", f"max |value| {y.abs().max():.3g}", d,
                         d / max(y.abs().max().item(), 1e-30), float("nan"), float("nan")))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, required=True, help="a stylegan2-ada-pytorch checkout")
    parser.add_argument("--dtype", nargs="*", default=["float64", "float32"], choices=["float64", "float32"],
                        help="step comparisons to run (none: only --forward)")
    parser.add_argument("--preset", default="demo",
                        help="a preset name of lead_hsr.gan.networks (demo, paper256) or hsr64 (the --hsr default)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--mixing", type=float, nargs="+", default=[0.0, 1.0],
                        help="style-mixing probabilities to run (1 = always mixed, at the seeded cutoff)")
    parser.add_argument("--pl-interval", type=int, default=4)
    parser.add_argument("--r1-interval", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hsr", action="store_true",
                        help="--reference is a val-iisc/HSR checkout: compare our HSR step with its loss and heads")
    parser.add_argument("--num-fp16-res", type=int, default=0,
                        help="> 0: the step comparison in the fp16 recipe (float32 only) at this num_fp16_res")
    parser.add_argument("--forward", metavar="PRESET",
                        help="also compare the forward pass (images, D logits) at this preset in float32 and in the "
                             "fp16 recipe (num_fp16_res 4); paper256 takes minutes on a CPU")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.hsr and args.preset == "demo":
        args.preset = "hsr64"
    torch.set_num_threads(args.threads)
    print("| check | mixing | dtype | value | max abs diff | rel. diff | grad max abs diff | grad rel. diff |")
    print("|---|---:|---|---|---:|---:|---:|---:|")
    for dtype_name in args.dtype:
        dtype = getattr(torch, dtype_name)
        ref = load_reference(args.reference, args.hsr)
        for mixing in args.mixing:
            fp16 = args.num_fp16_res > 0 and dtype == torch.float32
            preset = HSR64 if args.preset == "hsr64" else get_preset(args.preset)
            hsr = (dict(extractor="vit_dino", extractor_weights="random", level_resolutions=[8, 16, 32, 64])
                   if args.hsr else None)
            opts = dict(preset=preset, hsr=hsr, batch=args.batch, ada=False, style_mixing=mixing,
                        precision="fp16" if fp16 else "none", num_fp16_res=args.num_fp16_res, gamma=1.0, pl_interval=args.pl_interval, r1_interval=args.r1_interval,
                        ema_kimg=0.01, ema_rampup=0.05, seed=args.seed)
            rows = compare_phases(ref, opts, dtype, args.seed, args.batch)
            rows += compare_iterations(ref, opts, dtype, args.seed, args.batch, args.iterations)
            for check, dt, value, a, r, ga, gr in rows:
                dt = f"{dt} fp16 recipe" if fp16 else dt
                print(f"| {check} | {mixing:g} | {dt} | {value} | {a:.2e} | {r:.2e} | {ga:.2e} | {gr:.2e} |",
                      flush=True)
        torch.set_default_dtype(torch.float32)
    if args.forward:
        for check, what, value, a, r, _, _ in compare_forward(load_reference(args.reference), args.forward, 4,
                                                               args.batch, args.seed):
            print(f"| {check} | - | {what} | {value} | {a:.2e} | {r:.2e} | - | - |", flush=True)


if __name__ == "__main__":
    main()
