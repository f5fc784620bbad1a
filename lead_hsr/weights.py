"""Pretrained-weight registry and local cache (DESIGN §7: one module resolves every pretrained network).

Nothing here downloads implicitly. `resolve` looks a weight up in the local cache and, when it is absent, raises
`InputError` naming the file, its source and the command that fetches it. `fetch` fills the cache on a machine
with internet (a cluster login node). A run may instead select a stand-in explicitly (`"random"`, or the path of
a state dict trained by this pipeline); `choose` returns a `WeightChoice` whose `record()` goes into every result.

In the workflow every weight a configured job loads is a file: jobs declare it as an input (unless the config
selects a stand-in), and the weights the cache lacks are the outputs of one `fetch_weights` job on the login node
(rules/weights.smk). Which weight each consumer loads is defined here (METRIC_EXTRACTOR_WEIGHTS, PPL_DISTANCE_WEIGHTS,
HSR_EXTRACTOR_WEIGHTS) so the Snakefile can read it without importing torch.

Command line (what the `fetch_weights` job runs; the venv's interpreter, never a bare `python`):
    .venv/bin/python -m lead_hsr.weights fetch --cache-dir weights_cache [NAME ...]
    .venv/bin/python -m lead_hsr.weights list
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from lead_hsr.errors import InputError
from lead_hsr.hashing import file_sha256

RANDOM_STANDIN = "random"  # the one spelling of the "random init" stand-in in configs and records


@dataclass(frozen=True)
class WeightSpec:
    file_name: str
    url: str
    used_by: str
    sha256: str | None = None  # full digest when published; else None
    hash_prefix: str | None = None  # torch.hub convention: first hex digits of sha256 embedded in the file name


# Sources: torch-fidelity 0.4 (feature_extractor_inceptionv3.URL_INCEPTION_V3); torchvision 0.x model zoo
# (vgg.py VGG16_Weights.IMAGENET1K_V1, resnet.py ResNet50_Weights.IMAGENET1K_V1, also what lpips downloads);
# timm's Hugging Face hub repos; facebookresearch/dino README (ResNet-50 backbone checkpoint).
REGISTRY: dict[str, WeightSpec] = {
    "inception-2015-12-05": WeightSpec(
        file_name="weights-inception-2015-12-05-6726825d.pth",
        url="https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
        "weights-inception-2015-12-05-6726825d.pth",
        used_by="FID and Mahalanobis worst images: Inception-v3 pool3 (TF 2015-12-05 weights, as StyleGAN's FID)",
        hash_prefix="6726825d",
    ),
    "vgg16": WeightSpec(
        file_name="vgg16-397923af.pth",
        url="https://download.pytorch.org/models/vgg16-397923af.pth",
        used_by="precision/recall (VGG16 fc2 via torch-fidelity) and the LPIPS-VGG16 trunk for PPL",
        hash_prefix="397923af",
    ),
    # NVlabs' metric networks (TorchScript, torch.jit.load), what the StyleGAN2-ADA / HSR papers' numbers used
    # (DESIGN §7); stylegan2-ada-pytorch metrics/metric_utils.py detector URLs.
    "nvlabs-inception-2015-12-05": WeightSpec(
        file_name="inception-2015-12-05.pt",
        url="https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt",
        used_by="FID (paper default): NVlabs' TorchScript Inception-v3, uint8 NCHW in, return_features=True -> 2048-d",
    ),
    "nvlabs-vgg16": WeightSpec(
        file_name="vgg16.pt",
        url="https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/vgg16.pt",
        used_by="precision/recall (return_features=True) and PPL's LPIPS (return_lpips=True, resize_images=False), "
        "paper default: NVlabs' TorchScript VGG16",
    ),
    "vit_base_patch16_224.dino": WeightSpec(
        file_name="vit_base_patch16_224.dino.safetensors",
        url="https://huggingface.co/timm/vit_base_patch16_224.dino/resolve/main/model.safetensors",
        used_by="HSR target features (default extractor, Tables 4.1-4.5)",
    ),
    "resnet50.dino": WeightSpec(
        file_name="dino_resnet50_pretrain.pth",
        url="https://dl.fbaipublicfiles.com/dino/dino_resnet50_pretrain/dino_resnet50_pretrain.pth",
        used_by="HSR extractor ablation (Table 4.1, ResNet50 DINO); torchvision/timm resnet50 keys without fc: "
        "load with load_timm(..., num_classes=0)",
    ),
    "deit_base_patch16_224": WeightSpec(
        file_name="deit_base_patch16_224.fb_in1k.safetensors",
        url="https://huggingface.co/timm/deit_base_patch16_224.fb_in1k/resolve/main/model.safetensors",
        used_by="HSR extractor ablation (Table 4.1, DeiT)",
    ),
    "resnet50": WeightSpec(
        file_name="resnet50-0676ba61.pth",
        url="https://download.pytorch.org/models/resnet50-0676ba61.pth",
        used_by="HSR extractor ablation (Table 4.1, supervised ResNet50, torchvision IMAGENET1K_V1)",
        hash_prefix="0676ba61",
    ),
}


# Which registered weight each consumer loads (None: nothing pretrained). One home: the loaders and the DAG read it.
# metrics.fid/pr `extractor` -> weight (FID/Mahalanobis, precision/recall); "random-cnn" loads none
METRIC_EXTRACTOR_WEIGHTS = {"inception": "inception-2015-12-05", "vgg16": "vgg16",
                            "nvlabs-inception": "nvlabs-inception-2015-12-05", "nvlabs-vgg16": "nvlabs-vgg16"}
# metrics.ppl `distance` -> weight: the lpips package's VGG16 trunk, or NVlabs' TorchScript vgg16.pt
PPL_DISTANCE_WEIGHTS = {"lpips-vgg": "vgg16", "nvlabs-vgg16": "nvlabs-vgg16"}
DEFAULT_PPL_DISTANCE = "lpips-vgg"  # when metrics.ppl.distance is not given
DEFAULT_PROJECTOR_DISTANCE = "nvlabs-vgg16"  # StyleGAN2-ADA projector.py loads NVlabs' vgg16.pt
HSR_EXTRACTOR_WEIGHTS = {
    "vit_dino": "vit_base_patch16_224.dino",
    "deit": "deit_base_patch16_224",
    "resnet50": "resnet50",
    "resnet50_dino": "resnet50.dino",
    "vit_random": None,  # random init by definition (Table 4.1 baseline)
}
DOWNLOAD_TIMEOUT_S = 60  # per connection attempt / read: an offline node fails in seconds, not hours


def metric_weight(extractor: str, standin: str | None = None) -> str | None:
    """The weight a metric feature extractor loads: None for a stand-in or a weight-free extractor (random-cnn)."""
    return None if standin is not None else METRIC_EXTRACTOR_WEIGHTS.get(extractor)


def ppl_weight(distance: str | None = None, standin: str | None = None) -> str | None:
    """The weight PPL's LPIPS distance loads (`metrics.ppl.distance`; None -> DEFAULT_PPL_DISTANCE)."""
    return None if standin is not None else PPL_DISTANCE_WEIGHTS[distance or DEFAULT_PPL_DISTANCE]


