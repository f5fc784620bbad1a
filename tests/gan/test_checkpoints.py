"""Official StyleGAN2-ADA / HSR checkpoints in and out (lead_hsr.gan.checkpoints).

The fixtures are pickles the tests write themselves in the official format: a dict G, D, G_ema, augment_pipe,
training_set_kwargs whose networks pickle as `torch_utils.persistence._reconstruct_persistent_obj(meta)` with
meta = {type, version, module_src, class_name, state}. The stand-ins for `torch_utils.persistence` and
`dnnlib.util.EasyDict` exist only while a fixture is written, so the bytes name the same globals as the real
files; the stand-in reconstruct function fails if anything ever calls it (the importer must not).
"""
import collections
import copy
from pathlib import Path
import math
import os
import pickle
import sys
import types

import numpy as np
import pytest
import torch
import torch.nn as nn

from lead_hsr.errors import InputError
from lead_hsr.gan import checkpoints as C
from lead_hsr.gan.hsr import HSRHeads, HSRSpec
from lead_hsr.gan.networks import Discriminator, Generator, build_networks
from lead_hsr.gan.training import load_generator

PRESET = dict(resolution=32, z_dim=16, w_dim=16, mapping_layers=2, channel_base=256, channel_max=32, mbstd_group=2,
              conv_clamp=256.0)
BUFFERS = {"w_avg", "noise_const", "resample_filter", "p"}
# Official paper256 G/D state_dict sizes (parameters + buffers incl. resample filters), as the official classes
# produce them (verified by loading our export into training.networks with strict=True).
PAPER256_OFFICIAL_G_ENTRIES, PAPER256_OFFICIAL_D_ENTRIES = 144, 64


# ------------------------------------------------------------------------------------- official-format fixtures
def _never_called(meta):
    raise AssertionError("the importer executed the persistent-object hook")


class _EasyDict(dict):
    pass


@pytest.fixture
def official_globals(monkeypatch):
    """Stand-in modules so pickle writes `torch_utils.persistence._reconstruct_persistent_obj` and
    `dnnlib.util.EasyDict` like the real files do."""
    tu, pers = types.ModuleType("torch_utils"), types.ModuleType("torch_utils.persistence")
    dn, util = types.ModuleType("dnnlib"), types.ModuleType("dnnlib.util")
    _never_called.__module__, _never_called.__qualname__ = "torch_utils.persistence", "_reconstruct_persistent_obj"
    pers._reconstruct_persistent_obj = _never_called
    _EasyDict.__module__, _EasyDict.__qualname__ = "dnnlib.util", "EasyDict"
    util.EasyDict = _EasyDict
    for name, mod in (("torch_utils", tu), ("torch_utils.persistence", pers), ("dnnlib", dn), ("dnnlib.util", util)):
        monkeypatch.setitem(sys.modules, name, mod)
    return pers


class Persistent:
    """Pickles exactly as a torch_utils.persistence object: reconstruct(meta) with the object's __dict__ as state."""

    def __init__(self, class_name, state, module_src="# module source (never executed)\n"):
        self.meta = dict(type="class", version=6, module_src=module_src, class_name=class_name, state=state)

    def __reduce__(self):
        return (_never_called, (self.meta,))


def _module_state(init_kwargs=None):
    return dict(training=False, _parameters=collections.OrderedDict(), _buffers=collections.OrderedDict(),
                _non_persistent_buffers_set=set(), _modules=collections.OrderedDict(),
                _forward_hooks=collections.OrderedDict(), _init_args=(),
                _init_kwargs=_EasyDict(init_kwargs or {}), weight_gain=np.float64(0.125))


def persistent_tree(flat: dict, class_name: str, init_kwargs: dict, extra_modules=None) -> Persistent:
    """Nest official dotted names into persistent objects (parameters as nn.Parameter, buffers as tensors);
    `extra_modules`: dotted module path -> object placed there as is (e.g. synthesis.feat_transfer_list)."""
    root = _module_state(init_kwargs)
    for name, t in flat.items():
        *path, leaf = name.split(".")
        node = root
        for part in path:
            node = node["_modules"].setdefault(part, _module_state())
        if leaf in BUFFERS:
            node["_buffers"][leaf] = t.clone()
        else:
            node["_parameters"][leaf] = nn.Parameter(t.clone(), requires_grad=False)

    def wrap(state, name):
        state["_modules"] = collections.OrderedDict(
            (k, wrap(v, "Layer") if isinstance(v, dict) else v) for k, v in state["_modules"].items())
        return Persistent(name, state)

    for where, module in (extra_modules or {}).items():
        *path, leaf = where.split(".")
        node = root
        for part in path:
            node = node["_modules"][part]
        node["_modules"][leaf] = module
    return wrap(root, class_name)


def official_kwargs(preset, fp16=4):
    return C.official_init_kwargs(preset, num_fp16_res=fp16)


