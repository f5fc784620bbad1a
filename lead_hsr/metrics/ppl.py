"""Perceptual path length `ppl2_wend` (StyleGAN2 / StyleGAN2-ADA; DESIGN §7), our own implementation.

Per sample: z0, z1 ~ N(0, I) -> w0, w1 = G.mapping; the path starts at the end point t = 0 ("wend") and moves
epsilon along the W-space line to w1: images G(w0) and G(lerp(w0, w1, epsilon)) are synthesised in one call with
the same (constant) noise; distance = LPIPS-VGG16(img0, img1) / epsilon^2 on float images (no uint8, no crop).
LPIPS networks (lead_hsr.perceptual, shared with the projector): "nvlabs-vgg16" (NVlabs' TorchScript vgg16.pt with return_lpips=True, what the papers used; the
paper configuration's default) or "lpips-vgg" (the lpips package on torchvision's VGG16 trunk; close, not equal).
PPL = mean of the distances between the 1st and 99th percentiles. torch-fidelity's PPL is a different metric
(z space, uint8, 64 px) and is not used.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from lead_hsr.perceptual import (LPIPS_DISTANCES, LPIPS_MAX_RESOLUTION, LPIPS_NET,  # noqa: F401
                                 LPIPSDistance, NVlabsLPIPSDistance, downsample_for_lpips, make_lpips_distance)

PPL_NUM_SAMPLES = 50_000  # StyleGAN2 ppl2_wend: 50k samples
PPL_EPSILON = 1e-4  # StyleGAN2 perceptual_path_length.py: epsilon = 1e-4
PPL_PERCENTILES = (1, 99)  # keep distances within [1st ('lower' method), 99th ('higher' method)] percentiles
PPL_MAX_RESOLUTION = LPIPS_MAX_RESOLUTION  # StyleGAN2-ADA area-downsamples larger images to 256 before LPIPS
PPL_DISTANCES = LPIPS_DISTANCES  # metrics.ppl.distance values; lpips-vgg when not given

PairDistance = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (img0, img1) in [-1,1] -> [N]


def make_ppl_distance(name: str | None, cache_dir: str | Path | None = None, standin: str | None = None,
                      device: str | torch.device = "cpu", seed: int = 0):
    """The PPL distance named by the config's metrics.ppl.distance (None -> "lpips-vgg")."""
    return make_lpips_distance(name, cache_dir, standin, device, seed, setting="metrics.ppl.distance")


@dataclass
class PPLResult:
    ppl: float  # mean of the kept distances
    distances: np.ndarray  # per sample, in sample-index order (sample i's latents: ppl_latents(i, seed, z_dim))
    kept: np.ndarray  # bool per sample: inside [lo, hi]
    lo: float
    hi: float
    record: dict


def filtered_mean(distances: np.ndarray) -> tuple[float, np.ndarray, float, float]:
    """Mean of distances within [1st, 99th] percentile, as StyleGAN2 ('lower'/'higher' percentile methods)."""
    distances = np.asarray(distances, dtype=np.float64)
    lo = np.percentile(distances, PPL_PERCENTILES[0], method="lower")
    hi = np.percentile(distances, PPL_PERCENTILES[1], method="higher")
    kept = (distances >= lo) & (distances <= hi)
    return float(distances[kept].mean()), kept, float(lo), float(hi)


def ppl_latents(index: int, seed: int, z_dim: int) -> torch.Tensor:
    """The z pair [2, z_dim] of sample `index`: reproducible alone, so figures can redraw any sample's path."""
    rng = np.random.default_rng([seed, index])
    return torch.from_numpy(rng.standard_normal((2, z_dim))).float()


