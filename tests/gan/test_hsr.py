"""HSR heads, loss, level groups and extractors against independent computations."""
import math

import numpy as np
import pytest
import torch

from lead_hsr.errors import InputError
from lead_hsr.gan.arch_card import architecture_card
from lead_hsr.gan.extractors import (CLIP_MEAN, EXTRACTORS, IMAGENET_STD, ExtractorSpec, FeatureExtractor,
                                     extractor_feature_dims)
from lead_hsr.gan.hsr import LEVEL_GROUPS, HSRSpec, build_hsr_heads
from lead_hsr.gan.networks import build_networks

PAPER_VIT_DINO_HEADS = 19_942_400


def test_paper256_vit_dino_heads_count():
    card = architecture_card("paper256", ["vit_dino", "resnet50"])
    assert card["hsr_heads"]["vit_dino"] == PAPER_VIT_DINO_HEADS
    # ResNet50 levels predict 2048/1024/512/256-d features from G widths 512/512/512/256, hidden 4096
    expected = sum(c * 4096 + 4096 + 4096 * d + d for c, d in [(512, 2048), (512, 1024), (512, 512), (256, 256)])
    assert card["hsr_heads"]["resnet50"] == expected
    assert card["G"] == 24_767_458 and card["D"] == 24_001_089


def test_arch_card_with_demo_heads_counts_the_built_modules():
    hsr = dict(arch="vit_tiny_patch16_224", input_size=64, head_hidden=32, levels="low",
               level_resolutions=[4, 8, 16, 32])
    card = architecture_card(dict(resolution=32, channel_base=1024, channel_max=64), ["vit_dino"], hsr)
    # levels r/8, r/4 -> G blocks 16 (64 ch) and 32 (32 ch); ViT-tiny width 192
    expected = (64 * 32 + 32 + 32 * 192 + 192) + (32 * 32 + 32 + 32 * 192 + 192)
    assert card["hsr_heads"]["vit_dino"] == expected
    assert card["G"] == card["G_mapping"] + card["G_synthesis"]


def _adaptive_avg_pool_reference(x: np.ndarray, size: int) -> np.ndarray:
    """Definition of area resampling: output cell i averages input [floor(i*H/s), ceil((i+1)*H/s))."""
    h = x.shape[-1]
    out = np.zeros(x.shape[:-2] + (size, size))
    for i in range(size):
        i0, i1 = (i * h) // size, -((-(i + 1) * h) // size)
        for j in range(size):
            j0, j1 = (j * h) // size, -((-(j + 1) * h) // size)
            out[..., i, j] = x[..., i0:i1, j0:j1].mean(axis=(-1, -2))
    return out


def _head_reference(head, x: np.ndarray, activation: str) -> np.ndarray:
    w1 = head.hidden.weight.detach().double().numpy()[:, :, 0, 0] / math.sqrt(head.hidden.weight.shape[1])
    w2 = head.out.weight.detach().double().numpy()[:, :, 0, 0] / math.sqrt(head.out.weight.shape[1])
    b1, b2 = head.hidden.bias.detach().double().numpy(), head.out.bias.detach().double().numpy()
    h = np.einsum("oc,nchw->nohw", w1, x) + b1[None, :, None, None]
    h = np.where(h > 0, h, 0.0 if activation == "relu_eqlr" else 0.2 * h) * math.sqrt(2)
    return np.einsum("oc,nchw->nohw", w2, h) + b2[None, :, None, None]


@pytest.fixture(scope="module")
def tiny_g():
    torch.manual_seed(0)
    G, _ = build_networks(dict(resolution=32, channel_base=256, channel_max=16, z_dim=16, w_dim=16,
                               mapping_layers=1))
    return G


def _heads(G, levels="all", activation="relu_eqlr", dims=(6, 5, 4, 3), input_size=224):
    spec = HSRSpec(levels=levels, head_activation=activation, head_hidden=12, level_resolutions=[4, 8, 16, 32])
    torch.manual_seed(1)
    heads = build_hsr_heads(spec, G.synthesis, list(dims), input_size)
    with torch.no_grad():
        for p in heads.parameters():
            p.normal_()       # non-zero biases so the reference checks them too
    return heads


