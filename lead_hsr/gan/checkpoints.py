"""Official StyleGAN2-ADA / HSR checkpoints in and out, without the official code (DESIGN section 11).

Import: a training pickle (dict G, D, G_ema, augment_pipe, training_set_kwargs) whose networks are
`torch_utils.persistence` objects. Plain `pickle.load` would execute the module source embedded in every object;
here a restricted unpickler rebuilds only tensors, plain containers and *records* of the persistent objects
(class name + state: init_kwargs, _parameters, _buffers, _modules). The embedded source is never run (only its
sha256 is kept) and every other global is refused by name. The records are then mapped onto our presets and
parameter names; whatever cannot be mapped (another architecture, labels, other layer options) fails with a
message saying what differs.

HSR (val-iisc/HSR training/networks.py): `FeatureGuidedGenerator` = the StyleGAN2 generator whose synthesis network
(`FeatureGuidedSynthesisNetwork`, constructor argument `pred_feat_dims`) holds `feat_transfer_list`, a torch
ModuleList of four persistent `Head`s fed by the G blocks at 8, 16, 32, 64 px (whatever the image resolution).
A Head holds `resize` (torch AdaptiveAvgPool2d(1), applied only in its unused `cls` mode), `conv1x1_1`
(Conv2dLayer C -> 4096, relu), `conv1x1_2` (Conv2dLayer 4096 -> D_feat, linear) and `bn` (torch Identity); the heads
are imported from G (the trained ones; the official EMA also averages them into G_ema) into our `HSRHeads`, or
dropped on request. HSR's plain `Generator` (its baselines) holds `synthesis.feat_transfer`, a torch Conv2d
768 -> 512 that only its unused `gen_from_feats` calls: it is checked and dropped, and the import records it.

Export: our network.pt -> a plain torch.save file (dicts of tensors + constructor arguments, weights_only-loadable)
that the official code loads without ours: `Generator(**f["G_ema"]["init_kwargs"]).load_state_dict(
f["G_ema"]["state_dict"])`.

Command line:
    python -m lead_hsr.gan.checkpoints import IN.pkl OUT.pt [--expect-preset paper256] [--drop-hsr-heads]
        [--hsr-resolutions 8,16,32,64]
    python -m lead_hsr.gan.checkpoints export IN.pt OUT.pt [--num-fp16-res 4]
    python -m lead_hsr.gan.checkpoints inspect IN.pkl
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import io
import json
import math
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from lead_hsr.errors import command, InputError
from lead_hsr.hashing import file_sha256
from lead_hsr.gan.hsr import HEAD_HIDDEN, LEVEL_DIVISORS, LEVEL_GROUPS, HSRHeads, HSRSpec
from lead_hsr.gan.layers import RESAMPLE_TAPS, fir_filter_2d
from lead_hsr.gan.networks import (FIRST_RESOLUTION, MAPPING_LR_MULTIPLIER, MBSTD_CHANNELS, PRESETS, W_AVG_BETA,
                                   Discriminator, Generator, block_resolutions, channels_at, count_parameters)

PERSISTENCE_MODULE = "torch_utils.persistence"
RECONSTRUCT_NAME = "_reconstruct_persistent_obj"
ARCH_KEYS = ("resolution", "z_dim", "w_dim", "mapping_layers", "channel_base", "channel_max")
OFFICIAL_GENERATORS = ("Generator", "FeatureGuidedGenerator")   # StyleGAN2-ADA, HSR
OFFICIAL_DISCRIMINATOR = "Discriminator"
HSR_HEADS_MODULE = "feat_transfer_list"       # in G.synthesis (FeatureGuidedSynthesisNetwork)
HSR_HEAD_CLASS = "Head"
HSR_HEAD_RESOLUTIONS = (8, 16, 32, 64)        # FeatureGuidedSynthesisNetwork: fixed G blocks, any img_resolution
HSR_UNUSED_CONV = "feat_transfer"             # HSR's SynthesisNetwork: torch Conv2d(768, 512, 1), never in forward
HSR_UNUSED_CONV_SHAPE = (512, 768, 1, 1)
EXPORT_FORMAT = "stylegan2-ada-pytorch state dicts (lead_hsr export)"


# ------------------------------------------------------------------------------------------- restricted unpickling
@dataclass
class PersistentRecord:
    """What a `torch_utils.persistence` object carries, without its class: the name and the object's __dict__."""
    class_name: str
    state: dict
    module_src_sha256: str = ""

    @property
    def init_kwargs(self) -> dict:
        return dict(self.state.get("_init_kwargs") or {})


class TorchModuleRecord:
    """Stand-in for a torch.nn module class found inside `_modules` (the class itself is never imported)."""
    class_name = ""

    def __setstate__(self, state):
        self.state = dict(state)


class PlainDict(dict):
    """Stand-in for dnnlib.EasyDict (a dict subclass with attribute access, which we do not need)."""


# The torch.nn classes official pickles hold inside `_modules`, and where (HSR training/networks.py). They become
# TorchModuleRecord data (class name + __dict__); every other torch.nn class is refused by name like any global.
TORCH_NN_CLASSES = {
    "torch.nn.modules.container": ("ModuleList",),        # FeatureGuidedSynthesisNetwork.feat_transfer_list
    "torch.nn.modules.pooling": ("AdaptiveAvgPool2d",),   # Head.resize
    "torch.nn.modules.linear": ("Identity",),             # Head.bn
    "torch.nn.modules.conv": ("Conv2d",),                 # SynthesisNetwork.feat_transfer (HSR's baselines)
}
_torch_module_records: dict[str, type] = {}


