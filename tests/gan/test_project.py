"""lead_hsr.gan.project: official defaults, LPIPS features, projection of a generated image, real photo, errors."""
from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lead_hsr.errors import InputError
from lead_hsr.gan import project
from lead_hsr.gan.generate import synthesise
from lead_hsr.gan.training import load_generator
from lead_hsr.perceptual import LPIPSDistance
import sys

sys.path.insert(0, str(Path(__file__).parent))
from test_generate import save_tiny_network  # noqa: E402

OFFICIAL = Path("/tmp/ref/stylegan2-ada-pytorch/projector.py")  # read-only reference checkout, when present


def test_settings_are_projector_py_defaults():
    expected = dict(num_steps=1000, w_avg_samples=10000, initial_learning_rate=0.1, initial_noise_factor=0.05,
                    lr_rampdown_length=0.25, lr_rampup_length=0.05, noise_ramp_length=0.75,
                    regularize_noise_weight=1e5, w_plus=False)
    assert dataclasses.asdict(project.ProjectorSettings()) == expected
    assert (project.W_AVG_SEED, project.DEFAULT_SEED, project.DEFAULT_LPIPS) == (123, 303, "nvlabs-vgg16")
    if OFFICIAL.is_file():  # the same numbers read from the official signature
        function = next(node for node in ast.walk(ast.parse(OFFICIAL.read_text()))
                        if isinstance(node, ast.FunctionDef) and node.name == "project")
        official = {arg.arg: ast.literal_eval(default) for arg, default in
                    zip(function.args.kwonlyargs, function.args.kw_defaults) if default is not None}
        assert {k: official[k] for k in expected if k != "w_plus"} == {k: v for k, v in expected.items()
                                                                         if k != "w_plus"}


def test_schedule_ramps():
    s = project.ProjectorSettings(num_steps=100)
    assert project.schedule(0, s) == (0.0, 0.05)
    assert project.schedule(10, s)[0] == pytest.approx(0.1)  # after the 5% ramp-up, before the ramp-down
    assert project.schedule(99, s)[0] == pytest.approx(0.1 * (0.5 - 0.5 * np.cos(0.04 * np.pi)))
    assert project.schedule(75, s)[1] == 0.0


def test_lpips_features_give_the_lpips_value():
    distance = LPIPSDistance(standin="random")
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    by_features = (distance.features(a) - distance.features(b)).square().sum(1)
    torch.testing.assert_close(by_features, distance(a, b), rtol=1e-4, atol=1e-6)


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    return save_tiny_network(tmp_path_factory.mktemp("net") / "network.pt", seed=1, noise_strength=0.0)


def test_projection_of_a_generated_image_recovers_it(network, tmp_path):
    """Target G(w_true) (a network without noise, so only w decides the image); LPIPS (random VGG16 stand-in) must drop below half the
    start's (G(w_avg)) and below 0.04, and the pixel error must drop. The latent error is not asserted: a random
    tiny G maps other w to nearly the same image (measured on the demo networks instead, docs/use_gan.md)."""
    G = load_generator(network)
    w_true = G.mapping(torch.from_numpy(np.random.RandomState(5).randn(1, G.z_dim)).float())
    target = synthesise(G, w_true)[0]
    distance = LPIPSDistance(standin="random")
    settings = project.ProjectorSettings(num_steps=120, w_avg_samples=500)
    result = project.project(G, target, distance, settings, seed=0)
    written = project.write_projection(G, result, target, tmp_path, distance, save_video_file=False)
    record = json.loads((tmp_path / "projection.json").read_text())
    assert record["lpips_final"] < min(0.04, record["lpips_start"] / 2), record
    w_avg = project.w_statistics(G, 500)[0]
    start = synthesise(G, w_avg.expand(1, G.num_ws, -1))[0].astype(float)
    final = synthesise(project.with_noise(G, result.noise), result.w)[0].astype(float)
    assert np.square(final - target).mean() < 0.5 * np.square(start - target).mean()
    assert {p.name for p in written} == {"target.png", "proj.png", "side_by_side.png", "projected_w.npz",
                                         "projected_noise.npz", "projection.json"}
    w, noise = project.load_projection(tmp_path, G)  # what proj.png shows, re-synthesised exactly
    from PIL import Image
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "proj.png")),
                                  synthesise(project.with_noise(G, noise), w)[0])
    again = project.project(G, target, distance, settings, seed=0)
    torch.testing.assert_close(again.w_steps, result.w_steps, rtol=0, atol=0)  # deterministic per seed


def test_w_plus_and_video(network, tmp_path):
    G = load_generator(network)
    target = synthesise(G, G.mapping(torch.randn(1, G.z_dim)))[0]
    distance = LPIPSDistance(standin="random")
    settings = project.ProjectorSettings(num_steps=4, w_avg_samples=50, w_plus=True)
    result = project.project(G, target, distance, settings, seed=0)
    assert result.w_steps.shape == (4, G.num_ws, G.w_dim)
    assert not torch.equal(result.w[0, 0], result.w[0, 1])  # one w per layer
    project.write_projection(G, result, target, tmp_path, distance, save_video_file=True)
    import imageio.v2 as imageio
    assert imageio.get_reader(tmp_path / "proj.mp4").count_frames() == 4


def test_real_photo_projects_and_edits(network, tmp_path):
    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image provides the real photo")
    from PIL import Image

    photo = tmp_path / "astronaut.png"
    Image.fromarray(skimage_data.astronaut()).save(photo)  # 512 x 512: cropped and resized to 16
    code = project.main(["--network", str(network), "--target", str(photo), "--outdir", str(tmp_path / "out"),
                         "--num-steps", "3", "--w-avg-samples", "50", "--lpips", "lpips-vgg", "--standin", "random",
                         "--no-save-video", "--device", "cpu"])
    assert code == 0
    assert np.asarray(Image.open(tmp_path / "out/target.png")).shape == (16, 16, 3)
    assert json.loads((tmp_path / "out/projection.json").read_text())["lpips"]["source"] == "standin:random"


def test_bad_photo_and_wrong_network_are_named(network, tmp_path, capsys):
    photo = tmp_path / "holiday.jpg"
    photo.write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(InputError, match="holiday.jpg"):
        project.load_target(photo, 16)
    args = ["--target", str(photo), "--outdir", str(tmp_path / "out"), "--lpips", "lpips-vgg", "--standin", "random"]
    assert project.main(["--network", str(network), *args]) == 2
    assert "holiday.jpg" in capsys.readouterr().err
    landmark = tmp_path / "stage2.pt"
    torch.save({"format": 1, "kind": "fpn", "state_dict": {}}, landmark)
    assert project.main(["--network", str(landmark), *args]) == 2
    assert "'fpn' landmark model" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing half-written
