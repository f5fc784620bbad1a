"""Chapter-4 figures: sample selection, reproducible PPL samples, intermediate RGBs, Mahalanobis ranking, and each
figure function on a tiny random generator producing a PNG of the layout it promises."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gan"))
import tiny_gan_run as tiny  # noqa: E402

from lead_hsr.gan.networks import Discriminator, Generator  # noqa: E402
from lead_hsr.gan.training import resolve_options  # noqa: E402
from lead_hsr.metrics import als, gan_eval, linearity_figures, mahalanobis, ppl  # noqa: E402
from lead_hsr.metrics.attributes import AttributeClassifier  # noqa: E402
from lead_hsr.metrics.features import make_extractor  # noqa: E402
from lead_hsr.report import gan_figures as gf  # noqa: E402

DPI = 100


def _generator(seed=0, noise=0.3):
    torch.manual_seed(seed)
    G = Generator(**tiny.TINY_PRESET).eval().requires_grad_(False)
    with torch.no_grad():  # fresh StyleGAN layers ignore their noise (strength 0): make noise matter
        for name, parameter in G.named_parameters():
            if name.endswith("noise_strength"):
                parameter.fill_(noise)
    return G


def _mean_abs(img0, img1):
    return (img0 - img1).abs().flatten(1).mean(1)


def _png_size(path):
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


def _assert_size(path, width_inches, height_inches):
    width, height = _png_size(path)
    assert abs(width - width_inches * DPI) <= 1.5 and abs(height - height_inches * DPI) <= 1.5, \
        (width, height, width_inches * DPI, height_inches * DPI)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two evaluated tiny runs (network.pt, metrics.json with the PPL record, ppl_distances.npy)."""
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for label, seed in (("SG2-ADA", 0), ("SG2-ADA + HSR", 1)):
        G = _generator(seed)
        run = root / f"seed{seed}"
        run.mkdir()
        torch.save({"G_ema": G.state_dict(), "G": G.state_dict(),
                    "D": Discriminator(**tiny.TINY_PRESET).state_dict(), "preset": tiny.TINY_PRESET},
                   run / "network.pt")
        result = ppl.ppl2_wend(G, _mean_abs, num_samples=40, batch_size=4, seed=7)
        (run / "metrics.json").write_text(json.dumps({"ppl": result.ppl, "records": {"ppl": result.record}}))
        np.save(run / "ppl_distances.npy", result.distances)
        out[label] = {"network": str(run / "network.pt"), "metrics": str(run / "metrics.json"),
                      "distances": str(run / "ppl_distances.npy")}
    return out


@pytest.fixture(scope="module")
def classifier_path(tmp_path_factory):
    torch.manual_seed(3)
    model = AttributeClassifier(image_size=16, widths=(4, 8))
    path = tmp_path_factory.mktemp("classifier") / "classifier.pt"
    torch.save({"state_dict": model.state_dict(), "summary": {"options": {"image_size": 16, "widths": [4, 8]}}},
               path)
    return path


# ---- selection and reproducibility ----
def test_percentile_bands_select_the_smallest_and_largest_tenth():
    rng = np.random.default_rng(0)
    distances = rng.permutation(100).astype(float) * 0.5 + 3  # distinct values, shuffled indices
    smallest, largest = np.argsort(distances)[:10], np.argsort(distances)[::-1][:10]
    assert ppl.percentile_band(distances, "top", 0.1).tolist() == smallest.tolist()  # smallest first
    assert ppl.percentile_band(distances, "bottom", 0.1).tolist() == largest.tolist()  # largest first
    assert len(ppl.percentile_band(distances, "bottom", 0.25)) == 25
    chosen = ppl.sample_band(distances, "bottom", 4, 0.1, seed=5)
    assert len(chosen) == 4 and set(chosen) <= set(largest)
    assert np.all(np.diff(distances[chosen]) < 0)  # kept in band order: largest first
    assert ppl.sample_band(distances, "bottom", 4, 0.1, seed=5).tolist() == chosen.tolist()
    assert {tuple(ppl.sample_band(distances, "top", 4, 0.1, seed=s)) for s in range(6)} != {tuple(chosen)}
    assert len(ppl.sample_band(distances, "top", 50, 0.1)) == 10  # never more than the band holds
    with pytest.raises(ValueError):
        ppl.percentile_band(distances, "middle")


