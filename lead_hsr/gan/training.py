"""StyleGAN2-ADA (+ HSR) training through the shared trainer (`lead_hsr.train.train`).

One iteration = the four StyleGAN2-ADA phases: Gmain (non-saturating loss [+ HSR]), Greg (lazy path-length
regularization every `pl_interval` steps), Dmain (logistic loss, ADA statistics), Dreg (lazy R1 every
`r1_interval` steps); then the G EMA update and the ADA p adjustment. Lazy phases scale the loss by their interval
and Adam's lr/betas by k/(k+1) (StyleGAN2, App. B). All randomness comes from the global RNGs (restored on resume)
or from `batch_indices(seed, step)`, so a resumed CPU run is bitwise identical to an uninterrupted one.

The step follows StyleGAN2-ADA's training loop and loss (training/training_loop.py, training/loss.py) to the order
of the random draws: one z batch per phase drawn before the phases, style mixing, noise and path-length draws as
the official run_G, the updated path-length mean not detached, R1 reals counted in ADA's statistic, non-finite
gradients replaced after every backward, the EMA ramp-up on the images seen before the step. With the same weights
and seed a step equals the official one (bench/compare_stylegan2_step.py, float64: ~1e-12).

Precision (`precision`): "fp16" is the official mixed-precision recipe that produced the published numbers (the
`num_fp16_res` highest-resolution blocks of G and D in float16, conv_clamp from the preset, no loss scaling,
`nan_to_num` on every gradient); "bf16" is autocast over every phase; "none" is float32 throughout.

"HSR after K kimg" = a new run with `init_from` = the baseline's K-kimg snapshot (exported with
`export_snapshots_kimg`), fresh HSR heads. The baseline itself is two jobs: a prefix run (`prefix=True`,
`total_kimg=K`) exports that snapshot and its full trainer state (`training-state-K.pt`); the full-length run
continues from the state (`continue_from`), bitwise identical on CPU to a run that never stopped, while the HSR
runs already train.
"""
from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import torch

from lead_hsr.errors import InputError
from lead_hsr.gan import loss as L
from lead_hsr.gan.ada import ADA_INTERVAL, ADA_KIMG, ADA_TARGET, GEOMETRY, AdaptiveAugment
from lead_hsr.gan.extractors import ExtractorSpec, FeatureExtractor
from lead_hsr.gan.hsr import HSRSpec, build_hsr_heads
from lead_hsr.gan.networks import Discriminator, Generator, count_parameters, get_preset
from lead_hsr.train.atomic import load_torch_file
from lead_hsr.train.compile import check_compile_option, compiled
from lead_hsr.train.device import AUTOCAST_DTYPES, full_precision

R1_INTERVAL = 16            # StyleGAN2: lazy R1 every 16 minibatches
PL_INTERVAL = 4             # StyleGAN2: lazy path-length regularization every 4 minibatches
PL_WEIGHT = 2.0             # StyleGAN2-ADA default path-length weight
PL_DECAY = 0.01             # decay of the running mean path length
PL_BATCH_SHRINK = 2         # path length on half the batch
ADAM_BETAS = (0.0, 0.99)    # StyleGAN2-ADA
ADAM_EPS = 1e-8
STYLE_MIXING_PROB = 0.9
NUM_FP16_RES = 4            # StyleGAN2-ADA / HSR train.py: the 4 highest resolutions in float16
GRAD_NAN = 0.0              # StyleGAN2-ADA training_loop.py: nan_to_num(nan=0, posinf=1e5, neginf=-1e5) per phase
GRAD_POSINF, GRAD_NEGINF = 1e5, -1e5
PHASES = ("Gmain", "Greg", "Dmain", "Dreg")
INIT_FROM_CARRIES = ("networks", "training_state")   # one z batch each, drawn before the phases (official loop)

