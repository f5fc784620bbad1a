import hashlib

import pytest
import torch

from lead_hsr import weights
from lead_hsr.errors import InputError


def test_registry_holds_every_network_the_metrics_and_hsr_need():
    assert {"inception-2015-12-05", "vgg16", "vit_base_patch16_224.dino", "resnet50.dino",
            "deit_base_patch16_224", "resnet50"} <= set(weights.REGISTRY)
    assert weights.REGISTRY["vgg16"].file_name == "vgg16-397923af.pth"  # what lpips/torchvision download
    for entry in weights.REGISTRY.values():  # torch.hub hash prefixes are part of the file names
        assert entry.hash_prefix is None or entry.hash_prefix in entry.file_name


def test_missing_weight_names_file_source_and_commands(tmp_path):
    with pytest.raises(InputError) as error:
        weights.resolve("inception-2015-12-05", tmp_path)
    message = str(error.value)
    assert str(tmp_path / "weights-inception-2015-12-05-6726825d.pth") in message
    assert weights.REGISTRY["inception-2015-12-05"].url in message
    assert "snakemake --cores 1 fetch_weights" in message
    assert weights.fetch_command("inception-2015-12-05", tmp_path) in message


def test_present_weight_resolves_to_its_path(tmp_path):
    (tmp_path / "vgg16-397923af.pth").write_bytes(b"x")
    assert weights.resolve("vgg16", tmp_path) == tmp_path / "vgg16-397923af.pth"


def test_unknown_weight_name_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="unknown pretrained weight 'vgg19'"):
        weights.resolve("vgg19", tmp_path)


def test_standins_are_explicit_and_recorded(tmp_path):
    random_choice = weights.choose("vgg16", tmp_path, weights.RANDOM_STANDIN)
    assert random_choice.path is None and random_choice.record()["source"] == "standin:random"
    trained = tmp_path / "byol.pt"
    trained.write_bytes(b"x")
    assert weights.choose("resnet50", tmp_path, str(trained)).record() == {
        "weight": "resnet50", "source": "standin:file", "path": str(trained)}
    with pytest.raises(InputError, match="stand-in weight file"):
        weights.choose("resnet50", tmp_path, str(tmp_path / "absent.pt"))
    with pytest.raises(InputError):  # no stand-in + absent weight: the run must fail, not fall back silently
        weights.choose("resnet50", tmp_path, None)


def _local_entry(monkeypatch, source, hash_prefix=None):
    entry = weights.WeightSpec(file_name="local.pth", url=source.as_uri(), used_by="test", hash_prefix=hash_prefix)
    monkeypatch.setitem(weights.REGISTRY, "local", entry)


def test_fetch_downloads_checks_hash_and_is_idempotent(tmp_path, monkeypatch):
    source = tmp_path / "source.pth"
    torch.save({"a": torch.ones(2)}, source)
    prefix = hashlib.sha256(source.read_bytes()).hexdigest()[:8]
    _local_entry(monkeypatch, source, prefix)
    path = weights.fetch("local", tmp_path / "cache")
    assert path == weights.resolve("local", tmp_path / "cache")
    assert torch.equal(torch.load(path)["a"], torch.ones(2))
    assert weights.fetch("local", tmp_path / "cache") == path


