"""lead_hsr.gan.generate: per-seed determinism, official z/quantisation, grid/sweep/mixing layouts, video, errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from lead_hsr.errors import InputError
from lead_hsr.gan import generate
from lead_hsr.gan.networks import build_networks
from lead_hsr.gan.training import load_generator

TINY = dict(resolution=16, z_dim=16, w_dim=16, mapping_layers=1, channel_base=128, channel_max=16, mbstd_group=4)


def save_tiny_network(path, seed=0, noise_strength=0.5):
    torch.manual_seed(seed)
    G, D = build_networks(TINY)
    G.mapping.w_avg.normal_()  # a trained network's w_avg is not zero: truncation must move towards it
    for name, parameter in G.named_parameters():
        if name.endswith("noise_strength"):  # zero at init; trained networks use their noise
            parameter.data.fill_(noise_strength)
    torch.save({"G_ema": G.state_dict(), "G": G.state_dict(), "D": D.state_dict(), "preset": TINY}, path)
    return path


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    return save_tiny_network(tmp_path_factory.mktemp("net") / "network.pt")


def read(path):
    return np.asarray(Image.open(path).convert("RGB"))


def test_seed_images_are_the_official_draw_and_deterministic(network, tmp_path):
    G = load_generator(network)
    generate.generate_images(G, [3, 7], tmp_path / "a", truncation_psi=0.7)
    generate.generate_images(G, [7], tmp_path / "b", truncation_psi=0.7)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["seed0003.png", "seed0007.png"]
    np.testing.assert_array_equal(read(tmp_path / "a/seed0007.png"), read(tmp_path / "b/seed0007.png"))
    # generate.py: z = RandomState(seed).randn, G(z, psi) with constant noise, x * 127.5 + 128 truncated
    z = torch.from_numpy(np.random.RandomState(7).randn(1, G.z_dim)).float()
    w = G.mapping.w_avg.lerp(G.mapping(z), 0.7)
    expected = (G.synthesis(w, noise_mode="const") * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0)
    np.testing.assert_array_equal(read(tmp_path / "a/seed0007.png"), expected.numpy())
    assert not np.array_equal(read(tmp_path / "a/seed0003.png"), read(tmp_path / "a/seed0007.png"))


def test_random_noise_is_seeded_per_image(network):
    G = load_generator(network)
    ws = generate.seed_ws(G, [1, 1])
    first = generate.synthesise(G, ws, "random", seeds=[5, 6])
    again = generate.synthesise(G, ws[:1], "random", seeds=[5])
    np.testing.assert_array_equal(first[0], again[0])
    assert not np.array_equal(first[0], first[1])  # same w, other noise seed


def test_grid_sweep_and_mixing_layouts(network, tmp_path):
    G = load_generator(network)
    grid = read(generate.generate_grid(G, [0, 1, 2, 3, 4], tmp_path / "grid.png"))
    assert grid.shape == (2 * 16, 3 * 16, 3) and not grid[16:, 32:].any()  # 5 images in 3 columns, black rest
    np.testing.assert_array_equal(grid[:16, 16:32], generate.synthesise(G, generate.seed_ws(G, [1]))[0])
    sweep = read(generate.generate_truncation_sweep(G, [0, 1], [1.0, 0.0], tmp_path / "trunc.png"))
    assert sweep.shape == (32, 32, 3)
    np.testing.assert_array_equal(sweep[:16, 16:], sweep[16:, 16:])  # psi = 0: every seed gives G(w_avg)
    generate.generate_style_mixing(G, [0, 1], [5], tmp_path / "mix", styles="0-2")
    names = {p.name for p in (tmp_path / "mix").iterdir()}
    assert names == {"0-5.png", "1-5.png", "0-0.png", "1-1.png", "5-5.png", "grid.png"}
    ws = generate.seed_ws(G, [0, 5])
    mixed = ws[:1].clone()
    mixed[0, :3] = ws[1, :3]
    np.testing.assert_array_equal(read(tmp_path / "mix/0-5.png"), generate.synthesise(G, mixed)[0])
    assert read(tmp_path / "mix/grid.png").shape == (3 * 16, 2 * 16, 3)


@pytest.mark.parametrize("fmt", ["mp4", "gif"])
def test_interpolation_video_is_written_whole(network, tmp_path, fmt):
    G = load_generator(network)
    path = generate.generate_video(G, [0, 1], tmp_path / f"interpolation.{fmt}", frames_per_seed=3, fps=5)
    if fmt == "gif":
        assert Image.open(path).n_frames == 6  # 0 -> 1 -> 0, 3 frames per seed
    else:
        import imageio.v2 as imageio
        assert imageio.get_reader(path).count_frames() == 6
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_bad_inputs_are_named(network, tmp_path):
    bad = tmp_path / "photo.png"
    bad.write_bytes(b"not a network")
    with pytest.raises(InputError, match="photo.png.*network.pt.*checkpoints import"):
        load_generator(bad)
    landmark = tmp_path / "landmarks.pt"
    torch.save({"format": 1, "kind": "hypercolumn", "state_dict": {}}, landmark)
    with pytest.raises(InputError, match="landmarks.pt.*'hypercolumn' landmark model"):
        load_generator(landmark)
    with pytest.raises(InputError, match="--seeds"):
        generate.parse_range("zero-3")
    assert generate.parse_range("0-2,7") == [0, 1, 2, 7]
    assert generate.main(["images", "--network", str(bad), "--seeds", "0", "--outdir", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()


def test_failed_video_leaves_nothing(network, tmp_path, monkeypatch):
    G = load_generator(network)
    frames = generate.interpolation_frames(G, [0, 1], 2)

    def broken(*args, **kwargs):
        raise RuntimeError("encoder died")
    import imageio.v2 as imageio
    monkeypatch.setattr(imageio, "get_writer", broken)
    with pytest.raises(RuntimeError, match="encoder died"):
        generate.save_video(frames, tmp_path / "v.mp4")
    assert list(tmp_path.iterdir()) == []


def test_workflow_products_take_their_options_from_the_config_block(network, tmp_path):
    """rules/use_gan.smk: config hsr.generate -> the command line of each product, written where the rule says."""
    options = {"noise_mode": "const", "trunc": 0.7, "device": "cpu", "images": {"seeds": "3,5"},
               "grid": {"seeds": [0, 1, 2], "columns": 3}, "truncation": {"seeds": 1, "psis": [1, 0.5]},
               "mixing": {"rows": "0-1", "cols": "7", "styles": "0-1"}, "video": {"seeds": "0-1", "frames_per_seed": 2}}
    assert generate.product_argv("grid", "net.pt", "out", options) == [
        "grid", "--network", "net.pt", "--outdir", "out", "--noise-mode", "const", "--device", "cpu",
        "--trunc", "0.7", "--seeds", "0,1,2", "--columns", "3"]
    assert "--trunc" not in generate.product_argv("truncation", "net.pt", "out", options)  # psis are its truncations
    run = tmp_path / "generate/run"
    images = generate.generate_product("images", network, run / "images", options)
    assert [p.name for p in images] == ["seed0003.png", "seed0005.png"]
    gen = load_generator(network)
    expected = generate.synthesise(gen, generate.seed_ws(gen, [5], 0.7))[0]
    np.testing.assert_array_equal(np.asarray(Image.open(run / "images/seed0005.png")), expected)
    assert png_shape(generate.generate_product("grid", network, run / "grid.png", options)[0]) == (16, 48, 3)
    sweep = generate.generate_product("truncation", network, run / "truncation.png", options)[0]
    assert png_shape(sweep) == (16, 32, 3)
    mixing = generate.generate_product("mixing", network, run / "mixing", options)[-1]
    assert mixing == run / "mixing/grid.png" and (run / "mixing/1-7.png").is_file()
    video = generate.generate_product("video", network, run / "interpolation.gif", options)[0]
    assert Image.open(video).n_frames == 4  # 2 seeds x 2 frames, back to the first
    with pytest.raises(InputError, match="named grid.png"):
        generate.generate_product("grid", network, run / "my_grid.png", options)
    with pytest.raises(InputError, match="expected one of"):
        generate.generate_product("portrait", network, run / "x", options)


def png_shape(path):
    return np.asarray(Image.open(path)).shape