# Defaults = HSR's paper runs (DESIGN section 6: batch 16, mbstd group 4, lr 0.002, EMA 10 kimg, gamma 1).
DEFAULT_OPTIONS: dict = dict(
    preset="paper256",          # name in networks.PRESETS or a dict of architecture keys
    batch=16,
    lr=0.002,
    gamma=1.0,                  # R1 weight; 0 turns R1 off
    r1_interval=R1_INTERVAL,
    pl_weight=PL_WEIGHT,        # 0 turns path-length regularization off (Table 4.4 "PLR")
    pl_interval=PL_INTERVAL,    # also sets G's Adam k/(k+1) correction, kept when pl_weight=0 (as official code)
    pl_decay=PL_DECAY,
    pl_batch_shrink=PL_BATCH_SHRINK,
    style_mixing=STYLE_MIXING_PROB,
    ema_kimg=10.0,
    ema_rampup=None,            # e.g. 0.05: EMA half-life <= 5% of the images seen so far
    ada=True,                   # adaptive 'bgc' augmentation on/off
    ada_target=ADA_TARGET,
    ada_interval=ADA_INTERVAL,
    ada_kimg=ADA_KIMG,
    ada_geometry="official",    # "official": 2x sym6 resampling around the warp; "single_warp": one warp, 5-27x
                                # cheaper augmentation on a CPU (bench/README.md), not the published pipe
    xflip=True,                 # dataset doubled by horizontal flips
    total_kimg=25000,
    snapshot_kimg=200,          # sample grid + snapshot in work_dir every N kimg
    export_snapshots_kimg=[],   # snapshots also written to out_dir (e.g. [500] for "HSR after 500 kimg")
    init_from=None,             # path of a network.pt-format snapshot to start from (fresh HSR heads)
    init_from_carries="networks",  # "networks": G, D, G_ema only, Adam and ADA p fresh (the official resume_pkl,
                                   # how HSR's runs start); "training_state": also Adam's moments and ADA p
    prefix=False,               # True: the first total_kimg of a longer run; writes its exports and
                                # training-state-<total_kimg>.pt (not network.pt/options.json)
    continue_from=None,         # a prefix run's training-state-K.pt: continue that run from K kimg
    hsr=None,                   # None = off; else dict with HSRSpec and ExtractorSpec keys (see hsr.py)
    weights_cache="weights_cache",
    device="auto",
    precision="fp16",           # "fp16": the official recipe (num_fp16_res blocks in float16); "bf16": autocast;
                                # "none": float32. float16 convs are ~200x slower than float32 on a CPU: CPU runs
                                # (demo, tests) say "none"
    num_fp16_res=NUM_FP16_RES,  # with precision "fp16": G and D blocks at the N highest resolutions in float16
    compile=False,              # True: G's mapping/synthesis and D through torch.compile in Gmain/Dmain
                                # (lead_hsr.train.compile); Greg/Dreg stay eager (double backward). Not part of
                                # the run identity
    seed=0,
    checkpoint_every=1000,      # steps (16 kimg at batch 16: minutes at paper speed; each saves G, D, G_ema, Adam)
    progress_every_s=None,      # seconds between progress lines in the job log; None: lead_hsr.train's default
    grid_size=8,                # sample grids are grid_size x grid_size images
)
# Options a prefix and its continuation may differ in: none of them changes a step's numbers.
LENGTH_AND_OUTPUT_KEYS = {"total_kimg", "prefix", "continue_from", "export_snapshots_kimg", "snapshot_kimg",
                          "checkpoint_every", "progress_every_s", "grid_size", "weights_cache", "device",
                          "compile"}   # the same math to float rounding: eager and compiled runs resume each other
HSR_KEYS = set(HSRSpec.__dataclass_fields__)
EXTRACTOR_KEYS = {f"extractor_{k}" if k != "name" else "extractor" for k in ExtractorSpec.__dataclass_fields__}


def resolve_options(options: dict) -> dict:
    """Defaults filled in, unknown keys rejected, HSR settings expanded (so options.json records every value)."""
    unknown = set(options) - set(DEFAULT_OPTIONS)
    if unknown:
        raise InputError(f"unknown GAN training options {sorted(unknown)}; valid keys: {sorted(DEFAULT_OPTIONS)}")
    opts = dict(DEFAULT_OPTIONS, **options)
    opts["preset"] = get_preset(opts["preset"])
    if opts["hsr"] is not None:
        opts["hsr"] = _resolve_hsr(dict(opts["hsr"]))
    if opts["batch"] % opts["preset"]["mbstd_group"] and opts["batch"] > opts["preset"]["mbstd_group"]:
        raise InputError(f"GAN batch {opts['batch']} must be divisible by mbstd_group "
                         f"{opts['preset']['mbstd_group']}; fix 'batch' or the preset")
    if opts["continue_from"] and (opts["init_from"] or opts["prefix"]):
        raise InputError("GAN options: continue_from (the rest of a prefix run) excludes init_from and prefix; "
                         f"got init_from={opts['init_from']!r}, prefix={opts['prefix']!r}")
    return opts