def _torch_module_record_class(qualified: str) -> type:
    if qualified not in _torch_module_records:
        _torch_module_records[qualified] = type(qualified.rsplit(".", 1)[1], (TorchModuleRecord,),
                                                {"class_name": qualified})
    return _torch_module_records[qualified]


def _reconstruct_record(meta) -> PersistentRecord:
    """Replaces torch_utils.persistence._reconstruct_persistent_obj: keep the state, never exec module_src."""
    if not isinstance(meta, dict) or meta.get("type") != "class" or "class_name" not in meta:
        found = sorted(meta) if isinstance(meta, dict) else type(meta).__name__
        raise InputError(f"persistent object with unexpected metadata {found} (expected type 'class', class_name)")
    src = meta.get("module_src") or ""
    return PersistentRecord(str(meta["class_name"]), dict(meta.get("state") or {}),
                            hashlib.sha256(src.encode()).hexdigest())


def _load_storage_from_bytes(data: bytes):
    """Replaces torch.storage._load_from_bytes, which unpickles without the weights-only restriction."""
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    return data   # a Parameter's data; we load values, not modules


def _numpy_scalar():
    import numpy as np
    core = getattr(np, "_core", None) or np.core
    return core.multiarray.scalar


class RestrictedUnpickler(pickle.Unpickler):
    """Rebuilds tensors, containers and records; refuses every other global by name (InputError)."""

    def __init__(self, file, source: str):
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str):
        import numpy as np
        allowed = {
            ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
            ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
            ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
            ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
            ("collections", "OrderedDict"): collections.OrderedDict,
            ("builtins", "set"): set,
            ("builtins", "frozenset"): frozenset,
            ("numpy", "dtype"): np.dtype,
            ("numpy.core.multiarray", "scalar"): _numpy_scalar(),
            ("numpy._core.multiarray", "scalar"): _numpy_scalar(),
            (PERSISTENCE_MODULE, RECONSTRUCT_NAME): _reconstruct_record,
            ("dnnlib.util", "EasyDict"): PlainDict,
            ("dnnlib", "EasyDict"): PlainDict,
        }
        if (module, name) in allowed:
            return allowed[module, name]
        if name in TORCH_NN_CLASSES.get(module, ()):
            return _torch_module_record_class(f"{module}.{name}")
        raise InputError(
            f"{self.source}: refusing to load global '{module}.{name}'; checkpoint import rebuilds only tensors, "
            "plain containers and StyleGAN2-ADA persistent objects and never executes code a pickle carries. "
            "If this is a genuine StyleGAN2-ADA/HSR pickle, report the global so it can be mapped")

    def persistent_load(self, pid):
        raise InputError(f"{self.source}: persistent id {pid!r}: not a plain-pickle StyleGAN2-ADA checkpoint "
                         "(a torch.save file? those load with torch.load(weights_only=True))")


def read_pickle(path: Path):
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found; expected a StyleGAN2-ADA/HSR training pickle (.pkl)")
    with open(path, "rb") as f:
        try:
            return RestrictedUnpickler(f, str(path)).load()
        except InputError:
            raise
        except (pickle.UnpicklingError, EOFError, TypeError, ValueError, AttributeError, RuntimeError) as e:
            raise InputError(f"{path}: not a readable StyleGAN2-ADA training pickle ({type(e).__name__}: {e})") from e


# ------------------------------------------------------------------------------------------------ records -> tensors
def named_tensors(record, prefix: str = "") -> dict[str, torch.Tensor]:
    """state_dict-like flat view of a record tree (parameters and persistent buffers, dotted names)."""
    if not isinstance(record, (PersistentRecord, TorchModuleRecord)):
        raise InputError(f"{prefix or 'module'}: expected a network module record, found {type(record).__name__}")
    state = record.state
    skip = set(state.get("_non_persistent_buffers_set") or ())
    out = {}
    for group in ("_parameters", "_buffers"):
        for k, v in (state.get(group) or {}).items():
            if v is not None and not (group == "_buffers" and k in skip):
                out[prefix + k] = v
    for k, child in (state.get("_modules") or {}).items():
        if child is not None:
            out.update(named_tensors(child, f"{prefix}{k}."))
    return out


def _conv_names(res: int) -> list[str]:
    return ["conv1"] if res == FIRST_RESOLUTION else ["conv0", "conv1"]


def generator_name_pairs(preset: dict) -> tuple[list[tuple[str, str]], list[str]]:
    """(official name, our name) for every G tensor, and the official resample-filter buffers (we rebuild ours)."""
    pairs = [(f"mapping.fc{i}.{p}", f"mapping.layers.{i}.{p}") for i in range(preset["mapping_layers"])
             for p in ("weight", "bias")]
    pairs.append(("mapping.w_avg", "mapping.w_avg"))
    filters = []
    for k, res in enumerate(block_resolutions(preset["resolution"])):
        ob, ours = f"synthesis.b{res}", f"synthesis.blocks.{k}"
        filters.append(f"{ob}.resample_filter")
        if res == FIRST_RESOLUTION:
            pairs.append((f"{ob}.const", f"{ours}.const"))
        for j, conv in enumerate(_conv_names(res)):
            filters.append(f"{ob}.{conv}.resample_filter")
            pairs += [(f"{ob}.{conv}.{p}", f"{ours}.convs.{j}.{p}") for p in
                      ("affine.weight", "affine.bias", "weight", "bias", "noise_strength", "noise_const")]
        pairs += [(f"{ob}.torgb.{p}", f"{ours}.torgb.{p}") for p in ("affine.weight", "affine.bias", "weight", "bias")]
    return pairs, filters