def write_official_pickle(path, G, D, G_ema, preset, g_class="Generator", g_kwargs=None, d_kwargs=None,
                          heads=None, p=0.25, ema_heads=None, extra=None):
    """`heads` (HSR): G.synthesis.feat_transfer_list of G (and of G_ema unless `ema_heads`), with the
    constructor argument pred_feat_dims as FeatureGuidedSynthesisNetwork records it; `extra`: more modules."""
    snap = dict(G=G.state_dict(), G_ema=G_ema.state_dict(), D=D.state_dict(), preset=preset)
    exported = C.export_official(snap, num_fp16_res=4)
    gk = g_kwargs or exported["G"]["init_kwargs"]
    dk = d_kwargs or exported["D"]["init_kwargs"]
    gk = _EasyDict(gk, mapping_kwargs=_EasyDict(gk["mapping_kwargs"]),
                   synthesis_kwargs=_EasyDict(gk["synthesis_kwargs"]))
    g_extra, ema_extra = dict(extra or {}), dict(extra or {})
    if heads is not None:
        gk["synthesis_kwargs"].setdefault("pred_feat_dims", head_dims(heads))
        g_extra["synthesis.feat_transfer_list"] = heads
        ema_extra["synthesis.feat_transfer_list"] = heads if ema_heads is None else ema_heads
    data = dict(training_set_kwargs=dict(_EasyDict(class_name="training.dataset.ImageFolderDataset", path="x.zip",
                                                   resolution=preset["resolution"], use_labels=False)),
                G=persistent_tree(exported["G"]["state_dict"], g_class, gk, g_extra),
                D=persistent_tree(exported["D"]["state_dict"], "Discriminator", dk),
                G_ema=persistent_tree(exported["G_ema"]["state_dict"], g_class, gk, ema_extra),
                augment_pipe=persistent_tree({"p": torch.tensor(p)}, "AugmentPipe", dict(xflip=1)))
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return path


def random_networks(preset, seed=0):
    torch.manual_seed(seed)
    G, D = Generator(**preset).eval(), Discriminator(**preset).eval()
    G_ema = Generator(**preset).eval()
    with torch.no_grad():   # non-zero biases, noise strengths and w_avg so every tensor matters
        for m in (G, D, G_ema):
            for t in list(m.parameters()) + [b for n, b in m.named_buffers() if n.endswith("w_avg")]:
                t.add_(torch.randn_like(t) * 0.1)
    return G, D, G_ema


@pytest.fixture
def fixture_pickle(tmp_path, official_globals):
    G, D, G_ema = random_networks(PRESET)
    return write_official_pickle(tmp_path / "net.pkl", G, D, G_ema, PRESET), (G, D, G_ema)


# ------------------------------------------------------------------------------------------------------- import
def test_import_reproduces_images_and_logits(fixture_pickle):
    path, (G, D, G_ema) = fixture_pickle
    del sys.modules["torch_utils.persistence"], sys.modules["dnnlib.util"]   # the importer needs neither
    snap = C.import_official(path)
    assert snap["preset"] == PRESET
    assert snap["imported"]["G_num_fp16_res"] == 4 and snap["imported"]["conv_clamp"] == 256.0
    assert snap["imported"]["training_set_kwargs"]["path"] == "x.zip"
    assert snap["ada_p"] == pytest.approx(0.25)
    G2, D2 = Generator(**snap["preset"]).eval(), Discriminator(**snap["preset"]).eval()
    G2.load_state_dict(snap["G_ema"])
    D2.load_state_dict(snap["D"])
    z = torch.randn(4, PRESET["z_dim"])
    with torch.no_grad():
        img_ref, img = G_ema(z, noise_mode="const"), G2(z, noise_mode="const")
        assert torch.equal(img, img_ref)
        truncated = dict(truncation_psi=0.5, noise_mode="const")
        assert torch.equal(G_ema(z, **truncated), G2(z, **truncated))
        assert torch.equal(D(img_ref), D2(img_ref))
    for key, net in (("G", G), ("D", D)):
        assert all(torch.equal(v, snap[key][k]) for k, v in net.state_dict().items())


def test_official_names_are_the_stylegan2_ada_ones():
    g_pairs, g_filters = C.generator_name_pairs(C.PRESETS["paper256"])
    d_pairs, d_filters = C.discriminator_name_pairs(C.PRESETS["paper256"])
    assert len(g_pairs) + len(g_filters) == PAPER256_OFFICIAL_G_ENTRIES
    assert len(d_pairs) + len(d_filters) == PAPER256_OFFICIAL_D_ENTRIES
    g = dict(g_pairs)
    assert g["mapping.fc7.weight"] == "mapping.layers.7.weight"
    assert g["synthesis.b4.conv1.noise_const"] == "synthesis.blocks.0.convs.0.noise_const"   # 4x4 has conv1 only
    assert g["synthesis.b256.conv0.affine.bias"] == "synthesis.blocks.6.convs.0.affine.bias"
    assert g["synthesis.b256.torgb.weight"] == "synthesis.blocks.6.torgb.weight"
    d = dict(d_pairs)
    assert d["b256.fromrgb.weight"] == "blocks.0.fromrgb.weight" and "b128.fromrgb.weight" not in d
    assert d["b8.skip.weight"] == "blocks.5.skip.weight" and "b8.skip.bias" not in d
    assert d["b4.out.bias"] == "epilogue_out.bias"
    # every parameter of ours is covered exactly once
    G, D = build_networks("paper256", device="meta")
    assert sorted(g.values()) == sorted(G.state_dict()) and sorted(d.values()) == sorted(D.state_dict())