def test_fetch_rejects_a_wrong_hash_and_leaves_nothing(tmp_path, monkeypatch):
    source = tmp_path / "source.pth"
    source.write_bytes(b"not the weight")
    _local_entry(monkeypatch, source, "00000000")
    with pytest.raises(InputError, match="does not match"):
        weights.fetch("local", tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_fetch_failure_names_url_and_command(tmp_path, monkeypatch):
    _local_entry(monkeypatch, tmp_path / "absent.pth")
    with pytest.raises(InputError) as error:
        weights.fetch("local", tmp_path / "cache")
    assert (tmp_path / "absent.pth").as_uri() in str(error.value)
    assert "python -m lead_hsr.weights fetch" in str(error.value)


def test_load_timm_is_offline_and_loads_the_resolved_file(tmp_path, monkeypatch):
    import timm

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    torch.manual_seed(0)
    reference = timm.create_model("resnet10t", pretrained=False)
    path = tmp_path / "resnet10t.pth"
    torch.save(reference.state_dict(), path)
    model = weights.load_timm("resnet50", "resnet10t", weights.WeightChoice("resnet50", path, None))
    assert torch.equal(model.conv1[0].weight, reference.conv1[0].weight)
    assert weights.os.environ["HF_HUB_OFFLINE"] == "1"  # a missing file can never trigger hub retries
    random_model = weights.load_timm("resnet50", "resnet10t", weights.choose("resnet50", tmp_path, "random"))
    assert not torch.equal(random_model.conv1[0].weight, reference.conv1[0].weight)


def test_no_cache_dir_and_no_standin_is_an_input_error():
    with pytest.raises(InputError, match="no weights cache directory is configured"):
        weights.choose("vgg16", None)
    assert weights.choose("vgg16", None, "random").is_random


def test_every_consumer_names_a_registered_weight():
    from lead_hsr.gan.extractors import EXTRACTORS

    named = [*weights.METRIC_EXTRACTOR_WEIGHTS.values(), *weights.PPL_DISTANCE_WEIGHTS.values(),
             *filter(None, weights.HSR_EXTRACTOR_WEIGHTS.values())]
    assert set(named) <= set(weights.REGISTRY)
    assert set(weights.HSR_EXTRACTOR_WEIGHTS) == set(EXTRACTORS)
    assert {name: entry[2] for name, entry in EXTRACTORS.items()} == weights.HSR_EXTRACTOR_WEIGHTS


def test_stand_ins_and_weight_free_extractors_need_no_file():
    assert weights.metric_weight("inception") == "inception-2015-12-05"
    assert weights.metric_weight("inception", standin="random") is None
    assert weights.metric_weight("random-cnn") is None
    assert weights.metric_weight("nvlabs-inception") == "nvlabs-inception-2015-12-05"
    assert weights.ppl_weight() == "vgg16" and weights.ppl_weight("lpips-vgg", "random") is None
    assert weights.ppl_weight("nvlabs-vgg16") == "nvlabs-vgg16"
    assert weights.hsr_extractor_weight("vit_dino") == "vit_base_patch16_224.dino"
    assert weights.hsr_extractor_weight("vit_dino", "random") is None
    assert weights.hsr_extractor_weight("deit", "state_dict:/x.pt") is None
    assert weights.hsr_extractor_weight("vit_random") is None


def test_fetch_all_names_every_missing_weight_and_downloads_none(tmp_path, monkeypatch):
    source = tmp_path / "source.pth"
    source.write_bytes(b"reachable")
    _local_entry(monkeypatch, source)  # "local" is reachable, the two below are not
    for name in ("gone_a", "gone_b"):
        monkeypatch.setitem(weights.REGISTRY, name, weights.WeightSpec(
            file_name=f"{name}.pth", url=(tmp_path / f"{name}-absent").as_uri(), used_by="test"))
    with pytest.raises(InputError) as error:
        weights.fetch_all(["local", "gone_a", "gone_b"], tmp_path / "cache")
    message = str(error.value)
    assert message.startswith("3 pretrained weight(s) missing")  # the reachable one too: it is still missing
    for name in ("local", "gone_a", "gone_b"):
        entry = weights.REGISTRY[name]
        assert f"path: {tmp_path / 'cache' / entry.file_name}" in message
        assert f"source: {entry.url}" in message and f"save it as: {entry.file_name}" in message
    assert message.count("download failed here") == 2
    assert weights.fetch_command(["local", "gone_a", "gone_b"], tmp_path / "cache") in message
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())  # probed, none fetched


def test_fetch_all_fetches_every_missing_weight_once(tmp_path, monkeypatch):
    source = tmp_path / "source.pth"
    source.write_bytes(b"weight")
    _local_entry(monkeypatch, source)
    cache = tmp_path / "cache"
    assert weights.fetch_all(["local"], cache) == [cache / "local.pth"]
    assert (cache / "local.pth").read_bytes() == b"weight"
    source.unlink()  # present in the cache: nothing is probed or downloaded again
    assert weights.fetch_all(["local"], cache) == [cache / "local.pth"]


def test_fetch_command_uses_this_interpreter_never_a_bare_python(tmp_path):
    import sys

    command = weights.fetch_command(["vgg16", "resnet50"], tmp_path)
    assert command == f"{sys.executable} -m lead_hsr.weights fetch --cache-dir {tmp_path} vgg16 resnet50"
