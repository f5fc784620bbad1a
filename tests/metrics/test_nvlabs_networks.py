"""NVlabs' TorchScript metric networks (inception-2015-12-05.pt, vgg16.pt): registry, loading and call convention.

The real files cannot be downloaded here, so a tiny TorchScript module with the same call signature stands in:
it refuses any call the metric code must not make (non-uint8 input for features; resizing or integer input for
LPIPS), so the tests check how FID, precision/recall and PPL call the networks.
"""
import numpy as np
import pandas as pd
import pytest
import torch

from lead_hsr import weights
from lead_hsr.data.store import write_store
from lead_hsr.errors import InputError
from lead_hsr.gan.networks import Generator
from lead_hsr.metrics import features, ppl

pytestmark = [pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning"),
              pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")]


class TinyDetector(torch.nn.Module):
    """Same signature as NVlabs' detectors: forward(img, return_features=, return_lpips=, resize_images=)."""

    def __init__(self, dim: int):
        super().__init__()
        self.proj = torch.nn.Conv2d(3, dim, 4, stride=4)

    def forward(self, img: torch.Tensor, return_features: bool = False, return_lpips: bool = False,
                resize_images: bool = True) -> torch.Tensor:
        if return_lpips:
            if resize_images:
                raise RuntimeError("PPL must call vgg16 with resize_images=False")
            if img.dtype != torch.float32:   # (img + 1) * 255 / 2, not quantised, not clamped (as NVlabs' PPL)
                raise RuntimeError("LPIPS input must be float images scaled to [0, 255]")
            f = self.proj(img / 255.0).flatten(1)
            return f / f.square().sum(1, keepdim=True).sqrt()
        if not return_features:
            raise RuntimeError("the metrics use return_features=True")
        if img.dtype != torch.uint8 or img.shape[1] != 3:
            raise RuntimeError("detectors take uint8 N x 3 x H x W")
        return self.proj(img.float()).mean([2, 3])


def script(path, dim):   # torch.jit.script is deprecated for new code, but the NVlabs files are TorchScript
    torch.manual_seed(dim)
    torch.jit.script(TinyDetector(dim)).save(str(path))
    return path


@pytest.fixture
def cache(tmp_path):
    script(tmp_path / weights.REGISTRY["nvlabs-inception-2015-12-05"].file_name, 2048)
    script(tmp_path / weights.REGISTRY["nvlabs-vgg16"].file_name, 4096)
    return tmp_path


def test_registered_with_nvlabs_urls():
    base = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/"
    assert weights.REGISTRY["nvlabs-inception-2015-12-05"].url == base + "inception-2015-12-05.pt"
    assert weights.REGISTRY["nvlabs-vgg16"].url == base + "vgg16.pt"


def test_missing_file_names_it_and_random_is_refused(tmp_path):
    with pytest.raises(InputError, match=r"inception-2015-12-05\.pt.*fetch_weights"):
        features.make_extractor("nvlabs-inception", cache_dir=tmp_path)
    with pytest.raises(InputError, match=r"vgg16\.pt"):
        ppl.make_ppl_distance("nvlabs-vgg16", cache_dir=tmp_path)
    with pytest.raises(InputError, match="no random-init stand-in"):
        features.make_extractor("nvlabs-vgg16", standin="random")
    with pytest.raises(InputError, match=r"unknown LPIPS distance .clip.*fix metrics\.ppl\.distance"):
        ppl.make_ppl_distance("clip")


@pytest.mark.parametrize("kind,dim,layer", [("nvlabs-inception", 2048, "pool3"), ("nvlabs-vgg16", 4096, "fc2")])
def test_extractor_calls_with_uint8_nchw_and_return_features(cache, kind, dim, layer):
    extractor = features.make_extractor(kind, cache_dir=cache)
    images = torch.randint(0, 256, (3, 3, 16, 16), dtype=torch.uint8)
    out = extractor(images)
    reference = torch.jit.load(str(cache / weights.spec(features.NVLABS_EXTRACTORS[kind][0]).file_name))
    assert out.shape == (3, dim) and torch.equal(out, reference(images, return_features=True))
    assert extractor.record["extractor"] == kind and extractor.record["layer"] == layer
    assert extractor.record["source"] == "pretrained" and extractor.record["network"].startswith("NVlabs TorchScript")
    assert extractor.name == kind


def test_ppl_distance_is_nvlabs_lpips_on_float_0_255(cache):
    distance = ppl.make_ppl_distance("nvlabs-vgg16", cache_dir=cache)
    x, y = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    net = torch.jit.load(str(cache / "vgg16.pt"))
    f0 = net((x + 1) * 127.5, resize_images=False, return_lpips=True)
    f1 = net((y + 1) * 127.5, resize_images=False, return_lpips=True)
    torch.testing.assert_close(distance(x, y), (f0 - f1).square().sum(1))
    assert torch.equal(distance(x, x), torch.zeros(2))
    assert distance.record["distance"] == "lpips-nvlabs-vgg16"
    assert distance.record["network"] == "NVlabs TorchScript vgg16.pt"
    assert isinstance(ppl.make_ppl_distance(None, standin="random"), ppl.LPIPSDistance)   # the default alternative


def toy_run(tmp_path):
    """A tiny random generator saved as a run's network.pt, and a 12-image real store of its resolution."""
    preset = dict(resolution=16, z_dim=8, w_dim=8, mapping_layers=1, channel_base=64, channel_max=8, mbstd_group=2)
    G = Generator(**preset)
    net = tmp_path / "network.pt"
    torch.save(dict(G_ema=G.state_dict(), G=G.state_dict(), D={}, preset=preset), net)
    store = tmp_path / "store"
    write_store(store, np.random.default_rng(0).integers(0, 256, (12, 16, 16, 3), dtype=np.uint8), None,
                pd.DataFrame({"file": [f"{i}.png" for i in range(12)], "split": "train"}), {"name": "toy"})
    return net, store


def test_evaluate_gan_records_which_networks_computed_each_number(cache, tmp_path):
    from lead_hsr.metrics.gan_eval import evaluate_gan

    script(cache / "inception-2015-12-05.pt", 64)   # narrower features: FID's 2048-d matrix square root costs ~40 s
    net, store = toy_run(tmp_path)
    options = dict(device="cpu", fid=dict(extractor="nvlabs-inception", num_gen=12),
                   pr=dict(extractor="nvlabs-vgg16", num_gen=12, max_real=12),
                   ppl=dict(distance="nvlabs-vgg16", num_samples=8))
    result = evaluate_gan(net, store, tmp_path / "metrics.json", options, tmp_path / "feat", cache)
    assert result["networks"] == {"fid": "NVlabs TorchScript inception-2015-12-05.pt",
                                  "precision_recall": "NVlabs TorchScript vgg16.pt",
                                  "ppl": "NVlabs TorchScript vgg16.pt"}
    assert result["records"]["fid"]["extractor"] == "nvlabs-inception" and result["note"] == ""
    # a network.pt without options (older runs): trained in float32; ours evaluate in float32
    assert result["numerics"] == {"trained": {"precision": "none", "num_fp16_res": 0}, "evaluated_in": "float32"}
    assert np.isfinite(result["fid"]) and np.isfinite(result["ppl"])
    distances = np.load(tmp_path / "ppl_distances.npy")  # beside the metrics JSON, what Fig. 4.5 reads
    assert distances.shape == (8,) and result["ppl"] == ppl.filtered_mean(distances)[0]
    options.update(fid=dict(extractor="random-cnn", num_gen=12), ppl=dict(distance="lpips-vgg", num_samples=8,
                                                                          standin="random"))
    other = evaluate_gan(net, store, tmp_path / "m2.json", options, tmp_path / "feat", cache)
    assert other["networks"]["fid"] == "random-cnn-s0"
    assert other["networks"]["ppl"] == "lpips package, torchvision VGG16 trunk"
    assert "lpips-vgg=standin:random" in other["note"]


def test_evaluate_gan_writes_no_metrics_json_when_its_ppl_distances_fail(tmp_path, monkeypatch):
    """The distances are written before the JSON: a metrics.json Snakemake sees always has its distances."""
    from lead_hsr.metrics import gan_eval

    net, store = toy_run(tmp_path)
    options = dict(device="cpu", fid=dict(extractor="random-cnn", num_gen=12),
                   pr=dict(extractor="random-cnn", num_gen=12, max_real=12),
                   ppl=dict(distance="lpips-vgg", num_samples=8, standin="random"))

    def disk_full(array, path):
        raise OSError(f"{path}: no space left on device")

    monkeypatch.setattr(gan_eval, "atomic_save_npy", disk_full)
    with pytest.raises(OSError, match="no space left"):
        gan_eval.evaluate_gan(net, store, tmp_path / "metrics.json", options, tmp_path / "feat", tmp_path)
    assert not (tmp_path / "metrics.json").exists()