def projector_weight(distance: str | None = None, standin: str | None = None) -> str | None:
    """The weight the projector's LPIPS distance loads (None -> DEFAULT_PROJECTOR_DISTANCE; none for a stand-in)."""
    return None if standin is not None else PPL_DISTANCE_WEIGHTS[distance or DEFAULT_PROJECTOR_DISTANCE]


def hsr_extractor_weight(extractor: str, extractor_weights: str = "pretrained") -> str | None:
    """The weight an HSR extractor loads: None unless `extractor_weights` is "pretrained" (random, state_dict:...)."""
    return HSR_EXTRACTOR_WEIGHTS.get(extractor) if extractor_weights == "pretrained" else None


def spec(name: str) -> WeightSpec:
    if name not in REGISTRY:
        raise InputError(
            f"unknown pretrained weight {name!r}; expected one of {sorted(REGISTRY)} "
            f"(add it to lead_hsr/weights.py REGISTRY or fix the config value)"
        )
    return REGISTRY[name]


def fetch_command(names, cache_dir: str | Path) -> str:
    """The one command that fetches `names` (a name or a list) into the cache, with this interpreter."""
    names = [names] if isinstance(names, str) else list(names)
    return shlex.join([sys.executable, "-m", "lead_hsr.weights", "fetch", "--cache-dir", str(cache_dir), *names])


