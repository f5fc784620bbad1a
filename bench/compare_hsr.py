"""Differential check: an official HSR training pickle -> our importer -> our generator, HSR heads and extractor.

Builds the official classes from a checkout of val-iisc/HSR that the user names (`--hsr`; nothing of it is copied
here or written into this repository): `training.networks.FeatureGuidedGenerator` with `pred_feat_dims` = 4 x 768
as `train_hsr.py` configures it (`paper256`: z/w 512, 8 mapping layers, channel_base 16384, channel_max 512,
num_fp16_res 4, conv_clamp 256; `small`: the smallest generator the official heads fit, 64 px), perturbs every
tensor with seeded noise (biases, noise strengths and w_avg become non-zero; G_ema differs from G), writes a
training-format pickle the way `training/training_loop.py` does (dict G, D, G_ema, augment_pipe = None as in its
HSR loop, training_set_kwargs; persistence-wrapped classes), imports it with `lead_hsr.gan.checkpoints`, and
compares:

- images of G_ema, noise_mode 'const', against the official run with force_fp32=True (our networks are float32);
  with --fp16 also against the official mixed-precision run (num_fp16_res=4 on the reference ops: slow on CPU);
- each head's output at its G block's resolution and after resizing to the 14x14 target grid, end to end (each
  side's own mapping, synthesis and heads, float32) and on identical inputs in float64 (the official Head runs in
  float64 when given float64 input; its G cannot: its blocks cast to float32/float16);
- the extractor targets and the HSR loss with a random-init timm ViT-B/16 standing in for DINO (no weights
  offline): `torch.hub.load` is redirected to it (with DINO's `get_intermediate_layers(x, n)` API), so the
  official `training.load_fe.DINO` / `DeiT` wrappers and `training.loss.StyleGAN2HSR.feature_loss` run unchanged;
- our export loaded back into the official FeatureGuidedGenerator (strict state_dict load).

The resizing of the head outputs before the loss is inline code of `StyleGAN2HSR.accumulate_gradients`
(training/loss.py: area interpolation to the extractor's spatial size when upsampling or equal, adaptive average
pooling otherwise); this script applies that rule to the official heads' outputs.

max rel diff = max |ours - official| / max |official| (relative to the size of the values compared).

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 .venv/bin/python bench/compare_hsr.py --hsr /path/to/HSR \\
        [--configs small,paper256] [--batch 2] [--fp16]
"""
from __future__ import annotations

import argparse
import copy
import pickle
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lead_hsr.gan import checkpoints as C  # noqa: E402
from lead_hsr.gan.extractors import ExtractorSpec, FeatureExtractor  # noqa: E402
from lead_hsr.gan.networks import Generator  # noqa: E402

CONFIGS = {   # train_hsr.py cfg_specs / setup_training_loop_kwargs
    "paper256": dict(img_resolution=256, z_dim=512, w_dim=512, num_layers=8, channel_base=16384, channel_max=512,
                     mbstd=4),
    "small": dict(img_resolution=64, z_dim=64, w_dim=64, num_layers=2, channel_base=2048, channel_max=128,
                  mbstd=2),
}
FEATURE_DIM = 768          # PretrainedFE('DINO').layer_dims: 4 x 768
ROWS: list[tuple] = []


def row(config: str, what: str, dtype: str, ours: torch.Tensor, ref: torch.Tensor) -> None:
    ours, ref = ours.detach().double(), ref.detach().double()
    assert ours.shape == ref.shape, (what, ours.shape, ref.shape)
    diff = (ours - ref).abs().max().item()
    if ref.numel() == 1:
        what = f"{what} [official {ref.item():.10g}]"
    ROWS.append((config, what, dtype, f"{diff:.3g}", f"{diff / max(ref.abs().max().item(), 1e-30):.3g}"))
    print(f"  {what:<58} {dtype:<8} {ROWS[-1][3]:>10} {ROWS[-1][4]:>10}", flush=True)


def note(config: str, what: str, text: str) -> None:
    ROWS.append((config, what, "-", text, ""))
    print(f"  {what:<58} {text}", flush=True)


# ---------------------------------------------------------------------------------- the official code, as a user
def load_official(hsr: Path):
    sys.path.insert(0, str(hsr))
    import dnnlib  # noqa: F401
    from training import networks
    return networks