def discriminator_name_pairs(preset: dict) -> tuple[list[tuple[str, str]], list[str]]:
    pairs, filters = [], []
    res = [r for r in reversed(block_resolutions(preset["resolution"])) if r > FIRST_RESOLUTION]
    for k, r in enumerate(res):
        ob, ours = f"b{r}", f"blocks.{k}"
        filters.append(f"{ob}.resample_filter")
        layers = (["fromrgb"] if k == 0 else []) + ["conv0", "conv1", "skip"]
        for layer in layers:
            filters.append(f"{ob}.{layer}.resample_filter")
            params = ("weight",) if layer == "skip" else ("weight", "bias")
            pairs += [(f"{ob}.{layer}.{p}", f"{ours}.{layer}.{p}") for p in params]
    filters.append("b4.conv.resample_filter")
    for official, ours in (("conv", "epilogue_conv"), ("fc", "epilogue_fc"), ("out", "epilogue_out")):
        pairs += [(f"b4.{official}.{p}", f"{ours}.{p}") for p in ("weight", "bias")]
    return pairs, filters


def _our_state(tensors: dict, pairs, filters, what: str, source: str) -> dict[str, torch.Tensor]:
    expected = {o for o, _ in pairs} | set(filters)
    missing, unexpected = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
    if missing or unexpected:
        raise InputError(f"{source}: {what} parameters do not match a StyleGAN2-ADA network of the recorded "
                         f"configuration: missing {missing[:8]}{'...' if len(missing) > 8 else ''}, unexpected "
                         f"{unexpected[:8]}{'...' if len(unexpected) > 8 else ''}")
    reference = fir_filter_2d()
    for name in filters:
        f = tensors[name].float()
        if f.shape != reference.shape or not torch.allclose(f, reference):
            raise InputError(f"{source}: {what} buffer {name} is not the [1,3,3,1] resampling filter our layers use")
    return {ours: tensors[o].detach().float().clone().contiguous() for o, ours in pairs}


# ------------------------------------------------------------------------------------- constructor args -> preset
# Official constructor arguments that our networks implement with exactly this value.
G_FIXED = dict(c_dim=0, img_channels=3)
MAPPING_FIXED = dict(embed_features=None, layer_features=None, activation="lrelu",
                     lr_multiplier=MAPPING_LR_MULTIPLIER, w_avg_beta=W_AVG_BETA, c_dim=0)
SYNTHESIS_FIXED = dict(architecture="skip", resample_filter=list(RESAMPLE_TAPS), use_noise=True, activation="lrelu",
                       kernel_size=3)
D_FIXED = dict(c_dim=0, img_channels=3, architecture="resnet", cmap_dim=None)
D_BLOCK_FIXED = dict(activation="lrelu", resample_filter=list(RESAMPLE_TAPS))
EPILOGUE_FIXED = dict(mbstd_num_channels=MBSTD_CHANNELS, activation="lrelu")
# Arguments that change only precision / memory layout / what is trainable, not the float32 function:
# our float32 path ignores num_fp16_res (it runs every layer in float32; the official runs with force_fp32=True
# identically) and applies conv_clamp exactly as the official layers do (in every precision).
RUNTIME_ONLY = {"num_fp16_res", "fp16_channels_last", "channels_last", "fused_modconv_default", "freeze_layers"}
OFFICIAL_DEFAULTS = dict(channel_base=32768, channel_max=512, mapping_layers=8, mbstd_group=4)


def _check_fixed(kwargs: dict, fixed: dict, where: str, problems: list[str]) -> None:
    for k, v in kwargs.items():
        if k in fixed:
            want = fixed[k]
            same = (list(v) == list(want)) if isinstance(want, list) and v is not None else v == want
            if not same:
                problems.append(f"{where}.{k} = {v!r} (ours implements {want!r})")


def _unknown(kwargs: dict, known: set, where: str, problems: list[str]) -> None:
    for k in sorted(set(kwargs) - known):
        problems.append(f"{where}.{k} = {kwargs[k]!r} (an argument our networks do not map)")


