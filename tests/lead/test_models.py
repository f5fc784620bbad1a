"""Shapes, dims and model-level checks for backbones, hypercolumns, FPN and NMF."""

import pytest
import torch

from lead_hsr.errors import InputError
from lead_hsr.lead.backbones import STAGE_DIMS, build_backbone, recompute_batchnorm_stats
from lead_hsr.lead.fpn import DenseNet
from lead_hsr.lead.hypercolumns import hypercolumns, normalize_blocks
from lead_hsr.lead.nmf import NMFProjector, fit_nmf, nmf_codes

torch.set_num_threads(1)


def test_stage_dims_match_torchvision_and_hypercolumn_sizes():
    # DESIGN §5: 2048+1024+512+256 = 3840 for resnet50; 960 for resnet18
    assert sum(STAGE_DIMS["resnet50"]) == 3840 and sum(STAGE_DIMS["resnet18"]) == 960
    net = build_backbone("resnet18").eval()
    stages = net(torch.randn(2, 3, 64, 64))
    assert [s.shape[1] for s in stages] == [64, 128, 256, 512]
    assert [s.shape[-1] for s in stages] == [16, 8, 4, 2]  # strides 4..32
    hyper = hypercolumns(stages, 24)
    assert hyper.shape == (2, 960, 24, 24)
    # layer4 comes first: its block equals the bilinear upsampling of layer4 alone
    up4 = torch.nn.functional.interpolate(stages[3], size=(24, 24), mode="bilinear", align_corners=False)
    assert torch.equal(hyper[:, :512], up4)


def test_resnet50_hypercolumn_is_3840():
    net = build_backbone("resnet50").eval()
    with torch.no_grad():
        assert hypercolumns(net(torch.randn(1, 3, 32, 32)), 8).shape[1] == 3840


def test_layer_normalisation_gives_unit_blocks():
    feat = torch.rand(2, 10, 3, 3) + 0.1
    out = normalize_blocks(feat, [6, 4])
    assert torch.allclose(out[:, :6].norm(dim=1), torch.ones(2, 3, 3))
    assert torch.allclose(out[:, 6:].norm(dim=1), torch.ones(2, 3, 3))
    stages = [torch.rand(1, 4, 8, 8), torch.rand(1, 6, 4, 4)]
    both = hypercolumns(stages, 8, "layer+vector")
    assert torch.allclose(both.norm(dim=1), torch.ones(1, 8, 8), atol=1e-6)


def test_bad_arch_and_mismatched_weights_raise_input_error():
    with pytest.raises(InputError, match="resnet50"):
        build_backbone("vgg16")
    sd = build_backbone("resnet18").state_dict()
    with pytest.raises(InputError, match="arch"):
        build_backbone("resnet50", sd)
    loaded = build_backbone("resnet18", sd)
    assert torch.equal(loaded.conv1.weight, sd["conv1.weight"])


def test_recompute_batchnorm_stats_equals_data_mean():
    net = torch.nn.Sequential(torch.nn.BatchNorm2d(3))
    batches = [torch.randn(4, 3, 5, 5) + 2.0 for _ in range(3)]
    recompute_batchnorm_stats(net, batches)
    expected = torch.stack([b.mean((0, 2, 3)) for b in batches]).mean(0)
    assert torch.allclose(net[0].running_mean, expected, atol=1e-5)


@pytest.mark.parametrize("dim,head", [(64, "none"), (128, "64"), (256, "256")])
def test_fpn_output_is_quarter_resolution(dim, head):
    model = DenseNet(build_backbone("resnet18"), dim=dim, head=head).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 96, 96)).shape == (2, dim, 24, 24)
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, dim, 16, 16)
        assert model(torch.randn(1, 3, 72, 72)).shape == (1, dim, 18, 18)  # not divisible by 32


def test_fpn_bad_head_raises():
    with pytest.raises(InputError, match="proj_head"):
        DenseNet(build_backbone("resnet18"), dim=64, head="128")


def test_nmf_reconstructs_low_rank_nonnegative_data():
    gen = torch.Generator().manual_seed(0)
    codes = torch.rand(300, 5, generator=gen)
    basis = torch.rand(5, 40, generator=gen)
    x = codes @ basis
    fitted = fit_nmf(x, 5, iters=500)
    rec = nmf_codes(x, fitted, iters=300) @ fitted
    rel_err = ((rec - x).norm() / x.norm()).item()
    assert rel_err < 0.05, rel_err
    # fewer components than the true rank reconstructs worse
    fitted2 = fit_nmf(x, 2, iters=500)
    assert ((nmf_codes(x, fitted2, 300) @ fitted2 - x).norm() / x.norm()).item() > rel_err
    proj = NMFProjector(fitted)
    out = proj(x.T.reshape(1, 40, 15, 20))
    assert out.shape == (1, 5, 15, 20) and (out >= 0).all()


def test_layer_normalised_hypercolumns_equal_normalize_blocks_of_the_concatenation():
    stages = [torch.rand(2, 4, 8, 8), torch.rand(2, 6, 4, 4), torch.rand(2, 3, 2, 2)]
    plain = hypercolumns(stages, 8, "none")
    assert torch.allclose(hypercolumns(stages, 8, "layer"), normalize_blocks(plain, [3, 6, 4]), atol=1e-6)
