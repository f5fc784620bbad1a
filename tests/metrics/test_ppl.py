import numpy as np
import pytest
import torch

from lead_hsr.errors import InputError
from lead_hsr.metrics import ppl


def squared_l2(img0, img1):
    """Stand-in distance with a closed form for a linear generator."""
    return (img0 - img1).double().square().flatten(1).sum(1)


def _closed_form(G, num, seed):
    """Linear G: img(w_eps) - img(w0) = eps * A (w1 - w0), so distance / eps^2 = ||A M (z1 - z0)||^2."""
    values = []
    for index in range(num):
        z0, z1 = ppl.ppl_latents(index, seed, G.z_dim).double()
        values.append(float((G.A.double() @ G.M.double() @ (z1 - z0)).square().sum()))
    return np.array(values)


def test_linear_generator_path_length_has_its_closed_form(toy_generator):
    G = toy_generator()
    result = ppl.ppl2_wend(G, squared_l2, num_samples=40, batch_size=7, seed=3)
    expected = _closed_form(G, 40, 3)
    # float32 images and a 1e-4 step: ~1e-3 relative rounding; a different noise per endpoint would be ~1e6 off
    np.testing.assert_allclose(result.distances, expected, rtol=5e-3)
    assert result.ppl == pytest.approx(expected[result.kept].mean(), rel=5e-3)
    assert result.record["epsilon"] == ppl.PPL_EPSILON and result.record["space"] == "w"


def test_epsilon_is_divided_out(toy_generator):
    G = toy_generator()
    small = ppl.ppl2_wend(G, squared_l2, num_samples=10, batch_size=10, epsilon=1e-4)
    large = ppl.ppl2_wend(G, squared_l2, num_samples=10, batch_size=10, epsilon=1e-2)
    np.testing.assert_allclose(small.distances, large.distances, rtol=5e-3)  # linear G: scale-free


def test_per_sample_latents_do_not_depend_on_batching(toy_generator):
    G = toy_generator(nonlinear=True, noise_strength=0.0)
    a = ppl.ppl2_wend(G, squared_l2, num_samples=12, batch_size=5, seed=1).distances
    b = ppl.ppl2_wend(G, squared_l2, num_samples=12, batch_size=12, seed=1).distances
    np.testing.assert_allclose(a, b, rtol=5e-3)  # float32 rounding at a 1e-4 step


def test_constant_noise_is_restored_after_the_metric(toy_generator):
    G = toy_generator()
    before = G.layer_noise_const.clone()
    ppl.ppl2_wend(G, squared_l2, num_samples=4, batch_size=2)
    assert torch.equal(G.layer_noise_const, before)


def test_percentile_filter_keeps_the_1st_to_99th_percentile():
    distances = np.concatenate([np.arange(1, 199, dtype=float), [1e9, -1e9]])
    mean, kept, lo, hi = ppl.filtered_mean(distances)
    ordered = np.sort(distances)
    n = len(distances)
    assert lo == ordered[int(np.floor(0.01 * (n - 1)))]  # 'lower' method: index floor(p (n - 1))
    assert hi == ordered[int(np.ceil(0.99 * (n - 1)))]  # 'higher' method: index ceil(p (n - 1))
    assert not kept[-1] and not kept[-2]  # the two outliers are dropped
    assert mean == pytest.approx(distances[(distances >= lo) & (distances <= hi)].mean())
    assert ppl.PPL_PERCENTILES == (1, 99) and ppl.PPL_NUM_SAMPLES == 50_000


def test_lpips_needs_the_trunk_weight_or_an_explicit_standin(tmp_path):
    with pytest.raises(InputError, match="vgg16-397923af.pth"):
        ppl.LPIPSDistance(cache_dir=tmp_path)
    distance = ppl.LPIPSDistance(standin="random")
    assert distance.record["source"] == "standin:random"
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    y = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.allclose(distance(x, x), torch.zeros(2), atol=1e-6)
    assert (distance(x, y) > 0).all()


def test_lpips_loads_the_resolved_vgg16_trunk(tmp_path):
    import torchvision

    features = torchvision.models.vgg16().features.state_dict()
    torch.save({f"features.{key}": value for key, value in features.items()}, tmp_path / "vgg16-397923af.pth")
    distance = ppl.LPIPSDistance(cache_dir=tmp_path)
    assert distance.record["source"] == "pretrained"
    assert torch.equal(distance.model.net.slice1[0].weight, features["0.weight"])
    assert torch.equal(getattr(distance.model.net.slice5, "28").bias, features["28.bias"])


def test_ppl_distribution_figure_is_written(tmp_path):
    from lead_hsr.metrics.ppl import ppl_distribution_figure

    rng = np.random.default_rng(0)
    files = {}
    for label in ("SG2-ADA", "SG2-ADA + HSR"):
        files[label] = tmp_path / f"{label}.npy"
        np.save(files[label], np.concatenate([rng.gamma(2.0, 1.0, 200), [1e6]]))  # one outlier, dropped
    out = tmp_path / "fig_4.2.png"
    ppl_distribution_figure(files, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5_000
