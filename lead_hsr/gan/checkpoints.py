"""Official StyleGAN2-ADA / HSR checkpoints in and out, without the official code (DESIGN section 11).

Import: a training pickle (dict G, D, G_ema, augment_pipe, training_set_kwargs) whose networks are
`torch_utils.persistence` objects. Plain `pickle.load` would execute the module source embedded in every object;
here a restricted unpickler rebuilds only tensors, plain containers and *records* of the persistent objects
(class name + state: init_kwargs, _parameters, _buffers, _modules). The embedded source is never run (only its
sha256 is kept) and every other global is refused by name. The records are then mapped onto our presets and
parameter names; whatever cannot be mapped (another architecture, labels, other layer options) fails with a
message saying what differs. HSR's `FeatureGuidedGenerator` adds `feat_transfer_list` heads, imported into our
`HSRHeads` (or dropped on request).

Export: our network.pt -> a plain torch.save file (dicts of tensors + constructor arguments, weights_only-loadable)
that the official code loads without ours: `Generator(**f["G_ema"]["init_kwargs"]).load_state_dict(
f["G_ema"]["state_dict"])`.

Command line:
    python -m lead_hsr.gan.checkpoints import IN.pkl OUT.pt [--expect-preset paper256] [--drop-hsr-heads]
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

from lead_hsr.errors import InputError
from lead_hsr.hashing import file_sha256
from lead_hsr.gan.hsr import HEAD_ACTIVATIONS, LEVEL_DIVISORS, LEVEL_GROUPS
from lead_hsr.gan.layers import LRELU_SLOPE, RESAMPLE_TAPS, fir_filter_2d
from lead_hsr.gan.networks import (FIRST_RESOLUTION, MAPPING_LR_MULTIPLIER, MBSTD_CHANNELS, PRESETS, W_AVG_BETA,
                                   Discriminator, Generator, block_resolutions, channels_at, count_parameters)

PERSISTENCE_MODULE = "torch_utils.persistence"
RECONSTRUCT_NAME = "_reconstruct_persistent_obj"
ARCH_KEYS = ("resolution", "z_dim", "w_dim", "mapping_layers", "channel_base", "channel_max")
OFFICIAL_GENERATORS = ("Generator", "FeatureGuidedGenerator")   # StyleGAN2-ADA, HSR
OFFICIAL_DISCRIMINATOR = "Discriminator"
HSR_HEADS_MODULE = "feat_transfer_list"
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


# torch.nn classes that may appear inside `_modules` (containers and parameter-free or plain layers).
TORCH_NN_CLASSES = {
    "torch.nn.modules.container": ("ModuleList", "Sequential", "ModuleDict"),
    "torch.nn.modules.conv": ("Conv2d",),
    "torch.nn.modules.linear": ("Linear", "Identity"),
    "torch.nn.modules.activation": ("ReLU", "LeakyReLU"),
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
    _unknown(sk, {"channel_base", "channel_max", "conv_clamp"} | set(SYNTHESIS_FIXED) | RUNTIME_ONLY,
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
def _head_layers(head, where: str) -> list[dict]:
    """The 1x1 conv layers of one feat_transfer_list head in order: weight as our equalized-lr layer stores it,
    bias, and the activation that follows."""
    layers: list[dict] = []

    def visit(rec, path):
        name = rec.class_name.rsplit(".", 1)[-1]
        st = rec.state
        params = st.get("_parameters") or {}
        if name == "Conv2dLayer":   # official equalized-lr conv: weight used as w / sqrt(fan_in), gain in act
            for k, want in (("up", 1), ("down", 1), ("conv_clamp", None)):
                if st.get(k, want) != want:
                    raise InputError(f"{where}: {path}.{k} = {st.get(k)!r}; HSR heads must be plain 1x1 convs")
            act = st.get("activation", "linear")
            layers.append(dict(weight=params["weight"].float(), bias=params.get("bias"), act=act))
        elif name == "Conv2d":      # plain torch conv: rescale to the equalized-lr convention
            w = params["weight"].float()
            layers.append(dict(weight=w * math.sqrt(w[0].numel()), bias=params.get("bias"), act="linear"))
        elif name in ("ReLU", "LeakyReLU"):
            slope = st.get("negative_slope", LRELU_SLOPE) if name == "LeakyReLU" else 0.0
            if not layers or layers[-1]["act"] != "linear" or (name == "LeakyReLU" and slope != LRELU_SLOPE):
                raise InputError(f"{where}: {path} ({name}, slope {slope}) does not follow a linear conv layer "
                                 f"or has a slope other than {LRELU_SLOPE}")
            # our relu/lrelu carry a sqrt(2) gain: compensate in the next layer's weight (both are 1-homogeneous)
            layers[-1]["act"] = "relu" if name == "ReLU" else "lrelu"
            layers[-1]["plain_act"] = True
        elif name in ("Sequential", "ModuleList", "Identity") or not params:
            for k, child in (st.get("_modules") or {}).items():
                if child is not None:
                    visit(child, f"{path}.{k}")
        else:
            raise InputError(f"{where}: {path} is a {rec.class_name}; HSR heads are read as 1x1 conv layers")

    visit(head, where)
    return layers


def import_hsr_heads(heads_record, preset: dict, source: str, resolutions: list[int] | None = None):
    """feat_transfer_list -> (our HSRHeads state dict, spec dict with what HSRHeads needs to be rebuilt)."""
    heads = [h for _, h in sorted((heads_record.state.get("_modules") or {}).items(), key=lambda kv: int(kv[0]))]
    n = len(heads)
    groups = [g for g, idx in LEVEL_GROUPS.items() if len(idx) == n]
    if n != len(LEVEL_DIVISORS) and resolutions is None:
        raise InputError(f"{source}: {n} HSR heads; only 4 (levels r/32..r/4) map without explicit "
                         "resolutions: pass --hsr-resolutions, or --drop-hsr-heads")
    all_res = [preset["resolution"] // d for d in LEVEL_DIVISORS]
    res = resolutions or all_res
    level_group = "all" if n == 4 else next((g for g in groups
                                             if [all_res[i] for i in LEVEL_GROUPS[g]] == list(res)), None)
    if level_group is None:
        raise InputError(f"{source}: HSR heads at {res} match no level group {dict(LEVEL_GROUPS)}")
    state, feature_dims, activations, hidden = {}, [0] * len(LEVEL_DIVISORS), set(), set()
    for i, (head, r) in enumerate(zip(heads, res)):
        layers = _head_layers(head, f"{source}: {HSR_HEADS_MODULE}.{i}")
        if len(layers) != 2 or layers[0]["act"] not in ("relu", "lrelu") or layers[1]["act"] != "linear":
            raise InputError(f"{source}: {HSR_HEADS_MODULE}.{i} is not conv1x1 -> relu/lrelu -> conv1x1 "
                             f"(found {[l['act'] for l in layers]})")
        first, second = layers
        w1, w2 = first["weight"], second["weight"]
        if first.get("plain_act"):
            w2 = w2 / math.sqrt(2.0)
        c_in = channels_at(r, preset["channel_base"], preset["channel_max"])
        if w1.shape[1:] != (c_in, 1, 1) or w2.shape[1:] != (w1.shape[0], 1, 1):
            raise InputError(f"{source}: {HSR_HEADS_MODULE}.{i} weights {tuple(w1.shape)}, {tuple(w2.shape)} do not "
                             f"fit G's {c_in} channels at {r} px")
        activations.add("relu_eqlr" if first["act"] == "relu" else "leaky_relu")
        hidden.add(w1.shape[0])
        feature_dims[LEVEL_GROUPS[level_group][i]] = int(w2.shape[0])
        for name, w, b in (("hidden", w1, first["bias"]), ("out", w2, second["bias"])):
            state[f"heads.{i}.{name}.weight"] = w.contiguous()
            state[f"heads.{i}.{name}.bias"] = (torch.zeros(w.shape[0]) if b is None else b.float()).contiguous()
    if len(activations) != 1 or len(hidden) != 1:
        raise InputError(f"{source}: HSR heads mix activations {activations} / hidden widths {hidden}")
    assert activations <= set(HEAD_ACTIVATIONS)
    spec = dict(levels=level_group, head_activation=activations.pop(), head_hidden=hidden.pop(),
                level_resolutions=list(res) if n == 4 else None, feature_dims=feature_dims)
    return state, spec


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
    heads_record = None
    for key in ("G", "G_ema"):
        tensors = named_tensors(data[key])
        if HSR_HEADS_MODULE in (data[key].state.get("_modules") or {}):
            tensors = {k: v for k, v in tensors.items() if not k.startswith(HSR_HEADS_MODULE + ".")}
            if key == "G":   # heads are trained with G (not averaged into G_ema)
                heads_record = data[key].state["_modules"][HSR_HEADS_MODULE]
        state = _our_state(tensors, g_pairs, g_filters, key, source)
        _load_checked(Generator(**preset), state, key, source)
        snap[key] = state
    snap["D"] = _our_state(named_tensors(data["D"]), d_pairs, d_filters, "D", source)
    _load_checked(Discriminator(**preset), snap["D"], "D", source)
    if heads_record is not None and not drop_hsr_heads:
        snap["hsr_heads"], snap["hsr_spec"] = import_hsr_heads(heads_record, preset, source, hsr_resolutions)
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
        # HSR's own head layout is not public in our sources: exported as Sequential(Conv2dLayer relu, Conv2dLayer)
        # per head (official equalized-lr convention), with the spec to rebuild them.
        heads = {}
        for k, v in snap["hsr_heads"].items():
            _, i, layer, p = k.split(".")
            conv = f"{HSR_HEADS_MODULE}.{i}.{0 if layer == 'hidden' else 1}"
            heads[f"{conv}.{p}"] = v.clone()
            heads[f"{conv}.resample_filter"] = fir_filter_2d()   # every official Conv2dLayer registers one
        out["hsr_heads"] = dict(state_dict=heads, spec=dict(snap.get("hsr_spec") or {}))
    return out


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
    try:
        sys.exit(main())
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