def run_identity(opts: dict) -> dict:
    """What a checkpoint must match to be resumed or continued: every option that changes a step's numbers."""
    return _jsonable({k: v for k, v in opts.items() if k not in LENGTH_AND_OUTPUT_KEYS})


def _resolve_hsr(hsr: dict) -> dict:
    unknown = set(hsr) - HSR_KEYS - EXTRACTOR_KEYS
    if unknown:
        raise InputError(f"unknown HSR options {sorted(unknown)}; valid: {sorted(HSR_KEYS | EXTRACTOR_KEYS)}")
    spec = HSRSpec(**{k: v for k, v in hsr.items() if k in HSR_KEYS})
    ext = _extractor_spec(hsr)
    return dict(spec.to_dict(), **{("extractor" if k == "name" else f"extractor_{k}"): v
                                    for k, v in ext.to_dict().items() if k != "timm_name"})


def _extractor_spec(hsr: dict) -> ExtractorSpec:
    kw = {("name" if k == "extractor" else k[len("extractor_"):]): v for k, v in hsr.items() if k in EXTRACTOR_KEYS}
    return ExtractorSpec(**kw)


def kimg_to_steps(kimg: float, batch: int) -> int:
    return max(1, math.ceil(kimg * 1000 / batch))


class GanData:
    """uint8 N x R x R x 3 memmap -> float [-1, 1] NCHW batches; index >= N means the x-flipped copy."""

    def __init__(self, store_path: Path, resolution: int, xflip: bool):
        from lead_hsr.data.store import open_store
        store = open_store(store_path)
        self.images = store.images
        if self.images.ndim != 4 or self.images.shape[1:] != (resolution, resolution, 3):
            raise InputError(f"{store_path}/images.npy: expected N x {resolution} x {resolution} x 3 images for "
                             f"this GAN preset, found {self.images.shape}; prepare the dataset at this resolution "
                             "or pick the matching preset")
        rows = store.split("train") if "split" in store.table else np.arange(len(self.images))
        self.rows = rows if len(rows) else np.arange(len(self.images))
        self.xflip = xflip
        self.n = len(self.rows) * (2 if xflip else 1)

    def batch(self, indices: np.ndarray, device) -> torch.Tensor:
        base = indices % len(self.rows)
        order = np.argsort(self.rows[base], kind="stable")    # memmap reads in file order, then restore order
        imgs = np.empty((len(base),) + self.images.shape[1:], dtype=np.uint8)
        imgs[order] = self.images[self.rows[base][order]]
        x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 127.5 - 1
        flip = torch.from_numpy(indices >= len(self.rows))
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        return x.to(device)


def make_adam(params, lr: float, reg_interval: int | None):
    """Adam with StyleGAN2's lazy-regularization correction: lr and betas ** (k / (k + 1))."""
    ratio = reg_interval / (reg_interval + 1) if reg_interval else 1.0
    betas = tuple(b ** ratio for b in ADAM_BETAS)
    return torch.optim.Adam(params, lr=lr * ratio, betas=betas, eps=ADAM_EPS)


def ema_beta(batch: int, cur_nimg: int, ema_kimg: float, ema_rampup: float | None) -> float:
    """Per-step EMA decay so that the old weights' share halves every `ema_kimg` thousand images."""
    ema_nimg = ema_kimg * 1000
    if ema_rampup is not None:
        ema_nimg = min(ema_nimg, cur_nimg * ema_rampup)
    return 0.5 ** (batch / max(ema_nimg, 1e-8))


@torch.no_grad()
def update_ema(G_ema: torch.nn.Module, G: torch.nn.Module, beta: float) -> None:
    for p_ema, p in zip(G_ema.parameters(), G.parameters()):
        p_ema.copy_(p.detach().lerp(p_ema, beta))
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b)