@pytest.mark.parametrize("activation", ["relu_eqlr", "leaky_relu"])
def test_hsr_loss_matches_reference(tiny_g, activation):
    heads = _heads(tiny_g, activation=activation)
    assert heads.grid == 14
    torch.manual_seed(2)
    img, feats, _ = tiny_g(torch.randn(2, 16), return_features=True)
    targets = [torch.randn(2, d, 14, 14) for d in (6, 5, 4, 3)]
    ours = heads.loss(feats, targets).item()
    ref = 0.0
    for level, (res, head) in enumerate(zip([4, 8, 16, 32], heads.heads)):
        pred = _head_reference(head, feats[res].detach().double().numpy(), activation)
        pred = _adaptive_avg_pool_reference(pred, 14)      # 4 and 8 -> 14 upsample, 16 and 32 -> 14 pool
        ref += np.mean((pred - targets[level].double().numpy()) ** 2)
    assert math.isclose(ours, ref, rel_tol=1e-5)


def test_head_activation_knob_changes_the_output(tiny_g):
    a, b = _heads(tiny_g, activation="relu_eqlr"), _heads(tiny_g, activation="leaky_relu")
    x = {r: torch.randn(1, tiny_g.synthesis.channels[r], r, r) for r in (4, 8, 16, 32)}
    assert not torch.allclose(a.predictions(x)[0], b.predictions(x)[0])


@pytest.mark.parametrize("group", sorted(LEVEL_GROUPS))
def test_level_group_supervises_exactly_its_g_blocks(tiny_g, group):
    heads = _heads(tiny_g, levels=group)
    expected = [[4, 8, 16, 32][i] for i in LEVEL_GROUPS[group]]
    assert heads.level_res == expected
    torch.manual_seed(3)
    _, feats, _ = tiny_g(torch.randn(2, 16), return_features=True)
    leaf = {r: f.detach().requires_grad_() for r, f in feats.items()}
    loss = heads.loss(leaf, [torch.randn(2, d, 14, 14) for d in (6, 5, 4, 3)])
    grads = torch.autograd.grad(loss, list(leaf.values()), allow_unused=True)
    receiving = {r for r, g in zip(leaf, grads) if g is not None and g.abs().sum() > 0}
    assert receiving == set(expected)
    # and through G: the last block's convs get an HSR gradient only when level r/4 (res 32 here) is supervised
    tiny_g.zero_grad(set_to_none=True)
    heads.loss(feats, [torch.randn(2, d, 14, 14) for d in (6, 5, 4, 3)]).backward()
    top_grad = tiny_g.synthesis.blocks[-1].convs[1].weight.grad
    assert (top_grad is not None and top_grad.abs().sum() > 0) == (32 in expected)
    tiny_g.zero_grad(set_to_none=True)


def test_level_groups_are_the_thesis_groups():
    assert LEVEL_GROUPS == {"high": (0, 1), "mid": (1, 2), "low": (2, 3), "all": (0, 1, 2, 3)}
    assert HSRSpec().resolutions(256) == [8, 16, 32, 64]
    with pytest.raises(InputError, match="level_resolutions"):
        HSRSpec().resolutions(32)        # r/32 = 1 has no G block: must be set explicitly


# ---------------------------------------------------------------- extractors

def test_every_extractor_maps_to_a_registered_weight_and_paper_widths():
    from lead_hsr.weights import REGISTRY
    widths = {"vit": [768] * 4, "resnet": [2048, 1024, 512, 256]}
    for name, (arch, kind, weight) in EXTRACTORS.items():
        assert weight is None or weight in REGISTRY, name
        assert extractor_feature_dims(ExtractorSpec(name=name, weights="random")) == widths[kind], name
    assert ExtractorSpec(name="vit_random").weights == "random"


@pytest.mark.parametrize("name,arch", [("vit_dino", "vit_tiny_patch16_224"), ("deit", "vit_tiny_patch16_224"),
                                       ("vit_random", "vit_tiny_patch16_224"), ("resnet50", "resnet18"),
                                       ("resnet50_dino", "resnet18")])
def test_each_extractor_gives_four_levels_on_the_target_grid(name, arch):
    torch.manual_seed(0)
    ext = FeatureExtractor(ExtractorSpec(name=name, weights="random", arch=arch, input_size=64))
    feats = ext(torch.rand(2, 3, 32, 32) * 2 - 1)
    assert [f.shape[1] for f in feats] == ext.feature_dims()
    sizes = [f.shape[-1] for f in feats]
    assert sizes == ([4] * 4 if ext.spec.kind == "vit" else [2, 4, 8, 16])
    assert ext.record["source"] == "standin:random"