def resolve(name: str, cache_dir: str | Path | None) -> Path:
    """Path of a cached pretrained weight; `InputError` with the file, source and fetch command when absent."""
    entry = spec(name)
    if cache_dir is None:
        raise InputError(f"{entry.file_name}: pretrained weight {name!r} requested but no weights cache "
                         f"directory is configured. Source: {entry.url}. Fix: set `weights_cache` in the config "
                         f"and run `snakemake --cores 1 fetch_weights`, or select a stand-in explicitly")
    path = Path(cache_dir) / entry.file_name
    if not path.is_file():
        raise InputError(
            f"{path}: pretrained weight {name!r} is missing (used by: {entry.used_by}). "
            f"Source: {entry.url}. Fetch it on a machine with internet with "
            f"`snakemake --cores 1 fetch_weights` or `{fetch_command(name, cache_dir)}` "
            f"(or download the source URL to that path). To run without it, select a stand-in explicitly "
            f"in the config ({RANDOM_STANDIN!r} or a pipeline-trained state dict); results then record it."
        )
    return path


@dataclass(frozen=True)
class WeightChoice:
    """What a network was actually loaded with: a pretrained file, or an explicitly chosen stand-in."""

    name: str
    path: Path | None  # the file to load; None for random init
    standin: str | None  # None = the real pretrained weight; RANDOM_STANDIN; or "file" (pipeline-trained)

    @property
    def is_random(self) -> bool:
        return self.standin == RANDOM_STANDIN

    def record(self) -> dict:
        source = "pretrained" if self.standin is None else f"standin:{self.standin}"
        return {"weight": self.name, "source": source, "path": str(self.path) if self.path else None}


def choose(name: str, cache_dir: str | Path | None, standin: str | None = None) -> WeightChoice:
    """The real weight (standin=None), or the explicit stand-in: RANDOM_STANDIN or a path to a state dict."""
    spec(name)
    if standin is None:
        return WeightChoice(name, resolve(name, cache_dir), None)
    if standin == RANDOM_STANDIN:
        return WeightChoice(name, None, RANDOM_STANDIN)
    path = Path(standin)
    if not path.is_file():
        raise InputError(
            f"{path}: stand-in weight file for {name!r} not found; expected a state dict written by the "
            f"pipeline, {RANDOM_STANDIN!r}, or no stand-in (null) to use the pretrained weight"
        )
    return WeightChoice(name, path, "file")


def _check_hash(name: str, entry: WeightSpec, path: Path) -> None:
    actual = file_sha256(path)
    expected = entry.sha256 or entry.hash_prefix
    if expected and not actual.startswith(expected):
        raise InputError(
            f"{path}: sha256 {actual} does not match the registered {expected} for {name!r} "
            f"(source {entry.url}); delete the file and fetch it again"
        )


def _download(url: str, destination: Path) -> None:
    """Stream `url` (https or file) to `destination`; a dead network fails within DOWNLOAD_TIMEOUT_S."""
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(destination, "wb") as out:
        shutil.copyfileobj(response, out, 1 << 20)
        out.flush()
        os.fsync(out.fileno())


def fetch(name: str, cache_dir: str | Path) -> Path:
    """Download a registered weight into the cache (atomic: temp file then rename); no-op if present."""
    entry = spec(name)
    target = Path(cache_dir) / entry.file_name
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    try:
        _download(entry.url, partial)
    except Exception as error:  # network/HTTP/file errors all mean the same thing to the user
        partial.unlink(missing_ok=True)
        raise InputError(
            f"{target}: could not download {name!r} from {entry.url} ({type(error).__name__}: {error}). "
            f"Run `{fetch_command(name, cache_dir)}` on a machine with internet (e.g. a cluster login node) "
            f"or place the file at that path by hand"
        ) from error
    try:
        _check_hash(name, entry, partial)
    except InputError:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)
    return target


def _reachable(url: str) -> str | None:
    """None when the first byte of `url` can be read, else why not (no download)."""
    request = urllib.request.Request(url, headers={"Range": "bytes=0-0"})  # GET: signed URLs refuse HEAD
    try:
        with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response:
            response.read(1)
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return None