def test_cli_import_writes_a_loadable_network_pt(fixture_pickle, tmp_path):
    path, (_, _, G_ema) = fixture_pickle
    out = tmp_path / "network.pt"
    assert C.main(["import", str(path), str(out)]) == 0
    G = load_generator(out)
    z = torch.randn(2, PRESET["z_dim"])
    with torch.no_grad():
        assert torch.equal(G(z, noise_mode="const"), G_ema(z, noise_mode="const"))


def test_expect_preset_names_what_differs(fixture_pickle):
    path, _ = fixture_pickle
    with pytest.raises(InputError, match=r"not the 'paper256' architecture: resolution: checkpoint 32 vs paper256 256"):
        C.import_official(path, expect_preset="paper256")


@pytest.mark.parametrize("where,change,message", [
    ("G", dict(c_dim=10), r"G\.c_dim = 10 \(ours implements 0\)"),
    ("G", dict(img_channels=1), r"G\.img_channels = 1"),
    ("G.synthesis_kwargs", dict(architecture="resnet"), r"G\.synthesis_kwargs\.architecture = 'resnet'"),
    ("G.mapping_kwargs", dict(embed_features=64), r"G\.mapping_kwargs\.embed_features = 64"),
    ("D", dict(architecture="orig"), r"D\.architecture = 'orig' \(ours implements 'resnet'\)"),
    ("D", dict(img_resolution=64), r"D\.img_resolution = 64 differs from G's 32"),
    ("D", dict(conv_clamp=None), r"G conv_clamp 256.0 differs from D conv_clamp None"),
    ("D", dict(mystery=1), r"D\.mystery = 1 \(an argument our networks do not map\)"),
    ("D", dict(c_dim=3, mapping_kwargs=dict(num_layers=0)), r"D\.c_dim = 3 \(ours implements 0\)"),
])
def test_unmappable_constructor_arguments_fail_with_the_difference(tmp_path, official_globals, where, change, message):
    G, D, G_ema = random_networks(PRESET)
    gk, dk = C.official_init_kwargs(PRESET, 4)
    target = {"G": gk, "D": dk, "G.synthesis_kwargs": gk["synthesis_kwargs"],
              "G.mapping_kwargs": gk["mapping_kwargs"]}[where]
    target.update(change)
    path = write_official_pickle(tmp_path / "x.pkl", G, D, G_ema, PRESET, g_kwargs=gk, d_kwargs=dk)
    with pytest.raises(InputError, match=message):
        C.import_official(path)


def test_legacy_converted_arguments_are_accepted(tmp_path, official_globals):
    """What legacy.py records for TF-converted networks: every default spelled out, D label-mapping arguments."""
    G, D, G_ema = random_networks(PRESET)
    gk, dk = C.official_init_kwargs(PRESET, 4)
    gk["mapping_kwargs"].update(embed_features=None, layer_features=None, activation="lrelu", lr_multiplier=0.01,
                                w_avg_beta=0.995)
    gk["synthesis_kwargs"].update(architecture="skip", resample_filter=[1, 3, 3, 1], use_noise=True, activation="lrelu")
    dk.update(cmap_dim=None, mapping_kwargs=dict(num_layers=0, embed_features=None, layer_features=None,
                                                 activation="lrelu", lr_multiplier=0.1),
              block_kwargs=dict(activation="lrelu", resample_filter=[1, 3, 3, 1], freeze_layers=0))
    dk["epilogue_kwargs"].update(mbstd_num_channels=1, activation="lrelu")
    path = write_official_pickle(tmp_path / "legacy.pkl", G, D, G_ema, PRESET, g_kwargs=gk, d_kwargs=dk)
    assert C.import_official(path)["preset"] == PRESET


def test_other_architecture_class_and_tensors_are_refused(tmp_path, official_globals):
    G, D, G_ema = random_networks(PRESET)
    path = write_official_pickle(tmp_path / "x.pkl", G, D, G_ema, PRESET, g_class="StyleGAN3Generator")
    with pytest.raises(InputError, match=r"generator class 'StyleGAN3Generator'"):
        C.import_official(path)
    # constructor arguments of one size, tensors of another
    gk, dk = C.official_init_kwargs(dict(PRESET, channel_max=16), 4)
    path = write_official_pickle(tmp_path / "y.pkl", G, D, G_ema, PRESET, g_kwargs=gk, d_kwargs=dk)
    with pytest.raises(InputError, match=r"G tensors do not fit the mapped preset"):
        C.import_official(path)