def _sync_grads(module: torch.nn.Module) -> None:
    """Average gradients over ranks under torchrun (all phases call G/D pieces directly, so no DDP wrapper)."""
    from lead_hsr.train import ddp
    if not ddp.is_distributed():
        return
    for p in module.parameters():
        if p.grad is not None:
            torch.distributed.all_reduce(p.grad)
            p.grad /= ddp.world_size()


class CompiledGenerator:
    """G's mapping and synthesis through torch.compile, sharing G's parameters and buffers (w_avg): what
    `mix_styles` and the phases call (`.mapping`, `.synthesis`, `.training`)."""

    def __init__(self, G: Generator):
        self.G = G
        self.mapping = compiled(G.mapping)
        self.synthesis = compiled(G.synthesis)

    @property
    def training(self) -> bool:
        return self.G.training


class GanTrainer:
    """Networks, optimizers and the four phases of one iteration. `state()` is what the trainer checkpoints."""

    def __init__(self, opts: dict, data: GanData | None, device, cache_dir: Path | None = None):
        from lead_hsr.train import ddp
        self.opts, self.data, self.device = opts, data, torch.device(device)
        if opts["precision"] not in AUTOCAST_DTYPES:
            raise InputError(f"GAN option precision: got {opts['precision']!r}; expected one of "
                             f"{sorted(AUTOCAST_DTYPES)} (fp16 = StyleGAN2-ADA's mixed-precision recipe)")
        if opts["init_from_carries"] not in INIT_FROM_CARRIES:
            raise InputError(f"GAN option init_from_carries: got {opts['init_from_carries']!r}; expected one of "
                             f"{INIT_FROM_CARRIES}")
        if opts["ada_geometry"] not in GEOMETRY:
            raise InputError(f"GAN option ada_geometry: got {opts['ada_geometry']!r}; expected one of "
                             f"{sorted(GEOMETRY)}")
        if opts["batch"] % ddp.world_size():
            raise InputError(f"GAN batch {opts['batch']} must be divisible by the number of processes "
                             f"{ddp.world_size()}; fix 'batch' or the torchrun --nproc-per-node")
        self.local_batch = opts["batch"] // ddp.world_size()    # per-process share of the global batch
        preset = opts["preset"]
        fp16_res = opts["num_fp16_res"] if opts["precision"] == "fp16" else 0
        self.G = Generator(**preset, num_fp16_res=fp16_res).to(self.device).train()
        self.D = Discriminator(**preset, num_fp16_res=fp16_res).to(self.device).train()
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        # Gmain and Dmain run these (compiled with `compile`, sharing G's and D's parameters); Greg and Dreg
        # differentiate twice and run the eager G and D (lead_hsr.train.compile)
        use_compile = check_compile_option(opts["compile"], "GAN option compile")
        self.G_fast = CompiledGenerator(self.G) if use_compile else self.G
        self.D_fast = compiled(self.D, use_compile)
        g_int = opts["pl_interval"] if opts["pl_interval"] else None
        d_int = opts["r1_interval"] if opts["r1_interval"] else None
        self.opt_G = make_adam(self.G.parameters(), opts["lr"], g_int)
        self.opt_D = make_adam(self.D.parameters(), opts["lr"], d_int)
        self.ada = AdaptiveAugment(opts["ada"], opts["ada_target"], opts["ada_interval"], opts["ada_kimg"],
                                   geometry=opts["ada_geometry"]).to(self.device)
        self.pl = L.PathLengthState(opts["pl_decay"]).to(self.device)
        self.heads = self.opt_heads = self.extractor = None
        self.extractor_record = None
        if opts["hsr"] is not None:
            self._build_hsr(opts["hsr"], cache_dir or Path(opts["weights_cache"]))

    def _build_hsr(self, hsr: dict, cache_dir) -> None:
        spec = HSRSpec(**{k: v for k, v in hsr.items() if k in HSR_KEYS})
        ext_spec = _extractor_spec(hsr)
        self.extractor = FeatureExtractor(ext_spec, cache_dir, seed=self.opts["seed"]).to(self.device)
        self.extractor_record = self.extractor.record
        self.heads = build_hsr_heads(spec, self.G.synthesis, self.extractor.feature_dims(),
                                     ext_spec.input_size).to(self.device)
        # The official heads live inside G (FeatureGuidedSynthesisNetwork.feat_transfer_list) and train with G's
        # Adam: the lazy-regularisation correction applies to them too.
        g_int = self.opts["pl_interval"] if self.opts["pl_interval"] else None
        self.opt_heads = make_adam(self.heads.parameters(), self.opts["lr"], g_int)

    def state(self) -> dict:
        s = dict(G=self.G, D=self.D, G_ema=self.G_ema, opt_G=self.opt_G, opt_D=self.opt_D, ada=self.ada,
                 pl=self.pl)
        if self.heads is not None:
            s.update(heads=self.heads, opt_heads=self.opt_heads)
        return s

    # ---------------------------------------------------------------- phases
    def _autocast(self):
        """bf16 autocast (precision "bf16"); "fp16" runs float16 blocks without autocast, as the official code."""
        from lead_hsr.train import autocast_for
        return autocast_for(self.device, "bf16" if self.opts["precision"] == "bf16" else "none")

    def _step(self, modules_and_optimizers, loss) -> None:
        """Backward, then per module: DDP average, non-finite gradients replaced (official), Adam step."""
        for _, opt in modules_and_optimizers:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        for module, opt in modules_and_optimizers:
            _sync_grads(module)
            for p in module.parameters():
                if p.grad is not None:
                    torch.nan_to_num(p.grad, nan=GRAD_NAN, posinf=GRAD_POSINF, neginf=GRAD_NEGINF, out=p.grad)
            opt.step()

    def g_main(self, z: torch.Tensor) -> dict:
        self.G.requires_grad_(True)
        self.D.requires_grad_(False)
        out = {}
        with self._autocast():
            ws = L.mix_styles(self.G_fast, z, self.opts["style_mixing"])
            img, feats, _ = self.G_fast.synthesis(ws, return_features=True)
            loss = L.g_nonsaturating_loss(full_precision(self.D_fast(self.ada(img))))
            out["loss_G"] = loss.item()
            if self.heads is not None:
                hsr = self._hsr_loss(img, feats)
                out["loss_hsr"] = hsr.item()
                loss = loss + hsr
        steps = [(self.G, self.opt_G)] + ([(self.heads, self.opt_heads)] if self.heads is not None else [])
        self._step(steps, loss)
        return out

    def _hsr_loss(self, img, feats) -> torch.Tensor:
        feats = {r: full_precision(f) for r, f in feats.items()}   # the heads run in float32 (official HSR)
        if self.heads.spec.target_stop_grad:
            with torch.no_grad():
                targets = self.extractor(img.detach())
        else:
            targets = self.extractor(img)
        return self.heads.loss(feats, targets)

    def g_reg(self, z: torch.Tensor) -> dict:
        """Path-length penalty on the first batch / pl_batch_shrink of `z`, scaled by the interval (lazy)."""
        self.G.requires_grad_(True)
        self.D.requires_grad_(False)
        n = max(1, z.shape[0] // self.opts["pl_batch_shrink"])
        with self._autocast():
            ws = L.mix_styles(self.G, z[:n], self.opts["style_mixing"])
            img = full_precision(self.G.synthesis(ws))
            lengths = full_precision(L.path_length(img, ws, torch.randn_like(img)))
        penalty = self.pl.penalty(lengths)
        # `img * 0` as in the official loss: every G parameter gets a (zero) gradient, so Adam steps all of them
        # (its moments and step count move even where the penalty does not reach)
        loss = (img[:, 0, 0, 0] * 0 + penalty * self.opts["pl_weight"]).mean() * self.opts["pl_interval"]
        self._step([(self.G, self.opt_G)], loss)
        return {"pl_penalty": penalty.mean().item(), "pl_mean": self.pl.pl_mean.item()}

    def d_main(self, real: torch.Tensor, z: torch.Tensor) -> dict:
        self.G.requires_grad_(False)
        self.D.requires_grad_(True)
        with torch.no_grad(), self._autocast():
            ws = L.mix_styles(self.G_fast, z, self.opts["style_mixing"])
            fake = self.G_fast.synthesis(ws)
        with self._autocast():
            fake_logits = full_precision(self.D_fast(self.ada(fake)))
            real_logits = full_precision(self.D_fast(self.ada(real)))
            loss = L.d_logistic_loss(real_logits, fake_logits)
        self.ada.accumulate(real_logits)
        self._step([(self.D, self.opt_D)], loss)
        return {"loss_D": loss.item(), "D_real": real_logits.mean().item(), "D_fake": fake_logits.mean().item()}

    def d_reg(self, real: torch.Tensor) -> dict:
        """R1 on augmented reals, gradient w.r.t. the un-augmented image (through ADA), lazy scaling. These real
        logits count in ADA's statistic too (the official loss reports them in both D phases)."""
        self.G.requires_grad_(False)
        self.D.requires_grad_(True)
        real = real.detach().requires_grad_(True)
        with self._autocast():
            logits = full_precision(self.D(self.ada(real)))
            r1 = L.r1_penalty(real, logits)
        self.ada.accumulate(logits)
        # `logits * 0` as in the official loss: every D parameter gets a (zero) gradient and an Adam step
        loss = (logits[:, 0] * 0 + r1 * (self.opts["gamma"] / 2)).mean() * self.opts["r1_interval"]
        self._step([(self.D, self.opt_D)], loss)
        return {"r1_penalty": r1.mean().item()}

    def phase_latents(self) -> list[torch.Tensor]:
        """One z batch per phase of `PHASES`, drawn at once before any phase as the official loop does (global
        batch rows per phase, this process's share first), so every phase's z is the same whichever run."""
        z = torch.randn(len(PHASES) * self.opts["batch"], self.G.z_dim, device=self.device)
        return [chunk[:self.local_batch] for chunk in z.split(self.opts["batch"])]

    def step(self, step: int, indices: np.ndarray) -> dict:
        o = self.opts
        real = self.data.batch(indices, self.device)
        z_gmain, z_greg, z_dmain, _ = self.phase_latents()
        out = self.g_main(z_gmain)
        if o["pl_weight"] and o["pl_interval"] and step % o["pl_interval"] == 0:
            out.update(self.g_reg(z_greg))
        out.update(self.d_main(real, z_dmain))
        if o["gamma"] and o["r1_interval"] and step % o["r1_interval"] == 0:
            out.update(self.d_reg(real))
        # the official EMA ramp-up sees the images counted *before* this step
        update_ema(self.G_ema, self.G, ema_beta(o["batch"], step * o["batch"], o["ema_kimg"], o["ema_rampup"]))
        self.ada.maybe_adjust(step, o["batch"])
        out["ada_p"] = float(self.ada.p)
        return out

    # ---------------------------------------------------------------- snapshots
    def snapshot(self, kimg: float, optimizers: bool = True) -> dict:
        """network.pt content: weights_only-loadable (tensors, dicts, primitives).

        `optimizers=False`: the periodic history snapshots (`<work_dir>/snapshots/`), like the official
        network-snapshot pickles (G, D, G_ema, no Adam state): at paper256 686 -> about 300 MB each, and a
        25,000-kimg run writes 125 of them. Loading one with init_from starts Adam fresh."""
        return dict(G_ema=self.G_ema.state_dict(), G=self.G.state_dict(), D=self.D.state_dict(),
                    opt_G=self.opt_G.state_dict() if optimizers else None,
                    opt_D=self.opt_D.state_dict() if optimizers else None, ada_p=float(self.ada.p),
                    hsr_heads=None if self.heads is None else self.heads.state_dict(),
                    preset=dict(self.opts["preset"]), options=_jsonable(self.opts), kimg=float(kimg),
                    extractor=self.extractor_record)

    def init_from(self, path: Path) -> None:
        """Start from another run's snapshot: G, D, G_ema (HSR heads stay fresh); with `init_from_carries:
        training_state` also the optimizers and ADA p. The official code (StyleGAN2-ADA's and HSR's resume_pkl)
        copies the networks only: Adam and p start fresh. An imported official checkpoint has no optimizer state."""
        snap = load_snapshot(path)
        if snap["preset"] != self.opts["preset"]:
            hint = (f"; set this run's train.preset to the imported one: {snap['preset']}" if snap.get("imported")
                    else "")
            raise InputError(f"{path}: snapshot preset {snap['preset']} differs from this run's "
                             f"{self.opts['preset']}; init_from needs the same architecture{hint}")
        self.G.load_state_dict(snap["G"])
        self.D.load_state_dict(snap["D"])
        self.G_ema.load_state_dict(snap["G_ema"])
        if self.opts["init_from_carries"] != "training_state":
            return
        if snap.get("opt_G") is not None:
            self.opt_G.load_state_dict(snap["opt_G"])
            self.opt_D.load_state_dict(snap["opt_D"])
        if self.ada.enabled:
            self.ada.p.fill_(snap["ada_p"])

    @torch.no_grad()
    def sample_grid(self, path: Path, grid_size: int, seed: int) -> None:
        from PIL import Image
        from lead_hsr.train import atomic_write_bytes
        import io
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(grid_size ** 2, self.G.z_dim, generator=g).to(self.device)
        img = self.G_ema(z, noise_mode="const").float().clamp(-1, 1)
        img = ((img + 1) * 127.5).round().to(torch.uint8).cpu()
        n, c, h, w = img.shape
        grid = img.reshape(grid_size, grid_size, c, h, w).permute(0, 3, 1, 4, 2).reshape(grid_size * h,
                                                                                         grid_size * w, c)
        buf = io.BytesIO()
        Image.fromarray(grid.numpy()).save(buf, format="PNG")
        atomic_write_bytes(buf.getvalue(), path)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def load_snapshot(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: GAN snapshot not found; expected a network.pt written by train_gan "
                         "(check the run that should produce it, e.g. the baseline's export_snapshots_kimg)")
    fix = ("expected a network.pt written by train_gan; import an official StyleGAN2-ADA / HSR pickle first with "
           "`python -m lead_hsr.gan.checkpoints import IN.pkl OUT.pt`")
    snap = load_torch_file(path, "a GAN network.pt", fix)
    if not isinstance(snap, dict):
        raise InputError(f"{path}: holds a {type(snap).__name__}, not a GAN snapshot; {fix}")
    missing = {"G_ema", "G", "D", "preset"} - set(snap)
    if missing:
        kind = f" (a {snap['kind']!r} landmark model)" if "kind" in snap else ""
        raise InputError(f"{path}: not a train_gan snapshot{kind}: missing {sorted(missing)}; {fix}")
    return snap


def load_generator(path: Path, device="cpu") -> Generator:
    """G_ema of a network.pt, in eval mode without gradients (what the metrics use)."""
    return generator_of(load_snapshot(path), device)


def generator_of(snap: dict, device="cpu") -> Generator:
    """G_ema of loaded network.pt content, in float32 whatever precision it trained in (see `precision_record`)."""
    G = Generator(**snap["preset"])
    G.load_state_dict(snap["G_ema"])
    return G.to(device).eval().requires_grad_(False)


def precision_record(snap: dict) -> dict:
    """The precision a network trained in (ours: its options; imported: the checkpoint's num_fp16_res) and the
    one our metrics run it in. Official metrics run G in its training precision (fp16 blocks on a GPU); ours run it
    in float32, which moves an official paper256 image by up to ~7e-3 (bench/README.md)."""
    imported = snap.get("imported") or {}
    if imported:
        fp16_res = int(imported.get("G_num_fp16_res") or 0)
        trained = dict(precision="fp16" if fp16_res else "none", num_fp16_res=fp16_res)
    else:
        opts = snap.get("options") or {}
        precision = opts.get("precision", "none")
        trained = dict(precision=precision, num_fp16_res=int(opts.get("num_fp16_res", 0)) if precision == "fp16"
                       else 0)
    return dict(trained=trained, evaluated_in="float32")


def train_gan(dataset_store: Path, out_dir: Path, options: dict, work_dir: Path,
              time_budget_s: float | None = None) -> Path:
    """Train to `total_kimg`, resumably, and write out_dir/network.pt and out_dir/options.json. Returns network.pt.

    Periodic snapshots and sample grids go to work_dir (undeclared); `export_snapshots_kimg` to out_dir.
    A prefix run (`prefix=True`) writes its exports and out_dir/training-state-<total_kimg>.pt instead (returned);
    a run with `continue_from=<that file>` starts where the prefix stopped."""
    from lead_hsr.train import (RunConfig, atomic_copy, atomic_save_torch, ddp, export_state, pick_device, train,
                                write_options_json)
    opts = resolve_options(options)
    out_dir, work_dir = Path(out_dir), Path(work_dir)
    ddp.init_from_env(pick_device(opts["device"]))      # no-op without torchrun
    device = pick_device(opts["device"])                 # this process's GPU under torchrun
    data = GanData(Path(dataset_store), opts["preset"]["resolution"], opts["xflip"])
    batch = opts["batch"]
    torch.manual_seed(opts["seed"])       # network init is part of the run's identity
    trainer = GanTrainer(opts, data, device, cache_dir=Path(opts["weights_cache"]))
    if opts["init_from"]:
        trainer.init_from(Path(opts["init_from"]))
    total_steps = kimg_to_steps(opts["total_kimg"], batch)
    snap_every = kimg_to_steps(opts["snapshot_kimg"], batch)
    export_steps = {kimg_to_steps(k, batch): k for k in opts["export_snapshots_kimg"]}
    for k in opts["export_snapshots_kimg"]:
        if kimg_to_steps(k, batch) > total_steps:
            raise InputError(f"export_snapshots_kimg {k} is beyond total_kimg {opts['total_kimg']}; fix the options")

    def step_fn(step: int) -> dict:
        # All of a step's randomness (z, noise, style mixing, ADA) derives from (seed, step, rank): resume-safe,
        # and each DDP process draws different samples.
        torch.manual_seed(int(np.random.SeedSequence([opts["seed"], step, ddp.rank()]).generate_state(1)[0]))
        indices = ddp.rank_batch_indices(data.n, batch, step, opts["seed"])
        out = trainer.step(step, indices)
        done = step + 1
        if ddp.is_main_process():
            kimg = done * batch / 1000
            if done % snap_every == 0 or done == total_steps:
                trainer.sample_grid(work_dir / "samples" / f"fakes{done * batch // 1000:06d}.png",
                                    opts["grid_size"], opts["seed"])
                atomic_save_torch(trainer.snapshot(kimg, optimizers=False),
                                  work_dir / "snapshots" / f"network-step{done:08d}.pt")
            if done in export_steps:
                # kept in work_dir: Snakemake deletes a failed job's outputs, and a resumed run is past this step
                atomic_save_torch(trainer.snapshot(kimg), work_dir / exported_snapshot_name(export_steps[done]))
        return out

    cfg = RunConfig(work_dir=work_dir, total_steps=total_steps, seed=opts["seed"],
                    checkpoint_every=opts["checkpoint_every"], time_budget_s=time_budget_s,
                    progress_every_s=opts["progress_every_s"], images_per_step=batch, progress_unit="kimg",
                    continue_from=opts["continue_from"], identity=run_identity(opts))
    train(cfg, trainer.state(), step_fn)
    if ddp.is_main_process():
        for kimg in opts["export_snapshots_kimg"]:
            name = exported_snapshot_name(kimg)
            if not (work_dir / name).is_file():
                raise InputError(f"{work_dir / name}: no snapshot at {kimg} kimg; this run continued from "
                                 f"{opts['continue_from']}, past that point: export it from the prefix run")
            atomic_copy(work_dir / name, out_dir / name)
    if opts["prefix"]:
        state = out_dir / prefix_state_name(opts["total_kimg"])
        if ddp.is_main_process():
            export_state(cfg, state, {"options": _jsonable(opts)})
        return state
    network = out_dir / "network.pt"
    if ddp.is_main_process():
        record = _jsonable(dict(opts, extractor_record=trainer.extractor_record,
                                G_params=count_parameters(trainer.G), D_params=count_parameters(trainer.D),
                                total_steps=total_steps))
        atomic_save_torch(trainer.snapshot(total_steps * batch / 1000), network)
        write_options_json(out_dir / "options.json", record)
    return network


def exported_snapshot_name(kimg: float) -> str:
    """File name (in out_dir) of a snapshot exported at `kimg`: network-snapshot-500.pt, ...-0.024.pt."""
    return f"network-snapshot-{float(kimg):g}.pt"


def prefix_state_name(kimg: float) -> str:
    """File name (in out_dir) of a prefix run's full trainer state at `kimg`: training-state-500.pt."""
    return f"training-state-{float(kimg):g}.pt"