class DinoHubStandIn(nn.Module):
    """A timm ViT behind DINO's hub API: get_intermediate_layers(x, n) = the final LayerNorm applied to each of the
    last n block outputs, CLS token included (facebookresearch/dino vision_transformer.py)."""

    def __init__(self, vit):
        super().__init__()
        self.vit = vit

    def get_intermediate_layers(self, x, n=1):
        v = self.vit
        x = v.norm_pre(v._pos_embed(v.patch_embed(x)))
        out = []
        for i, blk in enumerate(v.blocks):
            x = blk(x)
            if len(v.blocks) - i <= n:
                out.append(v.norm(x))
        return out


def patch_hub(models: dict):
    """torch.hub.load(repo, name, ...) -> the stand-in registered for `name` (no internet, no weights)."""
    def load(repo, name, *args, **kwargs):
        if name not in models:
            raise RuntimeError(f"compare_hsr: no stand-in for torch.hub model {repo}:{name}")
        return models[name]
    torch.hub.load = load


def build_official(networks, cfg: dict, seed: int):
    import dnnlib
    g_kwargs = dnnlib.EasyDict(class_name="training.networks.FeatureGuidedGenerator", z_dim=cfg["z_dim"],
                               w_dim=cfg["w_dim"], mapping_kwargs=dnnlib.EasyDict(num_layers=cfg["num_layers"]),
                               synthesis_kwargs=dnnlib.EasyDict(
                                   channel_base=cfg["channel_base"], channel_max=cfg["channel_max"],
                                   num_fp16_res=4, conv_clamp=256, pred_feat_dims=[FEATURE_DIM] * 4))
    d_kwargs = dnnlib.EasyDict(class_name="training.networks.Discriminator", block_kwargs=dnnlib.EasyDict(),
                               mapping_kwargs=dnnlib.EasyDict(), channel_base=cfg["channel_base"],
                               channel_max=cfg["channel_max"], num_fp16_res=4, conv_clamp=256,
                               epilogue_kwargs=dnnlib.EasyDict(mbstd_group_size=cfg["mbstd"]))
    common = dict(c_dim=0, img_resolution=cfg["img_resolution"], img_channels=3)
    torch.manual_seed(seed)
    G = dnnlib.util.construct_class_by_name(**g_kwargs, **common).train().requires_grad_(False)
    D = dnnlib.util.construct_class_by_name(**d_kwargs, **common).train().requires_grad_(False)
    with torch.no_grad():
        for m in (G, D):
            for name, t in list(m.named_parameters()) + list(m.named_buffers()):
                if name.endswith("w_avg") or t in set(m.parameters()):
                    t.add_(torch.randn_like(t) * 0.1)
    G_ema = copy.deepcopy(G).eval()
    with torch.no_grad():   # G_ema != G, its heads included (the official EMA averages them too)
        for t in G_ema.parameters():
            t.add_(torch.randn_like(t) * 0.01)
    return G, D, G_ema


def write_training_pickle(path: Path, G, D, G_ema) -> None:
    """As training/training_loop.py writes network-snapshot-*.pkl (augment_pipe None: its HSR loop builds none)."""
    data = dict(training_set_kwargs=dict(class_name="training.dataset.ImageFolderDataset", path="data.zip",
                                         use_labels=False, max_size=1000, xflip=True,
                                         resolution=G.img_resolution))
    for name, module in (("G", G), ("D", D), ("G_ema", G_ema), ("augment_pipe", None)):
        if module is not None:
            module = copy.deepcopy(module).eval().requires_grad_(False).cpu()
        data[name] = module
    with open(path, "wb") as f:
        pickle.dump(data, f)


def official_float64(module: nn.Module) -> nn.Module:
    """A float64 copy of an official module; its FIR filter buffers stay float32 (conv2d_resample asserts that;
    1x1 convs without resampling never use them)."""
    module = copy.deepcopy(module).double()
    for m in module.modules():
        if isinstance(getattr(m, "resample_filter", None), torch.Tensor):
            m.resample_filter = m.resample_filter.float()
    return module


def official_resize(g: torch.Tensor, size: int) -> torch.Tensor:
    """training/loss.py StyleGAN2HSR.accumulate_gradients: area up to the extractor's size, else adaptive pool."""
    if g.shape[-1] <= size:
        return F.interpolate(g, size=[size] * 2, mode="area")
    return F.adaptive_avg_pool2d(g, [size] * 2)