def missing_weights_message(names, cache_dir: str | Path, reasons: dict | None = None) -> str:
    """Every missing weight at once: path, source URL, exact file name, and the one command that fetches them all."""
    reasons = reasons or {}
    lines = [f"{len(names)} pretrained weight(s) missing from the weights cache {cache_dir}/ "
             f"(config key `weights_cache`):"]
    for name in names:
        entry = spec(name)
        lines.append(f"  - {name} (used by: {entry.used_by})\n"
                     f"      path: {Path(cache_dir) / entry.file_name}\n"
                     f"      source: {entry.url}\n"
                     f"      save it as: {entry.file_name}"
                     + (f"\n      download failed here: {reasons[name]}" if name in reasons else ""))
    lines.append("Fetch them all on a machine with internet (e.g. the cluster login node), in the directory Snakemake runs in:\n"
                 f"  {fetch_command(names, cache_dir)}\n"
                 "or download each source to its path (exact file name above), then start Snakemake again. "
                 f"To run without one, select a stand-in explicitly in the config ({RANDOM_STANDIN!r}); "
                 "results then record it.")
    return "\n".join(lines)


def fetch_all(names, cache_dir: str | Path) -> list[Path]:
    """Fetch every missing weight of `names`, or fail naming ALL of them before downloading any.

    Every source is probed first (one byte), so an offline machine reports the whole list at once and a half
    reachable one downloads nothing that the failed job's clean-up would delete again.
    """
    missing = [name for name in names if not (Path(cache_dir) / spec(name).file_name).is_file()]
    reasons = {name: why for name in missing if (why := _reachable(spec(name).url))}
    if reasons:
        raise InputError(missing_weights_message(missing, cache_dir, reasons))
    failed = {}
    for name in missing:
        try:
            fetch(name, cache_dir)
        except InputError as error:  # keep going: one message names every weight still missing
            cause = error.__cause__
            failed[name] = f"{type(cause).__name__}: {cause}" if cause else str(error)
    if failed:
        raise InputError(missing_weights_message(list(failed), cache_dir, failed))
    return [Path(cache_dir) / spec(name).file_name for name in names]


def load_torchscript(choice: WeightChoice, device):
    """An NVlabs metric network (TorchScript: code + weights, no pickle) in eval mode."""
    import torch

    if choice.path is None:
        raise InputError(f"{choice.name}: NVlabs' TorchScript metric networks have no random-init stand-in; use the "
                         "torch-fidelity kind ('inception' / 'vgg16', or LPIPS 'lpips-vgg') with standin: random")
    try:
        return torch.jit.load(str(choice.path), map_location=device).eval()
    except RuntimeError as error:
        raise InputError(f"{choice.path}: not a TorchScript file ({error}); fetch {choice.name!r} again "
                         f"(`{fetch_command(choice.name, choice.path.parent)}`)") from error


def load_timm(name: str, architecture: str, choice: WeightChoice, **timm_kwargs):
    """timm model for a registered weight, fully offline (HF_HUB_OFFLINE=1 avoids ~45 s of hub retries).

    `architecture` is the timm model name (e.g. "vit_base_patch16_224.dino"); random stand-in -> random init.
    """
    os.environ["HF_HUB_OFFLINE"] = "1"
    import timm

    if choice.path is None:
        return timm.create_model(architecture, pretrained=False, **timm_kwargs)
    if choice.standin == "file":  # a pipeline-trained state dict
        return timm.create_model(architecture, pretrained=False, checkpoint_path=str(choice.path), **timm_kwargs)
    overlay = dict(file=str(choice.path))
    return timm.create_model(architecture, pretrained=True, pretrained_cfg_overlay=overlay, **timm_kwargs)


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lead_hsr.weights", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fetch_parser = sub.add_parser("fetch", help="download weights into the cache")
    fetch_parser.add_argument("--cache-dir", required=True)
    fetch_parser.add_argument("names", nargs="*", help="registered names (default: all)")
    sub.add_parser("list", help="print the registry")
    args = parser.parse_args(argv)
    if args.command == "list":
        for name, entry in REGISTRY.items():
            print(f"{name}\t{entry.file_name}\t{entry.url}\t{entry.used_by}")
        return 0
    try:
        paths = fetch_all(args.names or list(REGISTRY), args.cache_dir)
    except InputError as error:
        print(error, file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