def test_ppl_samples_are_redrawn_with_their_own_latents_and_noise():
    G = _generator()
    result = ppl.ppl2_wend(G, _mean_abs, num_samples=12, epsilon=1e-2, batch_size=4, seed=3)
    noise = ppl.ppl_sample_noise(G, [0, 6, 11], seed=3, batch_size=4)
    for index in (0, 6, 11):
        saved = ppl._set_constant_noise(G, noise[index])
        try:
            again = ppl.path_distances(G, _mean_abs, range(index, index + 1), 3, 1e-2, "cpu")[0]
        finally:
            ppl._restore(G, saved)
        assert again == pytest.approx(result.distances[index], rel=1e-4)  # batch of 1 vs 4: float rounding
    saved = ppl._set_constant_noise(G, noise[0])  # another batch's noise: not the same sample
    wrong = ppl.path_distances(G, _mean_abs, range(6, 7), 3, 1e-2, "cpu")[0]
    ppl._restore(G, saved)
    assert wrong != pytest.approx(result.distances[6], rel=1e-3)
    assert not torch.equal(noise[0]["synthesis.blocks.0.convs.0.noise_const"],
                           noise[6]["synthesis.blocks.0.convs.0.noise_const"])  # different batches, different noise
    # the drawn path starts at the sample's own image G(w0) under that noise, and ends at G(w1)
    paths = ppl.ppl_path_images(G, [6], 3, 4, [0.0, 0.5, 1.0])
    assert paths.shape == (1, 3, 16, 16, 3) and paths.dtype == np.uint8
    z = ppl.ppl_latents(6, 3, G.z_dim)
    ws = G.mapping(z, torch.zeros(2, 0))
    saved = ppl._set_constant_noise(G, noise[6])
    expected = ppl.nhwc_uint8(G.synthesis(ws, noise_mode="const"))
    ppl._restore(G, saved)
    assert np.abs(paths[0, [0, 2]].astype(int) - expected.astype(int)).max() <= 1
    assert np.abs(paths[0, 0].astype(int) - ppl.nhwc_uint8(G.synthesis(ws[:1], noise_mode="const"))[0]).max() > 1


def test_intermediate_rgbs_one_image_per_resolution():
    G = _generator()
    z = torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(0))
    rgbs = gan_eval.intermediate_rgbs(G, z)
    assert list(rgbs) == [4, 8, 16]
    for resolution, images in rgbs.items():
        assert images.shape == (3, resolution, resolution, 3) and images.dtype == np.uint8
    final = ppl.nhwc_uint8(G.synthesis(G.mapping(z, torch.zeros(3, 0)), noise_mode="const"))
    assert np.array_equal(rgbs[16], final)  # the last running RGB image is the output
    assert not np.array_equal(rgbs[4][0], rgbs[4][1])  # per sample, not a shared constant


def test_mahalanobis_ranks_by_covariance_not_euclidean_distance():
    rng = np.random.default_rng(1)
    scales = np.array([4.0, 4.0, 1.0, 1.0])
    real = rng.standard_normal((2000, 4)) * scales
    generated = rng.standard_normal((50, 4)) * scales * 0.5
    generated[7] = [10.0, 0, 0, 0]  # farthest in Euclidean terms, but 2.5 sd along a wide axis
    generated[31] = [0, 0, 6.0, 0]  # 6 sd along a narrow axis
    generated[12] = [0, 0, 0, -4.5]  # 4.5 sd
    assert np.argmax(np.linalg.norm(generated, axis=1)) == 7
    for method in mahalanobis.COVARIANCE_METHODS:
        distances = mahalanobis.mahalanobis_distances(generated, *mahalanobis.real_moments(real, method))
        assert mahalanobis.worst_k(distances, 3).tolist()[:2] == [31, 12], method


def test_worst_images_redrawn_are_the_ranked_ones():
    G = _generator()
    extractor = make_extractor("random-cnn", seed=2)
    real = extractor.extract_nhwc(mahalanobis.redraw(G, torch.randn(60, G.z_dim).numpy()))
    worst = mahalanobis.worst_generated(G, real, extractor, num_gen=30, k=4, batch_size=8, seed=4,
                                        noise_mode="const")
    redrawn = extractor(torch.from_numpy(mahalanobis.redraw(G, worst["z"])).permute(0, 3, 1, 2)).numpy()
    again = mahalanobis.mahalanobis_distances(redrawn, *mahalanobis.real_moments(real))
    assert np.allclose(again, worst["distances"][worst["indices"]], rtol=1e-4)
    assert np.all(np.diff(again) <= 1e-6)  # farthest first


def test_transition_pair_is_the_largest_endpoint_change_over_models():
    changes = np.array([[0.1, -2.0, 0.5, 1.0], [0.2, 0.3, -1.9, 1.0]])  # |.| summed: 0.3, 2.3, 2.4, 2.0
    assert als.select_transition_pair(changes) == 2
    assert als.select_transition_pair(np.array([[3.0, 1.5], [0.0, 1.6]])) == 1  # both models, not one
    assert als.select_transition_pair(np.array([[0.0, 1.0, -3.0]])) == 2  # sign does not matter