def preset_from_records(G: PersistentRecord, D: PersistentRecord, source: str) -> tuple[dict, dict]:
    """Our preset from the official constructor arguments, and the runtime-only ones (num_fp16_res, ...)."""
    problems: list[str] = []
    if G.class_name not in OFFICIAL_GENERATORS:
        problems.append(f"generator class {G.class_name!r} (supported: {OFFICIAL_GENERATORS})")
    if D.class_name != OFFICIAL_DISCRIMINATOR:
        problems.append(f"discriminator class {D.class_name!r} (supported: {OFFICIAL_DISCRIMINATOR!r})")
    gk, dk = G.init_kwargs, D.init_kwargs
    mk, sk = dict(gk.get("mapping_kwargs") or {}), dict(gk.get("synthesis_kwargs") or {})
    g_top = {"z_dim", "w_dim", "img_resolution", "mapping_kwargs", "synthesis_kwargs"} | set(G_FIXED)
    if G.class_name == "Generator":
        _unknown(gk, g_top, "G", problems)
    _check_fixed(gk, G_FIXED, "G", problems)
    _check_fixed(mk, MAPPING_FIXED, "G.mapping_kwargs", problems)
    _unknown(mk, {"num_layers"} | set(MAPPING_FIXED), "G.mapping_kwargs", problems)
    _check_fixed(sk, SYNTHESIS_FIXED, "G.synthesis_kwargs", problems)
    hsr_args = {"pred_feat_dims"} if G.class_name == "FeatureGuidedGenerator" else set()   # the heads' widths
    _unknown(sk, {"channel_base", "channel_max", "conv_clamp"} | set(SYNTHESIS_FIXED) | RUNTIME_ONLY | hsr_args,
             "G.synthesis_kwargs", problems)
    bk, ek = dict(dk.get("block_kwargs") or {}), dict(dk.get("epilogue_kwargs") or {})
    _check_fixed(dk, D_FIXED, "D", problems)
    _unknown(dk, {"img_resolution", "channel_base", "channel_max", "conv_clamp", "block_kwargs", "mapping_kwargs",
                  "epilogue_kwargs"} | set(D_FIXED) | RUNTIME_ONLY, "D", problems)
    _check_fixed(bk, D_BLOCK_FIXED, "D.block_kwargs", problems)
    _unknown(bk, set(D_BLOCK_FIXED) | RUNTIME_ONLY, "D.block_kwargs", problems)
    _check_fixed(ek, EPILOGUE_FIXED, "D.epilogue_kwargs", problems)
    _unknown(ek, {"mbstd_group_size"} | set(EPILOGUE_FIXED), "D.epilogue_kwargs", problems)
    # D.mapping_kwargs configure the label mapping, built only when c_dim > 0 (checked above); NVlabs' TF-converted
    # pickles (legacy.py) record them even for unconditional networks.
    preset = dict(resolution=gk.get("img_resolution"), z_dim=gk.get("z_dim"), w_dim=gk.get("w_dim"),
                  mapping_layers=mk.get("num_layers", OFFICIAL_DEFAULTS["mapping_layers"]),
                  channel_base=sk.get("channel_base", OFFICIAL_DEFAULTS["channel_base"]),
                  channel_max=sk.get("channel_max", OFFICIAL_DEFAULTS["channel_max"]),
                  mbstd_group=ek.get("mbstd_group_size", OFFICIAL_DEFAULTS["mbstd_group"]))
    d_arch = dict(resolution=dk.get("img_resolution"),
                  channel_base=dk.get("channel_base", OFFICIAL_DEFAULTS["channel_base"]),
                  channel_max=dk.get("channel_max", OFFICIAL_DEFAULTS["channel_max"]))
    for k, v in d_arch.items():
        if v != preset[k]:
            problems.append(f"D.{k if k != 'resolution' else 'img_resolution'} = {v!r} differs from G's {preset[k]!r} "
                            "(our presets share it)")
    if preset["mbstd_group"] is None:
        problems.append("D.epilogue_kwargs.mbstd_group_size = None (whole-batch groups; ours needs a number)")
    g_clamp, d_clamp = sk.get("conv_clamp"), dk.get("conv_clamp")
    if g_clamp != d_clamp:
        problems.append(f"G conv_clamp {g_clamp!r} differs from D conv_clamp {d_clamp!r} (our presets share it)")
    if g_clamp is not None:
        preset["conv_clamp"] = float(g_clamp)
    if problems:
        raise InputError(f"{source}: cannot map this checkpoint onto our networks:\n  - " + "\n  - ".join(problems))
    runtime = dict(G_num_fp16_res=sk.get("num_fp16_res", 0), D_num_fp16_res=dk.get("num_fp16_res", 0),
                   conv_clamp=g_clamp)
    return preset, runtime


def preset_differences(preset: dict, name: str) -> list[str]:
    """Architecture keys in which `preset` differs from the named preset (mbstd_group/conv_clamp not included)."""
    if name not in PRESETS:
        raise InputError(f"unknown GAN preset {name!r}; expected one of {sorted(PRESETS)}")
    return [f"{k}: checkpoint {preset.get(k)!r} vs {name} {PRESETS[name][k]!r}" for k in ARCH_KEYS
            if preset.get(k) != PRESETS[name][k]]


# ----------------------------------------------------------------------------------------------------- HSR heads
def _record_name(rec) -> str:
    return rec.class_name.rsplit(".", 1)[-1] if isinstance(rec, (PersistentRecord, TorchModuleRecord)) else \
        type(rec).__name__


def _as_float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")   # compared with the official value below: the message names what was found