# ------------------------------------------------------------------------------------------------------- safety
class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_executes_code_is_refused(tmp_path, official_globals):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    G, D, G_ema = random_networks(PRESET)
    write_official_pickle(path, G, D, G_ema, PRESET)
    with open(path, "wb") as f:
        pickle.dump(dict(G=_RunsCode(marker), D=None, G_ema=None), f)
    with pytest.raises(InputError, match=r"refusing to load global '(posix|os|nt)\.system'"):
        C.import_official(path)
    assert not marker.exists()
    with open(path, "wb") as f:   # any other global too, e.g. builtins.eval / a torch.nn class not in the list
        pickle.dump(dict(G=nn.Sigmoid()), f)
    with pytest.raises(InputError, match=r"refusing to load global 'torch\.nn\.modules\.activation\.Sigmoid'"):
        C.import_official(path)


def test_embedded_module_source_is_never_executed(tmp_path, official_globals):
    marker = tmp_path / "executed"
    src = f"open({str(marker)!r}, 'w').close()\n"
    evil = Persistent("Generator", _module_state(), module_src=src)
    with open(tmp_path / "x.pkl", "wb") as f:
        pickle.dump(dict(G=evil, D=evil, G_ema=evil), f)
    with pytest.raises(InputError, match="cannot map"):
        C.import_official(tmp_path / "x.pkl")
    assert not marker.exists()
    record = C.read_pickle(tmp_path / "x.pkl")["G"]
    assert isinstance(record, C.PersistentRecord) and record.class_name == "Generator"
    assert len(record.module_src_sha256) == 64


def test_not_a_pickle_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="checkpoint not found"):
        C.import_official(tmp_path / "nope.pkl")
    (tmp_path / "bad.pkl").write_bytes(b"not a pickle")
    with pytest.raises(InputError, match="not a readable StyleGAN2-ADA training pickle"):
        C.import_official(tmp_path / "bad.pkl")


# ---------------------------------------------------------------------------------------------------- HSR heads
def official_conv1x1(cin, cout, activation):
    """HSR's Conv2dLayer(cin, cout, 1, activation=...) as persistence records it (weight ~ N(0, 1), used as
    w / sqrt(fan_in); act_gain = the activation's default gain; a resample-filter buffer)."""
    st = _module_state(dict(activation=activation) if activation != "linear" else {})
    st.update(activation=activation, up=1, down=1, conv_clamp=None, padding=0,
              weight_gain=np.float64(1 / np.sqrt(cin)), act_gain=np.float64(np.sqrt(2) if activation == "relu" else 1))
    st["_init_args"] = (cin, cout, 1)
    st["_buffers"]["resample_filter"] = torch.ones(4, 4) / 16
    st["_parameters"].update(weight=nn.Parameter(torch.randn(cout, cin, 1, 1), requires_grad=False),
                             bias=nn.Parameter(torch.randn(cout) * 0.1, requires_grad=False))
    return Persistent("Conv2dLayer", st)


def official_head(cin, dim, hidden, feat_res):
    """HSR's Head (training/networks.py): resize = torch AdaptiveAvgPool2d((1, 1)), conv1x1_1 (relu),
    conv1x1_2 (linear), bn = torch Identity, in_grad_norm = 0; constructor Head(cin, dim, feat_res=...)."""
    st = _module_state(dict(feat_res=feat_res))
    st["_init_args"] = (cin, dim)
    st["in_grad_norm"] = 0
    st["_modules"].update(resize=nn.AdaptiveAvgPool2d((1, 1)), conv1x1_1=official_conv1x1(cin, hidden, "relu"),
                          conv1x1_2=official_conv1x1(hidden, dim, "linear"), bn=nn.Identity())
    return Persistent("Head", st)


