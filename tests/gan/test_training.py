"""GAN training: outputs, every ablation knob really changes the run, init_from, kill -9 resume is bitwise."""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import tiny_gan_run as tiny  # noqa: E402

from lead_hsr.errors import InputError  # noqa: E402
from lead_hsr.gan.training import (GanData, load_generator, load_snapshot,  # noqa: E402
                                   resolve_options, train_gan)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tiny.make_store(tmp_path_factory.mktemp("gan") / "store")


def _trainer(store, **overrides):
    return tiny.make_trainer(store, **overrides)


def _run_steps(trainer, steps, seed=11):
    torch.manual_seed(seed)
    return [trainer.step(s, np.arange(8) + s) for s in range(steps)]


def _g_params(trainer):
    return torch.cat([p.detach().flatten() for p in trainer.G.parameters()])


def test_data_xflip_doubles_and_flips(store):
    data = GanData(store, 16, xflip=True)
    assert data.n == 48
    a, b = data.batch(np.array([3]), "cpu"), data.batch(np.array([27]), "cpu")
    torch.testing.assert_close(b, a.flip(3))
    assert a.min() >= -1 and a.max() <= 1


def test_plr_knob(store):
    on, off = _trainer(store, pl_weight=2.0), _trainer(store, pl_weight=0.0)
    out_on, out_off = _run_steps(on, 3), _run_steps(off, 3)
    assert "pl_penalty" in out_on[0] and "pl_penalty" in out_on[2] and "pl_penalty" not in out_on[1]
    assert all("pl_penalty" not in o for o in out_off)
    assert on.pl.pl_mean > 0 and off.pl.pl_mean == 0
    assert not torch.equal(_g_params(on), _g_params(off))


def test_r1_gamma_knob(store):
    on, off = _trainer(store, gamma=1.0), _trainer(store, gamma=0.0)
    assert "r1_penalty" in _run_steps(on, 1)[0] and "r1_penalty" not in _run_steps(off, 1)[0]
    assert not torch.equal(torch.cat([p.flatten() for p in on.D.parameters()]),
                           torch.cat([p.flatten() for p in off.D.parameters()]))


def test_ada_knob(store):
    on, off = _trainer(store, ada=True), _trainer(store, ada=False)
    on.ada.p.fill_(0.5)
    outs_on, outs_off = _run_steps(on, 8), _run_steps(off, 8)
    assert outs_off[-1]["ada_p"] == 0.0
    assert outs_on[-1]["ada_p"] != 0.5          # p adapts (ada_kimg tiny in the test options)
    # with the same p, the ADA switch changes what D sees
    on.ada.p.fill_(0.5)
    real = on.data.batch(np.arange(8), "cpu")
    torch.manual_seed(0)
    assert not torch.equal(on.ada(real), real) and torch.equal(off.ada(real), real)


def test_hsr_knob_and_extractor_choice_change_the_g_loss(store):
    base = _trainer(store, hsr=None)
    vit = _trainer(store, hsr=tiny.TINY_HSR)
    resnet = _trainer(store, hsr=dict(tiny.TINY_HSR, extractor="resnet50", extractor_arch="resnet18",
                                                extractor_weights="random"))
    out_base, out_vit, out_res = _run_steps(base, 1)[0], _run_steps(vit, 1)[0], _run_steps(resnet, 1)[0]
    assert "loss_hsr" not in out_base and out_vit["loss_hsr"] > 0 and out_res["loss_hsr"] > 0
    assert out_vit["loss_hsr"] != out_res["loss_hsr"]
    assert not torch.equal(_g_params(base), _g_params(vit))
    assert [h.out.weight.shape[0] for h in resnet.heads.heads] == [512, 256, 128, 64]   # resnet18 widths


@pytest.mark.parametrize("levels,n_heads", [("high", 2), ("mid", 2), ("low", 2), ("all", 4)])
def test_level_knob_changes_heads(store, levels, n_heads):
    t = _trainer(store, hsr=dict(tiny.TINY_HSR, levels=levels))
    assert len(t.heads.heads) == n_heads
    assert "loss_hsr" in _run_steps(t, 1)[0]