def test_vit_levels_are_blocks_12_9_6_3_after_final_norm_without_cls():
    torch.manual_seed(0)
    ext = FeatureExtractor(ExtractorSpec(name="vit_random", arch="vit_tiny_patch16_224", input_size=32))
    img = torch.rand(1, 3, 32, 32) * 2 - 1
    feats = ext(img)
    m = ext.model
    x = m.patch_embed(ext.preprocess(img))
    x = m.norm_pre(m._pos_embed(x))
    outputs = []
    for blk in m.blocks:
        x = blk(x)
        outputs.append(m.norm(x)[:, m.num_prefix_tokens:])
    for level, block in enumerate((12, 9, 6, 3)):
        expected = outputs[block - 1].transpose(1, 2).reshape(1, -1, 2, 2)
        torch.testing.assert_close(feats[level], expected)


def test_normalisation_knob():
    ext_a = FeatureExtractor(ExtractorSpec(name="vit_random", arch="vit_tiny_patch16_224", input_size=32))
    ext_b = FeatureExtractor(ExtractorSpec(name="vit_random", arch="vit_tiny_patch16_224", input_size=32,
                                           normalize="imagenet"), model=ext_a.model)
    img = torch.zeros(1, 3, 32, 32)      # grey 0.5 after mapping to [0, 1]
    a = ext_a.preprocess(img)[0, :, 0, 0]
    torch.testing.assert_close(a, (0.5 - torch.tensor(CLIP_MEAN)) / torch.tensor(IMAGENET_STD))
    assert not torch.allclose(a, ext_b.preprocess(img)[0, :, 0, 0])


def test_state_dict_standin_loads_a_torchvision_resnet(tmp_path):
    import torchvision
    torch.manual_seed(0)
    tv = torchvision.models.resnet18().eval()
    path = tmp_path / "stage1.pt"
    torch.save({f"module.{k}": v for k, v in tv.state_dict().items()}, path)
    ext = FeatureExtractor(ExtractorSpec(name="resnet50", weights=f"state_dict:{path}", arch="resnet18",
                                         input_size=64))
    img = torch.rand(1, 3, 64, 64) * 2 - 1
    x = ext.preprocess(img)
    with torch.no_grad():
        h = tv.maxpool(tv.relu(tv.bn1(tv.conv1(x))))
        l1 = tv.layer1(h)
        l2 = tv.layer2(l1)
        l3 = tv.layer3(l2)
        l4 = tv.layer4(l3)
        feats = ext(img)
    for ours, ref in zip(feats, [l4, l3, l2, l1]):
        torch.testing.assert_close(ours, ref)
    assert ext.record == {"weight": "resnet50", "source": "standin:file", "path": str(path)}


def test_missing_pretrained_weight_names_file_and_fetch_command(tmp_path):
    with pytest.raises(InputError, match=r"vit_base_patch16_224\.dino.*fetch"):
        FeatureExtractor(ExtractorSpec(name="vit_dino"), cache_dir=tmp_path)


def test_bad_extractor_settings_raise_input_error(tmp_path):
    with pytest.raises(InputError, match="unknown HSR extractor"):
        ExtractorSpec(name="clip")
    with pytest.raises(InputError, match="normalisation"):
        ExtractorSpec(normalize="none")
    with pytest.raises(InputError, match="state dict not found"):
        FeatureExtractor(ExtractorSpec(name="resnet50", weights=f"state_dict:{tmp_path}/x.pt", arch="resnet18"))


# ---------------------------------------------------------------- official-code settings (val-iisc/HSR)

def _official_resize(g: torch.Tensor, size: int) -> torch.Tensor:
    """HSR training/loss.py: a head's output goes to its target's size, area when upsampling (or equal), else
    adaptive average pooling."""
    if g.shape[-1] <= size:
        return torch.nn.functional.interpolate(g, size=[size] * 2, mode="area")
    return torch.nn.functional.adaptive_avg_pool2d(g, [size] * 2)


def test_resize_to_target_is_the_official_loss_and_patch_grid_the_alternative(tiny_g):
    """ResNet-like targets (7, 14, 28, 56 at 224 px): the official loss resizes each prediction to its target;
    'patch_grid' brings prediction and target to 14x14. For ViT targets (all 14x14) the two agree."""
    targets = [torch.randn(2, d, s, s) for d, s in zip((6, 5, 4, 3), (7, 14, 28, 56))]
    torch.manual_seed(4)
    _, feats, _ = tiny_g(torch.randn(2, 16), return_features=True)
    losses = {}
    for mode in ("target", "patch_grid"):
        heads = _heads(tiny_g)
        heads.spec.resize_to = mode
        native = heads.native(feats)
        if mode == "target":
            ref = sum(torch.nn.functional.mse_loss(_official_resize(p, t.shape[-1]), t) for p, t in zip(native, targets))
        else:
            ref = sum(torch.nn.functional.mse_loss(_official_resize(p, 14), _official_resize(t, 14))
                      for p, t in zip(native, targets))
        losses[mode] = heads.loss(feats, targets)
        torch.testing.assert_close(losses[mode], ref)
    assert not torch.isclose(losses["target"], losses["patch_grid"])
    vit_targets = [torch.randn(2, d, 14, 14) for d in (6, 5, 4, 3)]
    a, b = _heads(tiny_g), _heads(tiny_g)
    b.spec.resize_to = "patch_grid"
    assert torch.equal(a.loss(feats, vit_targets), b.loss(feats, vit_targets))
    assert HSRSpec().resize_to == "target"
    with pytest.raises(InputError, match="resize_to"):
        HSRSpec(resize_to="bilinear")