# ------------------------------------------------------------------------------------------------------ compare
def compare(config: str, hsr: Path, batch: int, fp16: bool, workdir: Path) -> None:
    networks = load_official(hsr)
    cfg = CONFIGS[config]
    print(f"\n[{config}] building the official classes ...", flush=True)
    G_off, D_off, G_ema_off = build_official(networks, cfg, seed=0)
    pkl = workdir / f"hsr-{config}.pkl"
    write_training_pickle(pkl, G_off, D_off, G_ema_off)
    snap = C.import_official(pkl)
    imp = snap["imported"]
    note(config, "import", f"ok: {imp['generator_class']}, heads {imp['hsr_heads']} from "
                           f"{imp['hsr']['heads_from']}, spec {snap['hsr_spec']}")
    G_ema = Generator(**snap["preset"]).eval()
    G_ema.load_state_dict(snap["G_ema"])
    G = Generator(**snap["preset"]).eval()
    G.load_state_dict(snap["G"])
    heads = C.imported_hsr_heads(snap).eval()
    G_off, G_ema_off = G_off.eval(), G_ema_off.eval()

    torch.manual_seed(1)
    z = torch.randn(batch, cfg["z_dim"])
    c = torch.zeros(batch, 0)
    with torch.no_grad():
        t0 = time.time()
        ref = G_ema_off(z, c, noise_mode="const", force_fp32=True)
        row(config, "G_ema image, noise const (official force_fp32)", "float32", G_ema(z, noise_mode="const"), ref)
        ref_t = G_ema_off(z, c, truncation_psi=0.7, noise_mode="const", force_fp32=True)
        row(config, "G_ema image, truncation 0.7", "float32",
            G_ema(z, truncation_psi=0.7, noise_mode="const"), ref_t)
        print(f"  ({time.time() - t0:.0f} s)", flush=True)

        # heads end to end: each side's own mapping, synthesis blocks (const noise) and heads, float32
        img_off, feats_off = G_off.synthesis.get_feats(G_off.mapping(z, c), [0, 1, 2, 3], False,
                                                       noise_mode="const", force_fp32=True)
        img, g_feats, _ = G.synthesis(G.mapping(z), noise_mode="const", return_features=True)
        row(config, "G image (the one HSR's targets see)", "float32", img, img_off)
        native = heads.native(g_feats)
        resized = heads.predictions(g_feats, [14] * 4)
        for i, r in enumerate(heads.level_res):
            row(config, f"head {i} ({r} px) native, end to end", "float32", native[i], feats_off[i])
            row(config, f"head {i} ({r} px) -> 14x14, end to end", "float32", resized[i],
                official_resize(feats_off[i], 14))
            same = torch.equal(F.interpolate(feats_off[i], size=[14] * 2, mode="area"),
                               F.adaptive_avg_pool2d(feats_off[i], 14))
            if r < 14 and not same:
                note(config, f"head {i}: area interpolation != adaptive pooling", "DIFFERENT")

        # heads alone on identical inputs (our G's block outputs), float64: official Head modules in float64
        heads64 = copy.deepcopy(heads).double()
        f64 = {r: g_feats[r].double() for r in heads.level_res}
        native64, resized64 = heads64.native(f64), heads64.predictions(f64, [14] * 4)
        for i, r in enumerate(heads.level_res):
            ref64 = official_float64(G_off.synthesis.feat_transfer_list[i])(f64[r], False)
            row(config, f"head {i} ({r} px) native, same input", "float64", native64[i], ref64)
            row(config, f"head {i} ({r} px) -> 14x14, same input", "float64", resized64[i],
                official_resize(ref64, 14))

        # fp16: the official mixed-precision path (blocks >= 32 px in fp16 at 256; heads cast to float32)
        if fp16:
            t0 = time.time()
            n = 1
            ref16 = G_ema_off(z[:n], c[:n], noise_mode="const")
            row(config, "G_ema image vs official fp16 (num_fp16_res=4)", "fp16/32",
                G_ema(z[:n], noise_mode="const"), ref16)
            _, feats16 = G_off.synthesis.get_feats(G_off.mapping(z[:n], c[:n]), [0, 1, 2, 3], False,
                                                   noise_mode="const")
            for i, r in enumerate(heads.level_res):
                row(config, f"head {i} ({r} px) native vs official fp16 blocks", "fp16/32", native[i][:n],
                    feats16[i])
            print(f"  (fp16 reference path: {time.time() - t0:.0f} s)", flush=True)

    compare_extractors_and_loss(config, heads, G_off, img_off, feats_off, img, g_feats)

    exported = C.export_official(snap)
    ge = exported["G_ema"]
    official_from_export = networks.FeatureGuidedGenerator(**ge["init_kwargs"]).eval()
    official_from_export.load_state_dict(ge["state_dict"], strict=True)
    with torch.no_grad():
        row(config, f"export -> official {ge['class_name'].rsplit('.', 1)[1]} (strict load), image", "float32",
            official_from_export(z, c, noise_mode="const", force_fp32=True), ref)
        off_heads = exported["G"]["state_dict"]
        back = networks.FeatureGuidedGenerator(**exported["G"]["init_kwargs"]).eval()
        back.load_state_dict(off_heads, strict=True)
        x = g_feats[64]
        row(config, "export -> official G, head 3 (64 px)", "float32", back.synthesis.feat_transfer_list[3](x),
            G_off.synthesis.feat_transfer_list[3](x))