def _official_conv1x1(rec, where: str, activation: str) -> dict:
    """One official Conv2dLayer of a Head: a 1x1 equalized-lr conv (weight used as w / sqrt(fan_in), bias, then
    the activation with its default gain); anything else is refused with what differs."""
    if not isinstance(rec, PersistentRecord) or _record_name(rec) != "Conv2dLayer":
        raise InputError(f"{where} is a {_record_name(rec)}; the official Head has a Conv2dLayer here")
    st = rec.state
    tensors = dict(st.get("_parameters") or {}, **(st.get("_buffers") or {}))   # trainable=False keeps buffers
    w, b = tensors.get("weight"), tensors.get("bias")
    if w is None or w.ndim != 4 or tuple(w.shape[2:]) != (1, 1):
        raise InputError(f"{where}.weight: {None if w is None else tuple(w.shape)}; expected a 1x1 conv weight")
    gain = math.sqrt(2.0) if activation == "relu" else 1.0
    found = dict(activation=st.get("activation"), up=st.get("up", 1), down=st.get("down", 1),
                 conv_clamp=st.get("conv_clamp"), weight_gain=_as_float(st.get("weight_gain")),
                 act_gain=_as_float(st.get("act_gain")))
    want = dict(activation=activation, up=1, down=1, conv_clamp=None, weight_gain=1 / math.sqrt(w.shape[1]),
                act_gain=gain)
    for k, v in want.items():
        ok = math.isclose(found[k], v, rel_tol=1e-12) if isinstance(v, float) else found[k] == v
        if not ok:
            raise InputError(f"{where}.{k} = {found[k]!r}; the official Head's layer has {v!r} (ours implements that)")
    return dict(weight=w.detach().float(), bias=None if b is None else b.detach().float())


def _official_head(rec, where: str) -> dict:
    """An official HSR Head -> its two layers and what else it holds (checked, recorded)."""
    if not isinstance(rec, PersistentRecord) or _record_name(rec) != HSR_HEAD_CLASS:
        raise InputError(f"{where} is a {_record_name(rec)}; expected HSR's persistent Head")
    mods = dict(rec.state.get("_modules") or {})
    expected = {"resize": "AdaptiveAvgPool2d", "conv1x1_1": "Conv2dLayer", "conv1x1_2": "Conv2dLayer",
                "bn": "Identity"}
    found = {k: _record_name(v) for k, v in mods.items()}
    if found != expected:
        raise InputError(f"{where} holds {found}; the official Head holds {expected}")
    output_size = mods["resize"].state.get("output_size")
    if tuple(output_size if isinstance(output_size, (tuple, list)) else (output_size,) * 2) != (1, 1):
        raise InputError(f"{where}.resize: AdaptiveAvgPool2d({output_size!r}); the official Head has (1, 1)")
    first = _official_conv1x1(mods["conv1x1_1"], f"{where}.conv1x1_1", "relu")
    second = _official_conv1x1(mods["conv1x1_2"], f"{where}.conv1x1_2", "linear")
    if second["weight"].shape[1] != first["weight"].shape[0]:
        raise InputError(f"{where}: conv1x1_2 takes {second['weight'].shape[1]} channels, conv1x1_1 gives "
                         f"{first['weight'].shape[0]}")
    kwargs = rec.init_kwargs
    return dict(first=first, second=second, feat_res=kwargs.get("feat_res"),
                init_args=[_jsonable(a) for a in rec.state.get("_init_args") or ()])


def _synthesis_modules(G: PersistentRecord) -> dict:
    syn = (G.state.get("_modules") or {}).get("synthesis")
    return dict(syn.state.get("_modules") or {}) if isinstance(syn, PersistentRecord) else {}