def official_heads(preset, hidden=8, dims=(6, 6, 5, 5), seed=3, resolutions=(8, 16, 32, 64)):
    """G.synthesis.feat_transfer_list: a real torch ModuleList of four official Heads at G blocks 8..64 px."""
    torch.manual_seed(seed)
    heads = nn.ModuleList()
    for i, (r, dim) in enumerate(zip(resolutions, dims)):
        c = min(preset["channel_base"] // r, preset["channel_max"])
        heads._modules[str(i)] = official_head(c, dim, hidden, r)   # (bypasses the Module type check)
    return heads


def head_dims(heads):
    return [h.meta["state"]["_modules"]["conv1x1_2"].meta["state"]["_parameters"]["weight"].shape[0]
            for h in heads._modules.values()]


def reference_head(head, x):
    """HSR's Head.forward(x, cls=False) in float64, from the fixture's tensors: bn(conv1x1_2(conv1x1_1(x)))."""
    out = x.double()
    for name in ("conv1x1_1", "conv1x1_2"):
        st = head.meta["state"]["_modules"][name].meta["state"]
        w, b = st["_parameters"]["weight"].double(), st["_parameters"]["bias"].double()
        out = torch.nn.functional.conv2d(out, w * st["weight_gain"], b)
        if st["activation"] == "relu":
            out = torch.relu(out) * st["act_gain"]
    return out


HSR_PRESET = dict(PRESET, resolution=128, channel_base=512, channel_max=16)


def test_hsr_pickle_imports_generator_and_heads(tmp_path, official_globals):
    G, D, G_ema = random_networks(HSR_PRESET)
    heads, ema_heads = official_heads(HSR_PRESET), official_heads(HSR_PRESET, seed=4)
    path = write_official_pickle(tmp_path / "hsr.pkl", G, D, G_ema, HSR_PRESET, g_class="FeatureGuidedGenerator",
                                 heads=heads, ema_heads=ema_heads)
    del sys.modules["torch_utils.persistence"], sys.modules["dnnlib.util"]   # the importer needs neither
    snap = C.import_official(path)
    imported = snap["imported"]
    assert imported["hsr_heads"] == "imported" and imported["generator_class"] == "FeatureGuidedGenerator"
    # the official computation: heads fed by G blocks 8..64 (feat_res, whatever the image resolution), relu in an
    # equalized-lr layer, outputs resized to each target's own size, heads in float32
    assert snap["hsr_spec"] == dict(levels="all", head_activation="relu_eqlr", head_hidden=8,
                                    level_resolutions=[8, 16, 32, 64], resize_to="target",
                                    head_precision="float32", feature_dims=[6, 6, 5, 5])
    hsr = imported["hsr"]
    assert hsr["heads_from"] == "G" and hsr["pred_feat_dims"] == [6, 6, 5, 5]
    assert [h["g_resolution"] for h in hsr["heads"]] == [8, 16, 32, 64]
    assert [h["in_channels"] for h in hsr["heads"]] == [16, 16, 16, 8]
    assert hsr["g_ema_heads_max_abs_diff"] > 0   # G_ema's (EMA-averaged) heads differ; G's are the trained ones
    # each official tensor lands in our head of the same level, as stored (same equalized-lr convention)
    for i, h in enumerate(heads._modules.values()):
        for official, ours in (("conv1x1_1", "hidden"), ("conv1x1_2", "out")):
            params = h.meta["state"]["_modules"][official].meta["state"]["_parameters"]
            for p in ("weight", "bias"):
                assert torch.equal(snap["hsr_heads"][f"heads.{i}.{ours}.{p}"], params[p]), (i, official, p)
    ours = C.imported_hsr_heads(snap)
    assert ours.level_res == [8, 16, 32, 64]
    with torch.no_grad():
        x = {r: torch.randn(2, G.synthesis.channels[r], r, r, dtype=torch.float64) for r in ours.level_res}
        native = copy.deepcopy(ours).double().native(x)
        for i, (h, r) in enumerate(zip(heads._modules.values(), ours.level_res)):
            ref = reference_head(h, x[r])
            torch.testing.assert_close(native[i], ref, rtol=1e-12, atol=1e-12)
        G2 = Generator(**snap["preset"]).eval()
        G2.load_state_dict(snap["G_ema"])
        z = torch.randn(2, PRESET["z_dim"])
        assert torch.equal(G2(z, noise_mode="const"), G_ema(z, noise_mode="const"))
    dropped = C.import_official(path, drop_hsr_heads=True)
    assert dropped["hsr_heads"] is None and dropped["imported"]["hsr_heads"] == "dropped"


def test_hsr_heads_are_exported_under_the_official_names(tmp_path, official_globals):
    G, D, G_ema = random_networks(HSR_PRESET)
    path = write_official_pickle(tmp_path / "hsr.pkl", G, D, G_ema, HSR_PRESET, g_class="FeatureGuidedGenerator",
                                 heads=official_heads(HSR_PRESET))
    snap = C.import_official(path)
    exported = C.export_official(snap)
    sd = exported["hsr_heads"]["state_dict"]
    assert torch.equal(sd["synthesis.feat_transfer_list.2.conv1x1_1.weight"], snap["hsr_heads"]["heads.2.hidden.weight"])
    assert torch.equal(sd["synthesis.feat_transfer_list.3.conv1x1_2.bias"], snap["hsr_heads"]["heads.3.out.bias"])
    assert exported["hsr_heads"]["level_resolutions"] == [8, 16, 32, 64]
    # hidden 8 is not the official Head's 4096: the heads travel beside a plain Generator
    assert not exported["hsr_heads"]["in_official_generator"]
    assert exported["G"]["class_name"] == "training.networks.Generator"
    snap["hsr_spec"]["head_hidden"] = C.HEAD_HIDDEN   # (only the spec is read to decide)
    official = C.export_official(snap)
    assert official["G"]["class_name"] == "training.networks.FeatureGuidedGenerator"
    assert official["G"]["init_kwargs"]["synthesis_kwargs"]["pred_feat_dims"] == [6, 6, 5, 5]
    assert "synthesis.feat_transfer_list.0.conv1x1_1.resample_filter" in official["G_ema"]["state_dict"]


def test_hsr_baseline_generator_drops_its_unused_feat_transfer_conv(tmp_path, official_globals):
    """HSR's plain Generator (its baselines) holds synthesis.feat_transfer = torch Conv2d(768, 512, 1)."""
    G, D, G_ema = random_networks(PRESET)
    conv = nn.Conv2d(768, 512, 1)
    path = write_official_pickle(tmp_path / "base.pkl", G, D, G_ema, PRESET,
                                 extra={"synthesis.feat_transfer": conv})
    snap = C.import_official(path)
    assert snap["imported"]["dropped_modules"] == [dict(
        module="synthesis.feat_transfer", shape=[512, 768, 1, 1], parameters=768 * 512 + 512,
        what="torch Conv2d 768->512 that only HSR's unused SynthesisNetwork.gen_from_feats calls (never in forward "
             "or training)")]
    assert all(torch.equal(v, snap["G_ema"][k]) for k, v in G_ema.state_dict().items())
    path = write_official_pickle(tmp_path / "other.pkl", G, D, G_ema, PRESET,
                                 extra={"synthesis.feat_transfer": nn.Conv2d(3, 512, 1)})
    with pytest.raises(InputError, match=r"synthesis\.feat_transfer is a Conv2d \(512, 3, 1, 1\)"):
        C.import_official(path)


def _head_with(module_name, module):
    heads = official_heads(HSR_PRESET)
    heads._modules["1"].meta["state"]["_modules"][module_name] = module
    return heads


@pytest.mark.parametrize("module_name,module,refused", [
    ("bn", nn.BatchNorm2d(5), "torch.nn.modules.batchnorm.BatchNorm2d"),
    ("bn", nn.Sequential(), "torch.nn.modules.container.Sequential"),
    ("bn", nn.ReLU(), "torch.nn.modules.activation.ReLU"),
    ("bn", nn.LeakyReLU(0.2), "torch.nn.modules.activation.LeakyReLU"),
    ("resize", nn.Upsample(14), "torch.nn.modules.upsampling.Upsample"),
    ("resize", nn.AdaptiveMaxPool2d(1), "torch.nn.modules.pooling.AdaptiveMaxPool2d"),
    ("bn", nn.Linear(8, 5), "torch.nn.modules.linear.Linear"),
    ("resize", nn.Flatten(), "torch.nn.modules.flatten.Flatten"),
])
def test_other_torch_nn_globals_are_refused_by_name(tmp_path, official_globals, module_name, module, refused):
    G, D, G_ema = random_networks(HSR_PRESET)
    path = write_official_pickle(tmp_path / "x.pkl", G, D, G_ema, HSR_PRESET, g_class="FeatureGuidedGenerator",
                                 heads=_head_with(module_name, module))
    with pytest.raises(InputError, match=rf"refusing to load global '{refused}'"):
        C.import_official(path)


class _CallsEval:
    def __reduce__(self):
        return (eval, ("1 + 1",))


def test_callables_and_misplaced_allowed_classes_are_refused(tmp_path, official_globals):
    G, D, G_ema = random_networks(HSR_PRESET)
    path = write_official_pickle(tmp_path / "x.pkl", G, D, G_ema, HSR_PRESET, g_class="FeatureGuidedGenerator",
                                 heads=_head_with("bn", _CallsEval()))
    with pytest.raises(InputError, match=r"refusing to load global 'builtins\.eval'"):
        C.import_official(path)
    # an allowed torch.nn class is data (a record of its __dict__), never the class; in the wrong place it is refused
    path = write_official_pickle(tmp_path / "y.pkl", G, D, G_ema, HSR_PRESET, g_class="FeatureGuidedGenerator",
                                 heads=_head_with("bn", nn.AdaptiveAvgPool2d(1)))
    record = C.read_pickle(path)["G"].state["_modules"]["synthesis"].state["_modules"]["feat_transfer_list"]
    assert isinstance(record, C.TorchModuleRecord) and record.class_name == "torch.nn.modules.container.ModuleList"
    pool = record.state["_modules"]["0"].state["_modules"]["resize"]
    assert isinstance(pool, C.TorchModuleRecord) and not isinstance(pool, nn.Module)
    assert pool.state["output_size"] == (1, 1)
    with pytest.raises(InputError, match=r"feat_transfer_list\.1 holds .*'bn': 'AdaptiveAvgPool2d'.*the official "
                                         r"Head holds"):
        C.import_official(path)


@pytest.mark.parametrize("change,message", [
    (dict(activation="lrelu"), r"conv1x1_1\.activation = 'lrelu'; the official Head's layer has 'relu'"),
    (dict(down=2), r"conv1x1_1\.down = 2"),
    (dict(conv_clamp=256), r"conv1x1_1\.conv_clamp = 256"),
    (dict(weight_gain=np.float64(1.0)), r"conv1x1_1\.weight_gain = 1\.0"),
])
def test_head_layer_options_other_than_the_official_ones_fail(tmp_path, official_globals, change, message):
    G, D, G_ema = random_networks(HSR_PRESET)
    heads = official_heads(HSR_PRESET)
    heads._modules["0"].meta["state"]["_modules"]["conv1x1_1"].meta["state"].update(change)
    path = write_official_pickle(tmp_path / "x.pkl", G, D, G_ema, HSR_PRESET, g_class="FeatureGuidedGenerator",
                                 heads=heads)
    with pytest.raises(InputError, match=message):
        C.import_official(path)


def test_pred_feat_dims_must_match_the_heads(tmp_path, official_globals):
    G, D, G_ema = random_networks(HSR_PRESET)
    gk, dk = C.official_init_kwargs(HSR_PRESET, 4)
    gk["synthesis_kwargs"]["pred_feat_dims"] = [768] * 4
    path = write_official_pickle(tmp_path / "x.pkl", G, D, G_ema, HSR_PRESET, g_class="FeatureGuidedGenerator",
                                 g_kwargs=gk, d_kwargs=dk, heads=official_heads(HSR_PRESET))
    with pytest.raises(InputError, match=r"heads predict \[6, 6, 5, 5\]-d features but .*pred_feat_dims = \[768"):
        C.import_official(path)
    gk["synthesis_kwargs"]["pred_feat_dims"] = [6, 6, 5, 5]   # a plain Generator takes no such argument
    path = write_official_pickle(tmp_path / "y.pkl", G, D, G_ema, HSR_PRESET, g_kwargs=gk, d_kwargs=dk)
    with pytest.raises(InputError, match=r"pred_feat_dims = \[6, 6, 5, 5\] \(an argument our networks do not map\)"):
        C.import_official(path)


# ------------------------------------------------------------------------------------------------------- export
def test_export_is_weights_only_and_round_trips_through_the_official_format(tmp_path, official_globals):
    G, D, G_ema = random_networks(PRESET, seed=5)
    snap = dict(G=G.state_dict(), G_ema=G_ema.state_dict(), D=D.state_dict(), preset=PRESET, ada_p=0.5)
    torch.save(snap, tmp_path / "network.pt")
    assert C.main(["export", str(tmp_path / "network.pt"), str(tmp_path / "official.pt"), "--num-fp16-res", "4"]) == 0
    f = torch.load(tmp_path / "official.pt", weights_only=True)
    assert f["G_ema"]["init_kwargs"] == dict(
        z_dim=16, c_dim=0, w_dim=16, img_resolution=32, img_channels=3, mapping_kwargs=dict(num_layers=2),
        synthesis_kwargs=dict(channel_base=256, channel_max=32, num_fp16_res=4, conv_clamp=256.0))
    assert f["D"]["init_kwargs"]["epilogue_kwargs"] == dict(mbstd_group_size=2)
    assert f["D"]["init_kwargs"]["architecture"] == "resnet" and f["augment_p"] == 0.5
    sd = f["G_ema"]["state_dict"]
    assert torch.equal(sd["synthesis.b8.conv0.weight"], G_ema.state_dict()["synthesis.blocks.1.convs.0.weight"])
    taps = torch.tensor([1., 3, 3, 1])
    assert torch.equal(sd["synthesis.b8.resample_filter"], taps.outer(taps) / 64)
    # official-format pickle of the exported tensors -> import -> the same networks
    path = write_official_pickle(tmp_path / "rt.pkl", G, D, G_ema, PRESET)
    back = C.import_official(path)
    for key, net in (("G", G), ("G_ema", G_ema), ("D", D)):
        assert all(torch.equal(v, back[key][k]) for k, v in net.state_dict().items())


# ---------------------------------------------------------------------------------------------------- conv_clamp
def test_conv_clamp_bounds_activations_in_float32():
    torch.manual_seed(0)
    base = dict(PRESET, conv_clamp=None)
    G = Generator(**base).eval()
    Gc = Generator(**dict(base, conv_clamp=0.05)).eval()
    Gc.load_state_dict(G.state_dict())
    z = torch.randn(2, base["z_dim"])
    with torch.no_grad():
        _, feats, _ = Gc.synthesis(Gc.mapping(z), noise_mode="const", return_features=True)
        assert all(f.abs().max() <= 0.05 + 1e-7 for f in feats.values())
        assert not torch.equal(G(z, noise_mode="const"), Gc(z, noise_mode="const"))
    D = Discriminator(**base)
    Dc = Discriminator(**dict(base, conv_clamp=0.05))
    Dc.load_state_dict(D.state_dict())
    assert Dc.blocks[0].conv1.clamp == pytest.approx(0.05 * math.sqrt(0.5))   # act_clamp = conv_clamp * gain
    assert Dc.blocks[0].skip.clamp is None                                    # official: the skip is never clamped


# ------------------------------------------------- released networks in the pipeline: HSR start, table rows
sys.path.insert(0, str(Path(__file__).parent))
import tiny_gan_run as tiny  # noqa: E402

TINY_RELEASED = dict(tiny.TINY_PRESET, conv_clamp=256.0)


def imported_network_pt(tmp_path, name, g_class="Generator", heads=None, seed=0, flags=()):
    G, D, G_ema = random_networks(TINY_RELEASED, seed)
    pkl = write_official_pickle(tmp_path / f"{name}.pkl", G, D, G_ema, TINY_RELEASED, g_class=g_class, heads=heads)
    out = tmp_path / "imported" / name / "network.pt"
    assert C.main(["import", str(pkl), str(out), *flags]) == 0
    return out


def test_hsr_run_starts_from_an_imported_baseline(tmp_path, official_globals):
    from lead_hsr.gan.training import GanData, GanTrainer, resolve_options

    released = imported_network_pt(tmp_path, "released")
    store = tiny.make_store(tmp_path / "store")
    opts = resolve_options(tiny.tiny_options(preset=TINY_RELEASED, hsr=tiny.TINY_HSR))
    trainer = GanTrainer(opts, GanData(store, 16, True), "cpu", cache_dir=tmp_path)
    trainer.init_from(released)   # no optimizer state in an import: Adam starts fresh
    snap = torch.load(released, weights_only=True)
    assert all(torch.equal(v, snap["G_ema"][k]) for k, v in trainer.G_ema.state_dict().items())
    out = trainer.step(0, np.arange(8))
    assert np.isfinite(out["loss_G"]) and np.isfinite(out["loss_hsr"]) and np.isfinite(out["loss_D"])
    plain = GanTrainer(resolve_options(tiny.tiny_options()), None, "cpu")   # our preset: no conv_clamp
    with pytest.raises(InputError, match=r"set this run's train.preset to the imported one: .*'conv_clamp': 256.0"):
        plain.init_from(released)


def test_table_rows_from_released_checkpoints(tmp_path, official_globals):
    """The same metric code and table aggregation as our runs, rows named by `run: {imported: <name>}`."""
    from lead_hsr.metrics.gan_eval import evaluate_gan
    from lead_hsr.report.spec import run_key, validate_table
    from lead_hsr.report.tables import build_table, read_results, to_markdown

    heads = official_heads(TINY_RELEASED, dims=(4, 4, 4, 4), resolutions=[4, 4, 8, 16])
    networks = {"sg2ada": imported_network_pt(tmp_path, "sg2ada"),
                "hsr": imported_network_pt(tmp_path, "hsr", "FeatureGuidedGenerator", heads, seed=1,
                                           flags=("--hsr-resolutions", "4,4,8,16"))}
    assert torch.load(networks["hsr"], weights_only=True)["hsr_spec"]["level_resolutions"] == [4, 4, 8, 16]
    store = tiny.make_store(tmp_path / "store")
    options = dict(device="cpu", fid=dict(extractor="random-cnn", num_gen=24),
                   pr=dict(extractor="random-cnn", num_gen=24, max_real=24),
                   ppl=dict(distance="lpips-vgg", standin="random", num_samples=8))
    spec = validate_table("table_released", dict(
        caption="Released networks beside ours", index=["Method"],
        columns=[dict(name="fid", label="FID", metric="fid"), dict(name="ppl", label="PPL", metric="ppl")],
        rows=[dict(label=["released SG2-ADA"], run=dict(imported="sg2ada"), thesis=dict(fid="-", ppl="-")),
              dict(label=["released HSR"], run=dict(imported="hsr"), thesis=dict(fid="-", ppl="-"))]))
    paths, fids = {}, {}
    for row in spec["rows"]:
        name = row["run"]["imported"]
        out = tmp_path / "results" / "hsr" / "metrics" / f"imported~{name}" / "metrics.json"   # rules/imported.smk
        fids[name] = evaluate_gan(networks[name], store, out, options, tmp_path / "cache", tmp_path)["fid"]
        paths[run_key(row["run"])] = [out]
    table = build_table(spec, read_results(paths), title="Released")
    markdown = to_markdown(table)
    assert f"{fids['sg2ada']:.2f}" in markdown and f"{fids['hsr']:.2f}" in markdown
    assert fids["sg2ada"] != fids["hsr"]
    assert "lpips-vgg=standin:random" in markdown   # the stand-in footnote travels with the rows