def test_attribute_direction_finds_the_linear_attribute():
    G = _generator()

    class Brightness(torch.nn.Module):  # one "attribute": mean brightness of the image
        attributes = ("smile",)

        def forward(self, images):
            return images.mean(dim=(1, 2, 3))[:, None] * 10

    direction, std = als.attribute_direction(G, Brightness(), "smile", 200, seed=0, device="cpu")
    assert direction.shape == (G.w_dim,) and abs(float(direction.norm()) - 1) < 1e-5 and std > 0
    z = torch.randn(8, G.z_dim, generator=torch.Generator().manual_seed(9))
    w0 = G.mapping(z, torch.zeros(8, 0))
    scores = [als.endpoint_logits(G, Brightness(), w0 + a * std * direction)[:, 0] for a in (-2, 0, 2)]
    assert np.all(scores[0] < scores[1]) and np.all(scores[1] < scores[2])  # moving along d raises the score


# ---- every figure function makes a PNG of its layout ----
def test_ppl_interpolation_and_worst_figures(runs, tmp_path):
    options = {"pairs": 2, "steps": 5, "fraction": 0.1, "seed": 0, "device": "cpu"}
    path = ppl.ppl_interpolation_figure(runs, tmp_path / "fig_4.5.png", "bottom", options)
    _assert_size(path, gf.LABEL_INCHES + 5 * 0.9, 2 * gf.TITLE_INCHES + 4 * (0.9 + 0.16))
    path = ppl.ppl_interpolation_figure(runs, tmp_path / "fig_4.4.png", "top", dict(options, pairs=3))
    _assert_size(path, gf.LABEL_INCHES + 5 * 0.9, 2 * gf.TITLE_INCHES + 6 * (0.9 + 0.16))
    path = ppl.ppl_worst_figure(runs, tmp_path / "fig_4.7.png", {"count": 4, "ncols": 3, "device": "cpu"})
    _assert_size(path, 2 * 3 * 0.6 + 0.2 + 0.2, 2 * gf.TITLE_INCHES + 2 * 0.6)  # 4 of the 40 samples: 2 rows


def test_mahalanobis_figure(runs, tmp_path):
    store = tiny.make_store(tmp_path / "store", n=40)
    networks = {label: paths["network"] for label, paths in runs.items()}
    options = {"extractor": "random-cnn", "num_gen": 24, "k": 6, "ncols": 3, "device": "cpu", "seed": 0}
    path = mahalanobis.mahalanobis_worst_figure({"ffhq": {"store": store, "runs": networks},
                                                 "church": {"store": store, "runs": networks}},
                                                tmp_path / "fig_4.6.png", options, tmp_path / "cache", None)
    _assert_size(path, 2 * 3 * 0.6 + 0.2 + 0.2, 2 * (2 * gf.TITLE_INCHES + 2 * 0.6))
    assert list((tmp_path / "cache").glob("store~random-cnn*.npy"))  # real features cached like the FID's


def test_intermediate_rgb_figure(runs, tmp_path):
    networks = {label: paths["network"] for label, paths in runs.items()}
    path = gan_eval.intermediate_rgb_figure(networks, tmp_path / "fig_4.8.png", {"samples": 2, "device": "cpu"})
    _assert_size(path, gf.LABEL_INCHES + 3 * 0.9, 2 * gf.TITLE_INCHES + 4 * (0.9 + 0.16))  # 3 resolutions


@pytest.mark.parametrize("mode", ["interpolation", "edit"])
def test_linearity_figures(runs, classifier_path, tmp_path, mode):
    networks = {label: paths["network"] for label, paths in runs.items()}
    options = {"attributes": ["smile", "gender", "age"], "num_steps": 4, "candidates": 6, "direction_samples": 30,
               "device": "cpu", "seed": 1}
    path = linearity_figures.linearity_figure(networks, classifier_path, tmp_path / f"{mode}.png", options, mode)
    _assert_size(path, gf.PLOT_INCHES + 0.5 + 5 * 0.8 + 0.1, 6 * 1.5)  # 3 attributes x 2 runs, 5 steps