def import_hsr_heads(heads_record, preset: dict, source: str, resolutions: list[int] | None = None,
                     pred_feat_dims=None):
    """G.synthesis.feat_transfer_list -> (our HSRHeads state dict, spec dict for HSRHeads, per-head record).

    Head i is fed by the G block at its `feat_res` (8, 16, 32, 64 in the official class); `resolutions` overrides
    that (e.g. for fixtures with tiny generators). The spec is the official computation: relu_eqlr heads,
    predictions resized to each target's size, heads in float32."""
    where = f"{source}: G.synthesis.{HSR_HEADS_MODULE}"
    if not isinstance(heads_record, TorchModuleRecord) or _record_name(heads_record) != "ModuleList":
        raise InputError(f"{where} is a {_record_name(heads_record)}; the official one is a torch ModuleList")
    items = sorted((heads_record.state.get("_modules") or {}).items(), key=lambda kv: int(kv[0]))
    heads = [_official_head(h, f"{where}.{k}") for k, h in items]
    n = len(heads)
    res = list(resolutions) if resolutions else [
        int(h["feat_res"]) if h["feat_res"] is not None else HSR_HEAD_RESOLUTIONS[i] for i, h in enumerate(heads)]
    if len(res) != n:
        raise InputError(f"{where}: {n} heads but {len(res)} resolutions {res}")
    if n == len(LEVEL_DIVISORS):
        level_group = "all"
    else:
        all_res = [preset["resolution"] // d for d in LEVEL_DIVISORS]
        level_group = next((g for g, idx in LEVEL_GROUPS.items() if [all_res[i] for i in idx] == res), None)
        if level_group is None:
            raise InputError(f"{where}: {n} heads at {res} match no level group {dict(LEVEL_GROUPS)}; pass "
                             "--drop-hsr-heads to import the generator alone")
    state, feature_dims, hidden, rows = {}, [0] * len(LEVEL_DIVISORS), set(), []
    for i, (head, r) in enumerate(zip(heads, res)):
        w1, w2 = head["first"]["weight"], head["second"]["weight"]
        c_in = channels_at(r, preset["channel_base"], preset["channel_max"]) if r <= preset["resolution"] else None
        if w1.shape[1] != c_in:
            raise InputError(f"{where}.{i}: conv1x1_1 takes {w1.shape[1]} channels; G's block at {r} px has "
                             f"{c_in} (pass --hsr-resolutions if the heads sit at other blocks)")
        hidden.add(int(w1.shape[0]))
        feature_dims[LEVEL_GROUPS[level_group][i]] = int(w2.shape[0])
        for name, layer in (("hidden", head["first"]), ("out", head["second"])):
            w, b = layer["weight"], layer["bias"]
            state[f"heads.{i}.{name}.weight"] = w.contiguous()
            state[f"heads.{i}.{name}.bias"] = (torch.zeros(w.shape[0]) if b is None else b).contiguous()
        rows.append(dict(index=i, g_resolution=r, in_channels=int(w1.shape[1]), hidden=int(w1.shape[0]),
                         out_channels=int(w2.shape[0]), biases=[head["first"]["bias"] is not None,
                                                                head["second"]["bias"] is not None],
                         feat_res=head["feat_res"]))
    if len(hidden) != 1:
        raise InputError(f"{where}: heads with different hidden widths {sorted(hidden)}")
    dims = [r["out_channels"] for r in rows]
    if pred_feat_dims is not None and list(pred_feat_dims) != dims:
        raise InputError(f"{where}: heads predict {dims}-d features but G.synthesis_kwargs.pred_feat_dims = "
                         f"{list(pred_feat_dims)}")
    spec = dict(levels=level_group, head_activation="relu_eqlr", head_hidden=hidden.pop(),
                level_resolutions=res if n == len(LEVEL_DIVISORS) else None, resize_to="target",
                head_precision="float32", feature_dims=feature_dims)
    return state, spec, rows


def imported_hsr_heads(snap: dict, grid: int = 14):
    """Our HSRHeads with an imported network.pt's heads loaded (None when it has none)."""
    if not snap.get("hsr_heads"):
        return None
    spec = dict(snap["hsr_spec"])
    dims = spec.pop("feature_dims")
    G = Generator(**snap["preset"])
    heads = HSRHeads(HSRSpec(**spec), G.synthesis.channels, snap["preset"]["resolution"], dims, grid)
    heads.load_state_dict(snap["hsr_heads"])
    return heads


def _drop_unused_conv(syn_modules: dict, key: str, source: str) -> dict | None:
    """HSR's SynthesisNetwork.feat_transfer (torch Conv2d 768 -> 512, used only by gen_from_feats): checked, dropped."""
    rec = syn_modules.get(HSR_UNUSED_CONV)
    if rec is None:
        return None
    w = (rec.state.get("_parameters") or {}).get("weight") if isinstance(rec, TorchModuleRecord) else None
    if _record_name(rec) != "Conv2d" or w is None or tuple(w.shape) != HSR_UNUSED_CONV_SHAPE:
        raise InputError(f"{source}: {key}.synthesis.{HSR_UNUSED_CONV} is a {_record_name(rec)} "
                         f"{None if w is None else tuple(w.shape)}; HSR's is an unused torch Conv2d 768 -> 512")
    return dict(module=f"synthesis.{HSR_UNUSED_CONV}", what="torch Conv2d 768->512 that only HSR's unused "
                "SynthesisNetwork.gen_from_feats calls (never in forward or training)", shape=list(w.shape),
                parameters=int(sum(t.numel() for t in (rec.state.get("_parameters") or {}).values()
                                   if t is not None)))


# ------------------------------------------------------------------------------------------------------- import
def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if hasattr(obj, "item"):
        return obj.item()
    return repr(obj)


def _load_checked(module: torch.nn.Module, state: dict, what: str, source: str) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise InputError(f"{source}: {what} tensors do not fit the mapped preset: {e}") from e


def import_official(path: Path, expect_preset: str | None = None, drop_hsr_heads: bool = False,
                    hsr_resolutions: list[int] | None = None) -> dict:
    """A StyleGAN2-ADA / HSR training pickle -> our network.pt content (see training.GanTrainer.snapshot)."""
    source = str(path)
    data = read_pickle(path)
    if not isinstance(data, dict) or not {"G", "D", "G_ema"} <= set(data):
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise InputError(f"{source}: expected the training-loop dict with G, D, G_ema (and augment_pipe, "
                         f"training_set_kwargs), found {keys}")
    for k in ("G", "D", "G_ema"):
        if not isinstance(data[k], PersistentRecord):
            raise InputError(f"{source}: {k} is a {type(data[k]).__name__}, not a torch_utils.persistence object")
    preset, runtime = preset_from_records(data["G_ema"], data["D"], source)
    if expect_preset is not None:
        diff = preset_differences(preset, expect_preset)
        if diff:
            raise InputError(f"{source}: checkpoint is not the {expect_preset!r} architecture: " + "; ".join(diff))
    g_pairs, g_filters = generator_name_pairs(preset)
    d_pairs, d_filters = discriminator_name_pairs(preset)
    snap = dict(preset=preset, opt_G=None, opt_D=None, kimg=None, extractor=None, hsr_heads=None, hsr_spec=None)
    heads_records, dropped = {}, []
    for key in ("G", "G_ema"):
        tensors = named_tensors(data[key])
        syn_modules = _synthesis_modules(data[key])
        if HSR_HEADS_MODULE in syn_modules:
            heads_records[key] = syn_modules[HSR_HEADS_MODULE]
            tensors = {k: v for k, v in tensors.items() if not k.startswith(f"synthesis.{HSR_HEADS_MODULE}.")}
        unused = _drop_unused_conv(syn_modules, key, source)
        if unused is not None:
            tensors = {k: v for k, v in tensors.items() if not k.startswith(f"synthesis.{HSR_UNUSED_CONV}.")}
            if key == "G":
                dropped.append(unused)
        state = _our_state(tensors, g_pairs, g_filters, key, source)
        _load_checked(Generator(**preset), state, key, source)
        snap[key] = state
    snap["D"] = _our_state(named_tensors(data["D"]), d_pairs, d_filters, "D", source)
    _load_checked(Discriminator(**preset), snap["D"], "D", source)
    heads_record = heads_records.get("G")
    hsr_record = None
    if len(heads_records) == 1:   # the official G_ema is a deep copy of G: both hold the heads or neither does
        raise InputError(f"{source}: only {next(iter(heads_records))} holds synthesis.{HSR_HEADS_MODULE}; an HSR "
                         "training pickle has the heads in G and G_ema")
    if heads_record is not None and not drop_hsr_heads:
        pred_dims = (data["G"].init_kwargs.get("synthesis_kwargs") or {}).get("pred_feat_dims")
        snap["hsr_heads"], snap["hsr_spec"], rows = import_hsr_heads(heads_record, preset, source, hsr_resolutions,
                                                                     pred_dims)
        ema_state, _, _ = import_hsr_heads(heads_records["G_ema"], preset, source, hsr_resolutions, pred_dims)
        hsr_record = dict(
            heads_from="G", head_class=HSR_HEAD_CLASS, heads=rows, pred_feat_dims=_jsonable(pred_dims),
            structure="Head: conv1x1_1 = Conv2dLayer(C, hidden, 1, activation='relu') (equalized lr, bias, gain "
                      "sqrt(2)) -> conv1x1_2 = Conv2dLayer(hidden, D, 1) -> bn = Identity; resize = "
                      "AdaptiveAvgPool2d(1) used only in cls mode (off in HSR's loss)",
            g_ema_heads_max_abs_diff=max(float((ema_state[k] - v).abs().max()) for k, v in snap["hsr_heads"].items()),
            spec=dict(snap["hsr_spec"]))
    aug = data.get("augment_pipe")
    p = named_tensors(aug).get("p") if isinstance(aug, PersistentRecord) else None
    snap["ada_p"] = float(p) if p is not None else 0.0
    matches = [n for n in PRESETS if not preset_differences(preset, n)]
    snap["options"] = dict(imported_from=source)
    snap["imported"] = dict(
        source=source, sha256=file_sha256(path), format="stylegan2-ada training pickle",
        generator_class=data["G_ema"].class_name, matches_preset=matches[0] if matches else None,
        hsr_heads="dropped" if heads_record is not None and drop_hsr_heads else
        ("imported" if heads_record is not None else "none"),
        hsr=hsr_record, dropped_modules=dropped,
        module_src_sha256=data["G_ema"].module_src_sha256,
        training_set_kwargs=_jsonable(data.get("training_set_kwargs")), **runtime)
    return snap


def summary(snap: dict) -> dict:
    G = Generator(**snap["preset"])
    D = Discriminator(**snap["preset"])
    out = dict(preset=snap["preset"], G_params=count_parameters(G), D_params=count_parameters(D),
               imported=snap.get("imported"))
    if snap.get("hsr_heads"):
        out["hsr_heads_params"] = sum(v.numel() for v in snap["hsr_heads"].values())
        out["hsr_spec"] = snap["hsr_spec"]
    return out


# ------------------------------------------------------------------------------------------------------- export
def official_init_kwargs(preset: dict, num_fp16_res: int = 0) -> tuple[dict, dict]:
    """Constructor arguments of training.networks.Generator / Discriminator for our preset."""
    clamp = preset.get("conv_clamp")
    g = dict(z_dim=preset["z_dim"], c_dim=0, w_dim=preset["w_dim"], img_resolution=preset["resolution"],
             img_channels=3, mapping_kwargs=dict(num_layers=preset["mapping_layers"]),
             synthesis_kwargs=dict(channel_base=preset["channel_base"], channel_max=preset["channel_max"],
                                   num_fp16_res=num_fp16_res, conv_clamp=clamp))
    d = dict(c_dim=0, img_resolution=preset["resolution"], img_channels=3, architecture="resnet",
             channel_base=preset["channel_base"], channel_max=preset["channel_max"], num_fp16_res=num_fp16_res,
             conv_clamp=clamp, block_kwargs={}, mapping_kwargs={},
             epilogue_kwargs=dict(mbstd_group_size=preset["mbstd_group"]))
    return g, d


def _official_state(ours: dict, pairs, filters) -> dict[str, torch.Tensor]:
    out = {o: ours[name].detach().float().clone() for o, name in pairs}
    out.update({f: fir_filter_2d() for f in filters})
    return out


def export_official(snap: dict, num_fp16_res: int | None = None) -> dict:
    """Our network.pt content -> plain dict of official state dicts + constructor arguments."""
    preset = snap["preset"]
    if num_fp16_res is None:
        num_fp16_res = int((snap.get("imported") or {}).get("G_num_fp16_res") or 0)
    g_kwargs, d_kwargs = official_init_kwargs(preset, num_fp16_res)
    g_pairs, g_filters = generator_name_pairs(preset)
    d_pairs, d_filters = discriminator_name_pairs(preset)
    out = dict(format=EXPORT_FORMAT,
               G=dict(class_name="training.networks.Generator", init_kwargs=g_kwargs,
                      state_dict=_official_state(snap["G"], g_pairs, g_filters)),
               G_ema=dict(class_name="training.networks.Generator", init_kwargs=g_kwargs,
                          state_dict=_official_state(snap["G_ema"], g_pairs, g_filters)),
               D=dict(class_name="training.networks.Discriminator", init_kwargs=d_kwargs,
                      state_dict=_official_state(snap["D"], d_pairs, d_filters)),
               augment_p=float(snap.get("ada_p") or 0.0))
    if snap.get("hsr_heads"):
        spec, level_res = _heads_spec(snap)
        heads = {}
        for k, v in snap["hsr_heads"].items():   # official Head names (networks.py): conv1x1_1 / conv1x1_2
            _, i, layer, p = k.split(".")
            conv = f"synthesis.{HSR_HEADS_MODULE}.{i}.conv1x1_{1 if layer == 'hidden' else 2}"
            heads[f"{conv}.{p}"] = v.detach().float().clone()
            heads[f"{conv}.resample_filter"] = fir_filter_2d()   # every official Conv2dLayer registers one
        official = (spec.get("levels") == "all" and level_res == list(HSR_HEAD_RESOLUTIONS)
                    and spec.get("head_activation") == "relu_eqlr" and spec.get("head_hidden") == HEAD_HIDDEN)
        dims = [int(snap["hsr_heads"][f"heads.{i}.out.weight"].shape[0]) for i in range(len(level_res))]
        if official:   # HSR's FeatureGuidedGenerator(**init_kwargs).load_state_dict(state_dict) takes G with heads
            fg_kwargs = dict(g_kwargs, synthesis_kwargs=dict(g_kwargs["synthesis_kwargs"], pred_feat_dims=dims))
            for key in ("G", "G_ema"):   # the official G_ema holds (EMA-averaged) heads too; ours has G's only
                out[key].update(class_name="training.networks.FeatureGuidedGenerator", init_kwargs=fg_kwargs)
                out[key]["state_dict"].update({k: v.clone() for k, v in heads.items()})
        out["hsr_heads"] = dict(state_dict=heads, spec=spec, level_resolutions=level_res, feature_dims=dims,
                                in_official_generator=official)
    return out


def _heads_spec(snap: dict) -> tuple[dict, list[int]]:
    """The HSR spec of a network.pt's heads (imported: `hsr_spec`; trained by us: options.hsr) and their G
    resolutions."""
    spec = dict(snap.get("hsr_spec") or {})
    if not spec:
        hsr = dict((snap.get("options") or {}).get("hsr") or {})
        spec = {k: v for k, v in hsr.items() if k in HSRSpec.__dataclass_fields__}
    fields = {k: v for k, v in spec.items() if k in HSRSpec.__dataclass_fields__}
    hs = HSRSpec(**fields)
    all_res = hs.resolutions(snap["preset"]["resolution"])
    return dict(hs.to_dict(), **{k: v for k, v in spec.items() if k not in fields}), \
        [all_res[i] for i in LEVEL_GROUPS[hs.levels]]


def import_file(src: Path, dst: Path, expect_preset: str | None = None, drop_hsr_heads: bool = False,
                hsr_resolutions: list[int] | None = None) -> dict:
    """Import an official pickle and write our network.pt atomically; returns its summary."""
    snap = import_official(Path(src), expect_preset, drop_hsr_heads, hsr_resolutions)
    _save(snap, Path(dst))
    return summary(snap)


def _save(obj: dict, path: Path) -> None:
    from lead_hsr.atomic import atomic_write_with
    atomic_write_with(path, lambda f: torch.save(obj, f))


def load_network_pt(path: Path) -> dict:
    from lead_hsr.gan.training import load_snapshot
    return load_snapshot(path)


# ---------------------------------------------------------------------------------------------------------- CLI
@command
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lead_hsr.gan.checkpoints", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    imp = sub.add_parser("import", help="StyleGAN2-ADA/HSR training pickle -> our network.pt")
    imp.add_argument("src", type=Path)
    imp.add_argument("dst", type=Path)
    imp.add_argument("--expect-preset", choices=sorted(PRESETS), help="fail unless the architecture is this preset")
    imp.add_argument("--drop-hsr-heads", action="store_true", help="import only the StyleGAN2 part of an HSR G")
    imp.add_argument("--hsr-resolutions", type=lambda s: [int(x) for x in s.split(",")],
                     help="G resolutions of the HSR heads when there are not 4 (e.g. 16,32)")
    exp = sub.add_parser("export", help="our network.pt -> official state dicts + init_kwargs (torch.save)")
    exp.add_argument("src", type=Path)
    exp.add_argument("dst", type=Path)
    exp.add_argument("--num-fp16-res", type=int, default=None,
                     help="recorded for the official constructor (default: the imported value, else 0)")
    ins = sub.add_parser("inspect", help="print what an official pickle holds (nothing is executed)")
    ins.add_argument("src", type=Path)
    args = ap.parse_args(argv)
    if args.cmd == "import":
        print(json.dumps(import_file(args.src, args.dst, args.expect_preset, args.drop_hsr_heads,
                                     args.hsr_resolutions), indent=1))
    elif args.cmd == "export":
        _save(export_official(load_network_pt(args.src), args.num_fp16_res), args.dst)
        print(f"wrote {args.dst}")
    else:
        print(json.dumps(summary(import_official(args.src)), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