def test_train_gan_outputs_and_init_from(store, tmp_path):
    out, work = tmp_path / "base", tmp_path / "base_work"
    network = train_gan(store, out, tiny.tiny_options(total_kimg=0.048, export_snapshots_kimg=[0.024]), work)
    snap = torch.load(network, weights_only=True)
    assert {"G_ema", "G", "D", "opt_G", "opt_D", "ada_p", "preset", "options"} <= set(snap)
    G = load_generator(network)
    assert G(torch.randn(2, 16)).shape == (2, 3, 16, 16)
    options = json.loads((out / "options.json").read_text())
    assert options["pl_weight"] == 2.0 and options["preset"]["resolution"] == 16 and options["hsr"] is None
    assert (out / "network-snapshot-0.024.pt").is_file()
    # a retried job finds its outputs deleted by Snakemake and resumes past the export step: the exported
    # snapshot must come back, identical
    exported = (out / "network-snapshot-0.024.pt").read_bytes()
    for path in out.iterdir():
        path.unlink()
    train_gan(store, out, tiny.tiny_options(total_kimg=0.048, export_snapshots_kimg=[0.024]), work)
    assert (out / "network-snapshot-0.024.pt").read_bytes() == exported
    grids = sorted((work / "samples").glob("*.png"))
    assert grids
    from PIL import Image
    assert Image.open(grids[-1]).size == (2 * 16, 2 * 16)          # grid_size 2, 16 px images

    # "HSR after K kimg": resume from the K-kimg snapshot with fresh heads
    k_snap = out / "network-snapshot-0.024.pt"
    ref = load_snapshot(k_snap)
    assert ref["opt_G"]["state"]
    for carries in ("networks", "training_state"):      # official resume: networks only; or Adam and p too
        t = _trainer(store, hsr=tiny.TINY_HSR, init_from=str(k_snap), init_from_carries=carries)
        t.ada.p.fill_(0.5)                              # != the snapshot's p
        t.init_from(k_snap)
        for name, tensor in t.G.state_dict().items():
            assert torch.equal(tensor, ref["G"][name]), name
        carried = carries == "training_state"
        assert (float(t.ada.p) == pytest.approx(ref["ada_p"])) == carried
        assert bool(t.opt_G.state_dict()["state"]) == carried
    fresh = _trainer(store, hsr=tiny.TINY_HSR)
    assert not torch.equal(_g_params(fresh), _g_params(t))

    hsr_out = tmp_path / "hsr"
    train_gan(store, hsr_out, tiny.tiny_options(total_kimg=0.024, hsr=tiny.TINY_HSR, init_from=str(k_snap)),
              tmp_path / "hsr_work")
    rec = json.loads((hsr_out / "options.json").read_text())
    assert rec["hsr"]["head_activation"] == "relu_eqlr"
    assert rec["hsr"]["extractor_normalize"] == "clip_mean_imagenet_std"
    assert rec["hsr"]["levels"] == "all" and rec["init_from"] == str(k_snap)
    assert rec["extractor_record"]["source"] == "standin:random"
    assert torch.load(hsr_out / "network.pt", weights_only=True)["hsr_heads"] is not None


def test_missing_extractor_weight_fails_clearly(store, tmp_path):
    with pytest.raises(InputError, match="fetch"):
        _trainer(store, weights_cache=str(tmp_path), hsr=dict(tiny.TINY_HSR, extractor="vit_dino"))


def test_bad_options_raise_input_error(store, tmp_path):
    with pytest.raises(InputError, match="unknown GAN training options"):
        resolve_options(dict(lr_g=0.1))
    with pytest.raises(InputError, match="unknown HSR options"):
        resolve_options(dict(hsr=dict(level="all")))
    with pytest.raises(InputError, match="images.npy"):
        train_gan(store, tmp_path / "o", tiny.tiny_options(preset=dict(tiny.TINY_PRESET, resolution=32)),
                  tmp_path / "w")
    with pytest.raises(InputError, match="precision"):
        _trainer(store, precision="fp8").step(0, np.arange(8))
    with pytest.raises(InputError, match="snapshot not found"):
        load_snapshot(tmp_path / "missing.pt")


def _start(store, out, work, sleep):
    return subprocess.Popen([sys.executable, tiny.__file__, str(store), str(out), str(work), "--sleep", str(sleep)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_kill9_and_resume_is_bitwise_identical(store, tmp_path):
    killed = _start(store, tmp_path / "out", tmp_path / "work", sleep=0.1)
    ckpt = tmp_path / "work" / "checkpoint.pt"
    deadline = time.monotonic() + 120
    while not ckpt.exists():
        assert killed.poll() is None, killed.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.2)                                   # somewhere between checkpoints
    killed.send_signal(signal.SIGKILL)
    assert killed.wait(timeout=30) == -signal.SIGKILL
    done = torch.load(ckpt, weights_only=True)["step"]
    assert 0 < done < 12 and not (tmp_path / "out" / "network.pt").exists()
    resumed = _start(store, tmp_path / "out", tmp_path / "work", sleep=0.0)
    # the uninterrupted reference runs in this process meanwhile (same code, one thread, same seeds)
    ref = train_gan(store, tmp_path / "ref", tiny.tiny_options(hsr=tiny.TINY_HSR), tmp_path / "ref_work")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read().decode()
    assert "resumed" in resumed.stderr.read().decode()
    a = torch.load(ref, weights_only=True)
    b = torch.load(tmp_path / "out" / "network.pt", weights_only=True)
    for part in ("G", "G_ema", "D", "hsr_heads"):
        for name in a[part]:
            assert torch.equal(a[part][name], b[part][name]), (part, name)
    assert a["ada_p"] == b["ada_p"]


def test_two_gloo_processes_stay_in_sync(store, tmp_path):
    import socket
    import torch.multiprocessing as mp
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "out"
    out.mkdir()
    mp.spawn(tiny.ddp_worker, args=(2, port, str(store), str(out), str(tmp_path / "work")), nprocs=2)
    g0, g1 = (torch.load(out / f"G_rank{r}.pt", weights_only=True) for r in (0, 1))
    for name, tensor in g0.items():
        if name.endswith("w_avg"):
            continue                       # tracked per process from its own samples (as StyleGAN2-ADA)
        assert torch.equal(tensor, g1[name]), name
    assert (out / "network.pt").is_file()


def test_bf16_autocast_path_runs(store, monkeypatch):
    """The CUDA bf16 path, exercised with CPU autocast (catches dtype mismatches before they reach a GPU)."""
    t = _trainer(store, hsr=tiny.TINY_HSR)
    t.ada.p.fill_(0.3)
    monkeypatch.setattr(t, "_autocast", lambda: torch.autocast("cpu", dtype=torch.bfloat16))
    G_before = _g_params(t).clone()
    for out in _run_steps(t, 2):
        assert all(np.isfinite(v) for v in out.values()), out
    assert not torch.equal(G_before, _g_params(t))
    assert t.G.mapping.w_avg.dtype == torch.float32
