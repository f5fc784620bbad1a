import numpy as np
import pytest
import torch

from lead_hsr.metrics import als


def _path_logits(pairs, steps, bump):
    """Logits a + b t + bump_j t (1 - t) for random a, b per pair/attribute: deviation = bump_j t (1 - t)."""
    rng = np.random.default_rng(0)
    t = np.linspace(0, 1, steps + 1)[None, :, None]
    a = rng.normal(size=(pairs, 1, len(bump)))
    b = rng.normal(size=(pairs, 1, len(bump)))
    return a + b * t + np.asarray(bump)[None, None] * t * (1 - t)


def test_linear_paths_score_zero():
    result = als.als_from_logits(_path_logits(5, 10, [0.0, 0.0, 0.0]), ["a", "b", "c"])
    assert result.als == pytest.approx(0, abs=1e-20)
    assert set(result.per_attribute) == {"a", "b", "c"}


def test_quadratic_bump_matches_the_closed_form():
    steps, bump = 8, [1.0, 3.0]
    result = als.als_from_logits(_path_logits(4, steps, bump))
    n = steps  # sum_{k=1..N} (k/N)^2 (1 - k/N)^2 = (N^2 S2 - 2 N S3 + S4) / N^4, Faulhaber sums S_p = sum k^p
    s2 = n * (n + 1) * (2 * n + 1) / 6
    s3 = (n * (n + 1) / 2) ** 2
    s4 = n * (n + 1) * (2 * n + 1) * (3 * n**2 + 3 * n - 1) / 30
    per_unit_bump = (n**2 * s2 - 2 * n * s3 + s4) / n**4 / n
    assert result.per_attribute["0"] == pytest.approx(per_unit_bump, rel=1e-12)
    assert result.per_attribute["1"] == pytest.approx(9 * per_unit_bump, rel=1e-12)
    assert result.als == pytest.approx(5 * per_unit_bump, rel=1e-12)
    t = np.linspace(0, 1, steps + 1)
    np.testing.assert_allclose(result.curve, 5 * (t * (1 - t)) ** 2, atol=1e-12)  # mean over attributes
    np.testing.assert_allclose(result.curve_per_attribute["1"], 9 * (t * (1 - t)) ** 2, atol=1e-12)


def test_many_steps_approach_the_integral():
    result = als.als_from_logits(_path_logits(2, 2000, [2.0]))
    assert result.als == pytest.approx(4 / 30, rel=1e-3)  # bump^2 * integral of t^2 (1 - t)^2 = 1/30


def test_standardised_variant_is_scale_free_per_attribute():
    logits = _path_logits(6, 5, [1.0, 2.0])
    scaled = logits * np.array([10.0, 1.0])
    raw, raw_scaled = als.als_from_logits(logits), als.als_from_logits(scaled)
    assert raw_scaled.per_attribute["0"] == pytest.approx(100 * raw.per_attribute["0"])
    std, std_scaled = (als.als_from_logits(x, standardise=True) for x in (logits, scaled))
    assert std_scaled.per_attribute == pytest.approx(std.per_attribute)
    assert std.record["standardised"] and not raw.record["standardised"]
    z = als.standardise_logits(logits)
    assert np.allclose(z.reshape(-1, 2).mean(0), 0) and np.allclose(z.reshape(-1, 2).std(0), 1)


class LinearClassifier(torch.nn.Module):
    attributes = ("p", "q")

    def __init__(self, pixels):
        super().__init__()
        self.weight = torch.randn(pixels, 2, generator=torch.Generator().manual_seed(5))

    def forward(self, images):
        return images.flatten(1) @ self.weight


def test_generator_paths_linear_vs_curved(toy_generator):
    linear_G, curved_G = toy_generator(), toy_generator(nonlinear=True)
    classifier = LinearClassifier(3 * 4 * 4)
    straight = als.als_for_generator(linear_G, classifier, num_pairs=6, num_steps=6, batch_size=5)
    curved = als.als_for_generator(curved_G, classifier, num_pairs=6, num_steps=6, batch_size=5)
    assert straight.als < 1e-8  # linear G, linear C: logits are exactly linear in t (up to float32)
    assert curved.als > 1e-2
    assert set(straight.per_attribute) == {"p", "q"} and straight.record["noise_mode"] == "const"


def test_interpolation_logits_hit_the_endpoints(toy_generator):
    G = toy_generator(nonlinear=True)
    classifier = LinearClassifier(3 * 4 * 4)
    logits = als.interpolation_logits(G, classifier, num_pairs=3, num_steps=4, seed=2, batch_size=4)
    w0, w1 = als.interpolation_latents(G, 3, 2, "cpu")
    with torch.no_grad():
        assert np.allclose(logits[:, 0], classifier(G.synthesis(w0)).numpy(), atol=1e-5)
        assert np.allclose(logits[:, -1], classifier(G.synthesis(w1)).numpy(), atol=1e-5)
