"""Generator/discriminator: exact paper256 parameter counts, shapes, exposed features, truncation, mbstd."""
import pytest
import torch

from lead_hsr.errors import InputError
from lead_hsr.gan.networks import (PRESETS, build_networks, count_parameters, get_preset, minibatch_std)

# Reference counts (StyleGAN2-ADA paper256 config, DESIGN section 6).
PAPER256_G, PAPER256_MAPPING, PAPER256_SYNTHESIS, PAPER256_D = 24_767_458, 2_101_248, 22_666_210, 24_001_089


def test_paper256_parameter_counts_are_exact():
    G, D = build_networks("paper256", device="meta")
    assert count_parameters(G.mapping) == PAPER256_MAPPING
    assert count_parameters(G.synthesis) == PAPER256_SYNTHESIS
    assert count_parameters(G) == PAPER256_G
    assert count_parameters(D) == PAPER256_D


def test_paper256_widths_and_num_ws():
    G, _ = build_networks("paper256", device="meta")
    assert G.synthesis.channels == {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64}
    assert G.num_ws == 14
    assert PRESETS["paper256"]["channel_base"] == 16384 and PRESETS["paper256"]["channel_max"] == 512


@pytest.fixture(scope="module")
def demo():
    torch.manual_seed(0)
    return build_networks("demo")


def test_demo_shapes_features_and_intermediate_rgb(demo):
    G, D = demo
    z = torch.randn(4, G.z_dim)
    img, feats, rgbs = G(z, return_features=True)
    assert img.shape == (4, 3, 32, 32)
    assert sorted(feats) == [4, 8, 16, 32] and sorted(rgbs) == [4, 8, 16, 32]
    for r in feats:
        assert feats[r].shape == (4, G.synthesis.channels[r], r, r)
        assert rgbs[r].shape == (4, 3, r, r)
    torch.testing.assert_close(rgbs[32], img)
    assert D(img).shape == (4, 1)


def test_const_noise_is_deterministic_and_random_noise_is_not(demo):
    G, _ = demo
    with torch.no_grad():
        for layer in G.modules():
            if hasattr(layer, "noise_strength"):
                layer.noise_strength.fill_(0.5)
        z = torch.randn(2, G.z_dim)
        torch.testing.assert_close(G(z, noise_mode="const"), G(z, noise_mode="const"))
        assert not torch.allclose(G(z, noise_mode="random"), G(z, noise_mode="random"))
        for layer in G.modules():
            if hasattr(layer, "noise_strength"):
                layer.noise_strength.fill_(0.0)


def test_truncation_psi_zero_gives_w_avg(demo):
    G, _ = demo
    G.mapping.w_avg.copy_(torch.randn(G.w_dim))
    ws = G.mapping(torch.randn(3, G.z_dim), truncation_psi=0.0)
    torch.testing.assert_close(ws, G.mapping.w_avg.expand_as(ws))


def test_w_avg_tracks_the_mean_with_beta(demo):
    G, _ = demo
    G.mapping.w_avg.zero_()
    z = torch.randn(5, G.z_dim)
    ws = G.mapping(z, update_w_avg=True)
    torch.testing.assert_close(G.mapping.w_avg, (1 - 0.995) * ws[:, 0].mean(0))


def test_minibatch_std_matches_manual_groups():
    torch.manual_seed(1)
    x = torch.randn(8, 3, 2, 2)
    y = minibatch_std(x, group_size=4)
    assert y.shape == (8, 4, 2, 2)
    # sample n belongs to group n % (8 // 4); stats over samples {j, j+2, j+4, j+6}
    for j in range(2):
        members = x[j::2]
        expected = (members.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
        torch.testing.assert_close(y[j::2, 3], expected.expand(4, 2, 2))


def test_bad_preset_raises_input_error():
    with pytest.raises(InputError, match="unknown GAN preset"):
        get_preset("paper1024")
    with pytest.raises(InputError, match="power of two"):
        get_preset(dict(resolution=48))