def test_fig_4_11_from_a_folder_of_photos(runs, classifier_path, tmp_path):
    """hsr.figures.edits.source: a folder: each photo is projected by each run and edited from its projection."""
    from lead_hsr.data.layouts import image_files
    from lead_hsr.errors import InputError
    from lead_hsr.gan.generate import synthesise
    from lead_hsr.gan.training import load_generator
    from lead_hsr.metrics import edit

    networks = {label: paths["network"] for label, paths in runs.items()}
    folder = tmp_path / "photos"
    (folder / ".thumbs").mkdir(parents=True)
    G = load_generator(networks["SG2-ADA"])
    for name, seed in (("alice.png", 1), ("bob.png", 2)):
        image = synthesise(G, G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(seed))))[0]
        Image.fromarray(np.repeat(np.repeat(image, 3, 0), 3, 1)).save(folder / name)  # larger than G: resized
    (folder / ".thumbs" / "alice.png").write_bytes(b"not read: hidden")
    (folder / "notes.txt").write_text("not an image")
    photos = image_files(folder, "hsr.figures.edits.source")
    assert [p.name for p in photos] == ["alice.png", "bob.png"]
    options = {"attributes": ["smile"], "num_steps": 4, "candidates": 6, "direction_samples": 30, "device": "cpu",
               "seed": 1, "source": str(folder),
               "projection": {"num_steps": 5, "w_avg_samples": 50, "lpips": "lpips-vgg", "standin": "random"}}
    path = linearity_figures.linearity_figure(networks, classifier_path, tmp_path / "fig_4.11.png", options, "edit", photos)
    _assert_size(path, gf.PLOT_INCHES + 0.5 + 5 * 0.8 + 0.1, 4 * 1.5)  # 2 photos x 1 attribute x 2 runs, 5 steps

    classifier = als_classifier(classifier_path)
    models = {label: load_generator(path) for label, path in networks.items()}
    rows = edit.photo_edit_rows(models, classifier, photos, {**options, "attributes": ["smile", "age"]}, "cpu")
    assert [row["label"].split(":")[0] for row in rows] == [
        f"{run}, {photo}" for photo in ("alice.png", "bob.png") for _ in ("smile", "age") for run in networks]
    # both edits of one photo by one run start from the same projection; the two photos' projections differ
    np.testing.assert_array_equal(rows[0]["images"][0], rows[2]["images"][0])
    assert not np.array_equal(rows[0]["images"][0], rows[4]["images"][0])

    (folder / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(InputError, match="broken.jpg"):
        linearity_figures.linearity_figure(networks, classifier_path, tmp_path / "bad.png", options, "edit",
                             image_files(folder, "hsr.figures.edits.source"))
    with pytest.raises(InputError, match="hsr.figures.edits.projection: unknown keys \\['steps'\\]"):
        edit.projection_setup({"projection": {"steps": 3}}, "cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty: no image files found"):
        image_files(tmp_path / "empty", "hsr.figures.edits.source")
    assert not (tmp_path / "bad.png").exists()


def als_classifier(path):
    from lead_hsr.metrics.attributes import load_attribute_classifier

    return load_attribute_classifier(path, "cpu")


def test_hsr_overview_from_run_options(tmp_path):
    options = resolve_options(tiny.tiny_options(hsr=dict(tiny.TINY_HSR, levels="low")))
    overview = gan_eval.hsr_overview(json.loads(json.dumps(options, default=str)))
    assert [b["resolution"] for b in overview["generator"]] == [4, 8, 16]
    assert [b["channels"] for b in overview["generator"]] == [16, 16, 8]  # min(128 / r, 16)
    # 'low' = levels 3 and 4 at the configured resolutions [4, 4, 8, 16] -> G 8 and 16; vit_tiny is 192 wide
    assert [(h["level"], h["resolution"], h["in"], h["hidden"], h["out"]) for h in overview["heads"]] == \
        [(3, 8, 16, 16, 192), (4, 16, 8, 16, 192)]
    assert [lv["tap"] for lv in overview["extractor"]["levels"]] == ["block 12", "block 9", "block 6", "block 3"]
    assert overview["grid"] == 2  # 32 px input / 16 px patches
    path = tmp_path / "options.json"
    path.write_text(json.dumps(options, default=str))
    assert _png_size(gan_eval.hsr_overview_figure(path, tmp_path / "fig_4.3.png"))[0] > 1000
    with pytest.raises(ValueError):
        gan_eval.hsr_overview(resolve_options(tiny.tiny_options()))  # a baseline has no HSR to draw


def test_hsr_panel_figure(runs, classifier_path, tmp_path):
    networks = {label: paths["network"] for label, paths in runs.items()}
    options = {"interpolation": {"pairs": 1, "steps": 6, "device": "cpu"},
               "edits": {"attributes": ["age"], "num_steps": 5, "candidates": 4, "direction_samples": 30,
                         "device": "cpu"}}
    path = gan_eval.hsr_panel_figure(runs, networks, classifier_path, tmp_path / "fig_4.1.png", options)
    # 3 sections (2 runs' PPL pairs, then the edits of both runs), 6 columns
    _assert_size(path, gf.LABEL_INCHES + 6 * 0.9, 3 * gf.TITLE_INCHES + 4 * (0.9 + 0.16))