def compare_extractors_and_loss(config, heads, G_off, img_off, feats_off, img, g_feats) -> None:
    import timm
    from training import load_fe
    torch.manual_seed(2)
    vit = timm.create_model("vit_base_patch16_224", num_classes=0).eval()
    torch.manual_seed(3)
    deit = timm.create_model("deit_base_patch16_224", num_classes=0).eval()
    deit.dist_token = None      # the timm of 2021 had this attribute (None) on every ViT; load_fe.DeiT reads it
    patch_hub({"dino_vitb16": DinoHubStandIn(vit), "deit_base_patch16_224": deit})
    fe = load_fe.PretrainedFE("DINO", torch.device("cpu"))
    ours = FeatureExtractor(ExtractorSpec(name="vit_dino", weights="random"), model=vit)
    fe_deit = load_fe.PretrainedFE("DeiT", torch.device("cpu"))
    ours_deit = FeatureExtractor(ExtractorSpec(name="deit", weights="random"), model=deit)
    with torch.no_grad():
        for dtype in (torch.float32, torch.float64):
            name = str(dtype).split(".")[1]
            x = img_off.to(dtype)
            for m in (vit, deit):
                m.to(dtype)
            ref = fe.get_intermediate_layers(x, cls=False)
            got = ours(x)
            for level in range(4):
                row(config, f"vit_dino target level {level} (block {(12, 9, 6, 3)[level]})", name, got[level],
                    ref[level])
            ref_d, got_d = fe_deit.get_intermediate_layers(x, cls=False), ours_deit(x)
            row(config, "deit targets, 4 levels (final_norm False)", name, torch.stack(got_d), torch.stack(ref_d))
        for m in (vit, deit):
            m.float()
    for name in ("ResNet50", "ResNet50DINO"):
        try:
            load_fe.PretrainedFE(name, torch.device("cpu"))
            note(config, f"PretrainedFE('{name}')", "constructs")
        except Exception as e:   # the official ResNet path names a class that does not exist
            note(config, f"PretrainedFE('{name}')", f"{type(e).__name__}: {e}")

    try:
        from training.loss import StyleGAN2HSR
    except ImportError as e:
        note(config, "HSR loss", f"skipped: training.loss does not import here ({e})")
        return
    loss_off = StyleGAN2HSR(torch.device("cpu"), G_off.mapping, G_off.synthesis, None, model_name="DINO")
    with torch.no_grad():
        for dtype in (torch.float32, torch.float64):
            name = str(dtype).split(".")[1]
            vit.to(dtype)
            if dtype == torch.float32:   # end to end: each side's own image, features, heads
                ref = loss_off.feature_loss(img_off, [official_resize(f, 14) for f in feats_off])
                got = heads.loss(g_feats, ours(img))
                row(config, "HSR loss (sum of 4 MSE), end to end", name, got, ref)
            else:                        # identical image and block features, heads and extractor in float64
                heads64 = copy.deepcopy(heads).double()
                x = img_off.double()
                f64 = {r: g_feats[r].double() for r in heads.level_res}
                off = [official_resize(official_float64(G_off.synthesis.feat_transfer_list[i])(f64[r], False),
                                       14) for i, r in enumerate(heads.level_res)]
                ref = loss_off.feature_loss(x, off)
                row(config, "HSR loss (sum of 4 MSE), same input", name, heads64.loss(f64, ours(x)), ref)
        vit.float()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hsr", type=Path, required=True, help="checkout of github.com/val-iisc/HSR")
    ap.add_argument("--configs", default="small,paper256")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--fp16", action="store_true", help="also the official fp16 path (CPU: minutes at paper256)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not (args.hsr / "training" / "networks.py").is_file():
        ap.error(f"{args.hsr}: not a checkout of val-iisc/HSR (training/networks.py missing)")
    with tempfile.TemporaryDirectory() as tmp:
        for config in args.configs.split(","):
            compare(config, args.hsr, args.batch, args.fp16, Path(tmp))
    print("\n| config | what | dtype | max abs diff | max rel diff |\n|---|---|---|---|---|")
    for r in ROWS:
        print("| " + " | ".join(r) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