def test_area_interpolation_is_adaptive_average_pooling():
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    assert torch.equal(torch.nn.functional.interpolate(x, size=(14, 14), mode="area"),
                       torch.nn.functional.adaptive_avg_pool2d(x, 14))


def test_head_precision_float32_runs_the_heads_in_float32_inside_autocast(tiny_g):
    heads = _heads(tiny_g)
    assert heads.spec.head_precision == "float32"
    x = {r: torch.randn(1, tiny_g.synthesis.channels[r], r, r).to(torch.bfloat16) for r in (4, 8, 16, 32)}
    reference = heads.native({r: v.float() for r, v in x.items()})
    with torch.autocast("cpu", dtype=torch.bfloat16):
        official = heads.native(x)
        heads.spec.head_precision = "autocast"
        autocast = heads.native(x)
    assert all(o.dtype == torch.float32 for o in official) and all(a.dtype == torch.bfloat16 for a in autocast)
    for o, r in zip(official, reference):
        torch.testing.assert_close(o, r, rtol=0, atol=0)
    with pytest.raises(InputError, match="head_precision"):
        HSRSpec(head_precision="fp16")


def test_extractor_final_norm_defaults_to_the_official_choice_per_extractor():
    """load_fe.py: DINO's get_intermediate_layers normalises every block output, its DeiT wrapper does not."""
    assert ExtractorSpec(name="vit_dino").final_norm is True
    assert ExtractorSpec(name="vit_random").final_norm is True
    assert ExtractorSpec(name="deit").final_norm is False
    assert ExtractorSpec(name="deit", final_norm=True).final_norm is True
    assert ExtractorSpec(name="resnet50", final_norm=True).final_norm is None   # no LayerNorm to apply
    torch.manual_seed(0)
    ext = FeatureExtractor(ExtractorSpec(name="deit", weights="random", arch="vit_tiny_patch16_224", input_size=32))
    img = torch.rand(1, 3, 32, 32) * 2 - 1
    m = ext.model
    x = m.norm_pre(m._pos_embed(m.patch_embed(ext.preprocess(img))))
    raw = []
    for blk in m.blocks:
        x = blk(x)
        raw.append(x[:, m.num_prefix_tokens:])
    feats = ext(img)
    for level, block in enumerate((12, 9, 6, 3)):
        torch.testing.assert_close(feats[level], raw[block - 1].transpose(1, 2).reshape(1, -1, 2, 2))


def test_extractor_precision_float32_inside_autocast():
    torch.manual_seed(0)
    spec = ExtractorSpec(name="vit_random", arch="vit_tiny_patch16_224", input_size=32)
    ext = FeatureExtractor(spec)
    img = torch.rand(1, 3, 32, 32) * 2 - 1
    reference = ext(img)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        official = ext(img)
        ext.spec.precision = "autocast"
        autocast = ext(img)
    for o, a, r in zip(official, autocast, reference):   # (timm's residual stream stays float32 either way)
        assert torch.equal(o, r) and not torch.equal(a, r)
    with pytest.raises(InputError, match="precision"):
        ExtractorSpec(precision="bf16")


def test_clip_mean_is_the_official_constant():
    assert CLIP_MEAN == (0.48145466, 0.4578275, 0.40821073)   # load_fe.py images_mean (with ImageNet std)


def test_schema_lists_the_new_settings():
    from pathlib import Path

    import yaml

    from lead_hsr.gan import extractors, hsr
    schema = yaml.safe_load((Path(__file__).parents[2] / "config" / "schema.yaml").read_text())
    props = schema["$defs"]["hsr_options"]["properties"]
    assert props["resize_to"]["enum"] == list(hsr.RESIZE_TARGETS)
    assert props["head_precision"]["enum"] == list(hsr.HEAD_PRECISIONS)
    assert props["extractor_precision"]["enum"] == list(extractors.PRECISIONS)
    assert "extractor_final_norm" in props