def _draw_constant_noise(G, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """One batch's fresh constant noise (CPU generator, named-buffer order): the one noise draw of ppl2_wend."""
    return {name: torch.randn(buffer.shape, generator=generator)
            for name, buffer in G.named_buffers() if name.endswith("noise_const")}


def _set_constant_noise(G, noise: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Copy `noise` into G's constant-noise buffers; returns the original buffers so they can be restored."""
    buffers, saved = dict(G.named_buffers()), {}
    for name, value in noise.items():
        saved[name] = buffers[name].detach().clone()
        buffers[name].copy_(value.to(buffers[name].device, buffers[name].dtype))
    return saved


def _randomise_constant_noise(G, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """StyleGAN2 draws fresh constant noise per batch; returns the original buffers so they can be restored."""
    return _set_constant_noise(G, _draw_constant_noise(G, generator))


def _restore(G, saved: dict[str, torch.Tensor]) -> None:
    buffers = dict(G.named_buffers())
    for name, value in saved.items():
        buffers[name].copy_(value)


@torch.no_grad()
def path_distances(G, distance: PairDistance, indices: range, seed: int, epsilon: float,
                   device: torch.device) -> np.ndarray:
    """Scaled distances of the samples `indices` (one batch): distance(G(w0), G(w0 + eps (w1 - w0))) / eps^2."""
    z = torch.stack([ppl_latents(i, seed, G.z_dim) for i in indices]).to(device)  # [n, 2, z_dim]
    n = len(indices)
    c = torch.zeros([2 * n, getattr(G, "c_dim", 0)], device=device)
    ws = G.mapping(torch.cat([z[:, 0], z[:, 1]]), c).float()
    w0, w1 = ws[:n], ws[n:]
    w_eps = torch.lerp(w0, w1, epsilon)  # t = 0 end: the first image is w0 itself
    images = G.synthesis(torch.cat([w0, w_eps]), noise_mode="const").float()
    images = downsample_for_lpips(images)
    return (distance(images[:n], images[n:]) / epsilon**2).cpu().numpy().astype(np.float64)


def ppl2_wend(G, distance: PairDistance, num_samples: int = PPL_NUM_SAMPLES, epsilon: float = PPL_EPSILON,
              batch_size: int = 8, seed: int = 0, device: str | torch.device = "cpu") -> PPLResult:
    """PPL in W at the path end (StyleGAN2's ppl2_wend); returns the filtered mean and per-sample distances."""
    device = torch.device(device)
    noise_generator = torch.Generator().manual_seed(seed)
    chunks = []
    for start in range(0, num_samples, batch_size):
        saved = _randomise_constant_noise(G, noise_generator)
        try:
            chunks.append(path_distances(G, distance, range(start, min(start + batch_size, num_samples)),
                                         seed, epsilon, device))
        finally:
            _restore(G, saved)
    distances = np.concatenate(chunks)
    ppl, kept, lo, hi = filtered_mean(distances)
    record = {"metric": "ppl2_wend", "num_samples": num_samples, "epsilon": epsilon, "space": "w",
              "sampling": "end", "crop": False, "batch_size": batch_size, "seed": seed,
              **getattr(distance, "record", {"distance": getattr(distance, "__name__", "custom")})}
    return PPLResult(ppl, distances, kept, lo, hi, record)


def ppl_distribution_figure(distance_files: dict, out_png) -> None:
    """Fig. 4.2: histograms of the per-sample distances each run kept for its PPL (1st-99th percentile)."""
    from lead_hsr.report.figures import histogram_plot

    kept = {}
    for label, path in distance_files.items():
        distances = np.load(path)
        kept[label] = distances[filtered_mean(distances)[1]]
    histogram_plot(kept, out_png, xlabel="per-sample path length (LPIPS / epsilon^2)",
                   title="PPL distribution (ppl2_wend)")


# ---- figures of individual PPL samples (thesis Fig. 4.1 top, 4.4, 4.5, 4.7) ----
# Sample i of a run is reproducible from the run's PPL record alone: its z pair is ppl_latents(i, seed, z_dim) and
# its constant noise is the (i // batch_size)-th draw of _draw_constant_noise from a generator seeded with `seed`.
PPL_BANDS = ("top", "bottom")  # thesis: "top 10%-ile" = smallest per-sample PPL, "bottom" = largest (worst)
PPL_FIGURE_FRACTION = 0.1  # thesis Fig. 4.4 / 4.5: top / bottom 10%-ile pairs


def percentile_band(distances: np.ndarray, band: str, fraction: float = PPL_FIGURE_FRACTION) -> np.ndarray:
    """Indices of the samples in the `band` `fraction` of the per-sample distances, from the extreme inwards.

    "top": distances <= the `fraction` percentile ('lower' method), smallest first;
    "bottom": distances >= the 1 - `fraction` percentile ('higher' method), largest first.
    """
    distances = np.asarray(distances, dtype=np.float64)
    if band not in PPL_BANDS:
        raise ValueError(f"PPL band {band!r}: expected one of {PPL_BANDS}")
    if band == "top":
        inside = np.flatnonzero(distances <= np.percentile(distances, 100 * fraction, method="lower"))
        return inside[np.argsort(distances[inside], kind="stable")]
    inside = np.flatnonzero(distances >= np.percentile(distances, 100 * (1 - fraction), method="higher"))
    return inside[np.argsort(-distances[inside], kind="stable")]


def sample_band(distances: np.ndarray, band: str, count: int, fraction: float = PPL_FIGURE_FRACTION,
                seed: int = 0) -> np.ndarray:
    """`count` samples drawn (seeded, without replacement) from `percentile_band`, kept in its order."""
    inside = percentile_band(distances, band, fraction)
    chosen = np.random.default_rng(seed).choice(len(inside), size=min(count, len(inside)), replace=False)
    return inside[np.sort(chosen)]


def ppl_sample_noise(G, indices, seed: int, batch_size: int) -> dict[int, dict[str, torch.Tensor]]:
    """The constant noise ppl2_wend(seed, batch_size) gave each sample in `indices` (its batch draws replayed)."""
    batches: dict[int, list[int]] = {}
    for index in indices:
        batches.setdefault(int(index) // batch_size, []).append(int(index))
    generator = torch.Generator().manual_seed(seed)
    noise = {}
    for batch in range(max(batches) + 1 if batches else 0):
        drawn = _draw_constant_noise(G, generator)
        for index in batches.get(batch, []):
            noise[index] = drawn
    return noise


def nhwc_uint8(images: torch.Tensor) -> np.ndarray:
    """Generator output in [-1, 1] (N x C x H x W) -> uint8 N x H x W x 3 (the metric code's quantisation)."""
    from lead_hsr.gan.networks import quantise_to_uint8

    if images.shape[1] == 1:
        images = images.repeat(1, 3, 1, 1)
    return quantise_to_uint8(images.float()).permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def ppl_path_images(G, indices, seed: int, batch_size: int, t, device: str | torch.device = "cpu") -> np.ndarray:
    """uint8 [len(indices), len(t), H, W, 3]: G(lerp(w0, w1, t)) along the W line of each PPL sample, with the
    z pair and constant noise ppl2_wend used for it (t = 0 is its image; t = epsilon its perturbed one)."""
    device = torch.device(device)
    noise = ppl_sample_noise(G, indices, seed, batch_size)
    t = torch.as_tensor(np.asarray(t, dtype=np.float32), device=device)
    paths = []
    for index in indices:
        z = ppl_latents(int(index), seed, G.z_dim).to(device)
        ws = G.mapping(z, torch.zeros([2, getattr(G, "c_dim", 0)], device=device)).float()
        path = torch.lerp(ws[:1].expand(len(t), -1, -1), ws[1:].expand(len(t), -1, -1), t[:, None, None])
        saved = _set_constant_noise(G, noise[int(index)])
        try:
            paths.append(nhwc_uint8(G.synthesis(path, noise_mode="const")))
        finally:
            _restore(G, saved)
    return np.stack(paths)


def load_ppl_run(network, metrics_json, distances_npy, device="cpu") -> tuple:
    """(G_ema, PPL record, per-sample distances) of one evaluated run; the record names seed and batch size."""
    import json

    from lead_hsr.gan.training import load_generator

    record = json.loads(Path(metrics_json).read_text())["records"]["ppl"]
    return load_generator(network, device), record, np.load(distances_npy)


def ppl_band_sections(runs: dict, band: str, options: dict) -> list:
    """strip_figure sections: per run, `pairs` samples of its `band` with their W interpolations (t = 0 .. 1).

    runs: label -> {"network", "metrics", "distances"} paths. options: pairs, steps, fraction, seed, device.
    """
    from lead_hsr.train import pick_device

    device = pick_device(options.get("device", "auto"))
    fraction = float(options.get("fraction", PPL_FIGURE_FRACTION))
    t = np.linspace(0, 1, int(options["steps"]))
    sections = []
    for label, paths in runs.items():
        G, record, distances = load_ppl_run(paths["network"], paths["metrics"], paths["distances"], device)
        chosen = sample_band(distances, band, int(options["pairs"]), fraction, int(options.get("seed", 0)))
        images = ppl_path_images(G, chosen, int(record["seed"]), int(record["batch_size"]), t, device)
        rows = [(f"sample {i}\nPPL {distances[i]:.3g}", path, [f"t={v:.2f}" for v in t])
                for i, path in zip(chosen, images)]
        sections.append((f"{label}: {band} {fraction:.0%}-ile by per-sample PPL "
                         f"({record['num_samples']} samples, LPIPS {record.get('source', '?')})", rows))
    return sections


def ppl_interpolation_figure(runs: dict, out_png, band: str, options: dict):
    """Thesis Fig. 4.4 (band "top") / 4.5 (band "bottom"): W interpolations of PPL-ranked pairs, per run."""
    from lead_hsr.report.gan_figures import strip_figure

    return strip_figure(ppl_band_sections(runs, band, options), out_png, caption_lines=1)


def ppl_worst_figure(runs: dict, out_png, options: dict):
    """Thesis Fig. 4.7: images G(w0) of `count` samples from each run's bottom `fraction` by per-sample PPL."""
    from lead_hsr.report.gan_figures import panel_grid_figure
    from lead_hsr.train import pick_device

    device = pick_device(options.get("device", "auto"))
    fraction = float(options.get("fraction", PPL_FIGURE_FRACTION))
    panels = []
    for label, paths in runs.items():
        G, record, distances = load_ppl_run(paths["network"], paths["metrics"], paths["distances"], device)
        chosen = sample_band(distances, "bottom", int(options["count"]), fraction, int(options.get("seed", 0)))
        images = ppl_path_images(G, chosen, int(record["seed"]), int(record["batch_size"]), [0.0], device)[:, 0]
        panels.append((f"{label} (PPL {distances[chosen].min():.3g} .. {distances[chosen].max():.3g})", images))
    title = f"Worst images by per-sample PPL: bottom {fraction:.0%}-ile, largest first"
    return panel_grid_figure([(title, panels)], out_png, ncols=int(options.get("ncols", 10)))
