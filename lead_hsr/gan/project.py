"""Project an image into a generator's latent space, as StyleGAN2-ADA's projector.py (our own code).

Optimise one w (W; or one w per layer with `w_plus`, W+) and the constant noise maps so that G.synthesis(w)
matches the target under LPIPS on VGG16 features (NVlabs' vgg16.pt by default, `lead_hsr.perceptual`), with the
noise regularisation and the learning-rate / w-noise schedule of projector.py; every default below is the official
one (`ProjectorSettings`, tests/gan/test_project.py pins them). The target is centre-cropped to a square and
LANCZOS-resized to G's resolution, as projector.py does; images larger than 256 px are area-downsampled before
VGG16. Deterministic for a given --seed (noise initialisation and w noise come from a seeded generator).

Outputs under --outdir (projector.py's names, written atomically): target.png, proj.png, projected_w.npz (key `w`:
[1, num_ws, w_dim]), proj.mp4 (target | projection per step; --no-save-video to skip), and ours:
projected_noise.npz (the optimised noise maps, so proj.png can be re-synthesised exactly), side_by_side.png
(target | projection) and projection.json (settings, LPIPS network, LPIPS before/after, time).

    python -m lead_hsr.gan.project --network NET.pt --target photo.png --outdir out
    python -m lead_hsr.gan.project --network NET.pt --target photo.png --outdir out --w-plus --num-steps 500
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lead_hsr import weights
from lead_hsr.atomic import atomic_write_json, atomic_write_with
from lead_hsr.errors import command, InputError
from lead_hsr.gan.generate import save_png, save_video, synthesise, tile
from lead_hsr.perceptual import LPIPS_DISTANCES, downsample_for_lpips, make_lpips_distance

W_AVG_SEED = 123  # projector.py: z samples for the W mean / std from np.random.RandomState(123)
DEFAULT_SEED = 303  # projector.py --seed
DEFAULT_LPIPS = weights.DEFAULT_PROJECTOR_DISTANCE  # projector.py loads NVlabs' vgg16.pt (return_lpips=True)
VIDEO_FPS = 10  # projector.py's proj.mp4
NOISE_REGULARISATION_MIN_SIZE = 8  # projector.py: pool each noise map by 2 until it is 8 x 8 or smaller
W_STATISTICS_BATCH = 1000  # mapping calls per batch while sampling w (memory only; the values do not change)


@dataclass(frozen=True)
class ProjectorSettings:
    """projector.py's `project()` keyword defaults, one by one; `w_plus` is ours (projector.py optimises W)."""
    num_steps: int = 1000
    w_avg_samples: int = 10000
    initial_learning_rate: float = 0.1
    initial_noise_factor: float = 0.05
    lr_rampdown_length: float = 0.25
    lr_rampup_length: float = 0.05
    noise_ramp_length: float = 0.75
    regularize_noise_weight: float = 1e5
    w_plus: bool = False

    def __post_init__(self):
        if self.num_steps < 1 or self.w_avg_samples < 2:
            raise InputError(f"projector settings: num_steps {self.num_steps} must be >= 1 and w_avg_samples "
                             f"{self.w_avg_samples} >= 2")


def schedule(step: int, settings: ProjectorSettings) -> tuple[float, float]:
    """(learning rate, w-noise factor relative to w's std) at `step`: cosine ramp-down over the last
    lr_rampdown_length, linear ramp-up over the first lr_rampup_length, w noise decaying quadratically to zero at
    noise_ramp_length of the steps (projector.py)."""
    t = step / settings.num_steps
    noise_factor = settings.initial_noise_factor * max(0.0, 1.0 - t / settings.noise_ramp_length) ** 2
    ramp = min(1.0, (1.0 - t) / settings.lr_rampdown_length)
    ramp = 0.5 - 0.5 * np.cos(ramp * np.pi)
    ramp = ramp * min(1.0, t / settings.lr_rampup_length)
    return settings.initial_learning_rate * float(ramp), noise_factor


@torch.no_grad()
def w_statistics(G, samples: int) -> tuple[torch.Tensor, float]:
    """(w_avg [1, 1, w_dim], w_std): mean of `samples` mapped z (RandomState(123)) and the root mean squared
    distance to it, as projector.py."""
    device = G.mapping.w_avg.device
    z = torch.from_numpy(np.random.RandomState(W_AVG_SEED).randn(samples, G.z_dim))
    w = torch.cat([G.mapping(chunk.to(device), None)[:, :1].float().cpu() for chunk in z.split(W_STATISTICS_BATCH)])
    w_avg = w.mean(0, keepdim=True)
    return w_avg, float(((w - w_avg).square().sum() / samples).sqrt())


def noise_buffers(G) -> dict[str, torch.Tensor]:
    return {name: buffer for name, buffer in G.synthesis.named_buffers() if "noise_const" in name}


def noise_regularisation(noise: dict[str, torch.Tensor]) -> torch.Tensor:
    """Squared autocorrelation of each noise map with itself shifted by one pixel (x and y), at every scale down
    to 8 x 8 (projector.py's reg_loss)."""
    loss = 0.0
    for value in noise.values():
        maps = value[None, None]
        while True:
            loss = loss + (maps * torch.roll(maps, shifts=1, dims=3)).mean() ** 2
            loss = loss + (maps * torch.roll(maps, shifts=1, dims=2)).mean() ** 2
            if maps.shape[2] <= NOISE_REGULARISATION_MIN_SIZE:
                break
            maps = F.avg_pool2d(maps, kernel_size=2)
    return loss


def load_target(path, resolution: int, named_by: str = "--target") -> np.ndarray:
    """uint8 [resolution, resolution, 3]: the image centre-cropped to a square and LANCZOS-resized (projector.py);
    an unreadable file raises InputError naming it (lead_hsr.data.images), a missing one also `named_by`."""
    from PIL import Image

    from lead_hsr.data.images import load_rgb

    image = Image.fromarray(load_rgb(path, named_by=named_by))
    w, h = image.size
    s = min(w, h)
    image = image.crop(((w - s) // 2, (h - s) // 2, (w + s) // 2, (h + s) // 2))
    return np.asarray(image.resize((resolution, resolution), Image.LANCZOS), dtype=np.uint8)


def to_generator_range(images_uint8: np.ndarray, device) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> float [N, 3, H, W] in [-1, 1] (G's output range)."""
    return torch.from_numpy(np.asarray(images_uint8)).permute(0, 3, 1, 2).float().to(device) / 127.5 - 1


@dataclass
class Projection:
    w_steps: torch.Tensor  # [num_steps, num_ws, w_dim]: the optimised w after every step (projector.py's output)
    noise: dict[str, torch.Tensor]  # the optimised noise maps (G.synthesis buffer names)
    record: dict

    @property
    def w(self) -> torch.Tensor:
        return self.w_steps[-1:]


class _ProgressLines:
    """tqdm bar on a terminal; progress lines (lead_hsr.train.progress format) on stderr for logs."""

    def __init__(self, total: int, name: str):
        from tqdm import tqdm

        from lead_hsr.train.progress import Progress, default_progress_every_s

        self.progress = Progress(Path("."), name, total, 0, default_progress_every_s(), None, "steps", False)
        self.bar = tqdm(total=total, desc=name, disable=not sys.stderr.isatty(), leave=False)
        self.total = total

    def step(self, done: int, scalars: dict) -> None:
        self.bar.update(1)
        self.progress.window.add(scalars)
        if self.progress.due() or done == self.total:
            line = self.progress.report(done, "finished" if done == self.total else "running")["line"]
            (self.bar.write if not self.bar.disable else lambda text: print(text, file=sys.stderr, flush=True))(
                f"[lead_hsr.gan.project] {line}")

    def close(self) -> None:
        self.bar.close()


def project(G, target: np.ndarray, distance, settings: ProjectorSettings = ProjectorSettings(),
            seed: int = DEFAULT_SEED, name: str = "project") -> Projection:
    """Optimise w (and the noise maps) so that G.synthesis(w, noise_mode="const") matches `target` (uint8
    [H, W, 3] at G's resolution) under `distance.features` (lead_hsr.perceptual); G is copied, not changed."""
    resolution = G.resolution
    if target.shape != (resolution, resolution, 3):
        raise InputError(f"projection target has shape {target.shape}; expected ({resolution}, {resolution}, 3) "
                         "(load it with load_target, which crops and resizes)")
    device = G.mapping.w_avg.device
    G = copy.deepcopy(G).eval().requires_grad_(False)
    generator = torch.Generator().manual_seed(seed)
    w_avg, w_std = w_statistics(G, settings.w_avg_samples)
    with torch.no_grad():
        target_features = distance.features(downsample_for_lpips(to_generator_range(target[None], device)))
    start = w_avg.repeat(1, G.num_ws if settings.w_plus else 1, 1)
    w_opt = start.clone().to(device).requires_grad_(True)
    noise = noise_buffers(G)
    optimizer = torch.optim.Adam([w_opt] + list(noise.values()), betas=(0.9, 0.999),
                                 lr=settings.initial_learning_rate)
    for buffer in noise.values():
        buffer[:] = torch.randn(buffer.shape, generator=generator).to(buffer)
        buffer.requires_grad = True
    w_steps = torch.zeros([settings.num_steps, G.num_ws, w_opt.shape[2]])
    lines, started = _ProgressLines(settings.num_steps, name), time.perf_counter()
    try:
        for step in range(settings.num_steps):
            lr, noise_factor = schedule(step, settings)
            for group in optimizer.param_groups:
                group["lr"] = lr
            w_noise = torch.randn(w_opt.shape, generator=generator).to(device) * (w_std * noise_factor)
            ws = (w_opt + w_noise).expand(1, G.num_ws, -1)
            images = downsample_for_lpips(G.synthesis(ws, noise_mode="const").float())
            dist = (target_features - distance.features(images)).square().sum()
            loss = dist + noise_regularisation(noise) * settings.regularize_noise_weight
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            w_steps[step] = w_opt.detach()[0].expand(G.num_ws, -1).cpu()
            with torch.no_grad():  # projector.py: noise maps back to zero mean, unit variance after every step
                for buffer in noise.values():
                    buffer -= buffer.mean()
                    buffer *= buffer.square().mean().rsqrt()
            lines.step(step + 1, {"dist": float(dist.detach()), "loss": float(loss.detach())})
    finally:
        lines.close()
    final_noise = {key: value.detach().cpu().clone() for key, value in noise.items()}
    record = {"settings": dataclasses.asdict(settings), "seed": seed, "w_std": w_std,
              "elapsed_s": time.perf_counter() - started, "final_dist": float(dist.detach()),
              "space": "w+" if settings.w_plus else "w", **{"lpips": getattr(distance, "record", {})}}
    return Projection(w_steps, final_noise, record)


def with_noise(G, noise: dict[str, torch.Tensor]):
    """A copy of G whose constant noise maps are `noise` (a projection's), for noise_mode="const" synthesis."""
    G = copy.deepcopy(G)
    buffers = noise_buffers(G)
    for key, value in noise.items():
        buffers[key].copy_(value.to(buffers[key]))
    return G


@torch.no_grad()
def lpips_to_target(G, ws: torch.Tensor, target: np.ndarray, distance) -> float:
    """LPIPS (`distance`) between the target and G.synthesis(ws [1, num_ws, w_dim]) with constant noise."""
    device = G.mapping.w_avg.device
    image = G.synthesis(ws.to(device), noise_mode="const").float()
    return float(distance(downsample_for_lpips(image), downsample_for_lpips(to_generator_range(target[None],
                                                                                              device)))[0])


def write_projection(G, projection: Projection, target: np.ndarray, outdir, distance,
                     save_video_file: bool = True) -> list[Path]:
    """projector.py's files (target.png, proj.png, projected_w.npz, proj.mp4) and ours (projected_noise.npz,
    side_by_side.png, projection.json with LPIPS from G(w_avg) and from the projection to the target)."""
    outdir = Path(outdir)
    projected_G = with_noise(G, projection.noise)
    proj = synthesise(projected_G, projection.w.to(G.mapping.w_avg.device))[0]
    w_avg = w_statistics(G, projection.record["settings"]["w_avg_samples"])[0]
    record = {**projection.record,
              "lpips_start": lpips_to_target(G, w_avg.expand(1, G.num_ws, -1), target, distance),
              "lpips_final": lpips_to_target(projected_G, projection.w, target, distance)}
    written = [save_png(target, outdir / "target.png"), save_png(proj, outdir / "proj.png"),
               save_png(tile(np.stack([target, proj])[None]), outdir / "side_by_side.png")]
    written.append(atomic_write_with(outdir / "projected_w.npz",
                                     lambda handle: np.savez(handle, w=projection.w.numpy())))
    written.append(atomic_write_with(outdir / "projected_noise.npz", lambda handle: np.savez(
        handle, **{key: value.numpy() for key, value in projection.noise.items()})))
    if save_video_file:
        steps = synthesise(projected_G, projection.w_steps.to(G.mapping.w_avg.device))
        written.append(save_video([np.concatenate([target, frame], axis=1) for frame in steps],
                                  outdir / "proj.mp4", VIDEO_FPS))
    written.append(atomic_write_json(record, outdir / "projection.json"))
    return written


def load_projection(directory, G) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None]:
    """(w [1, num_ws, w_dim], noise maps or None) of a projection directory written by `write_projection`."""
    from lead_hsr.gan.generate import load_projected_w

    directory = Path(directory)
    w = load_projected_w(directory / "projected_w.npz", G)[:1]
    noise_file = directory / "projected_noise.npz"
    if not noise_file.is_file():
        return w, None
    with np.load(noise_file) as stored:
        noise = {key: torch.from_numpy(stored[key]) for key in stored.files}
    expected = {key: tuple(value.shape) for key, value in noise_buffers(G).items()}
    if {key: tuple(value.shape) for key, value in noise.items()} != expected:
        raise InputError(f"{noise_file}: its noise maps do not fit this network (project with the same network)")
    return w, noise


def _parser() -> argparse.ArgumentParser:
    defaults = ProjectorSettings()
    parser = argparse.ArgumentParser(
        prog="python -m lead_hsr.gan.project", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Project a photo into a generator's W (or W+) space as StyleGAN2-ADA's projector.py: LPIPS on "
                    "VGG16 features + noise regularisation, its schedule and step count. Writes target.png, "
                    "proj.png, projected_w.npz, proj.mp4, projected_noise.npz, side_by_side.png, projection.json. "
                    "Offline machines without NVlabs' vgg16.pt: --lpips lpips-vgg --standin random (a random VGG16: "
                    "a test of the machinery, not a faithful projection; recorded in projection.json).",
        epilog=__doc__.split("\n\n")[-1])
    parser.add_argument("--network", required=True, help="network.pt (ours or an imported official pickle)")
    parser.add_argument("--target", required=True, help="the image to project (any size: centre-cropped, resized)")
    parser.add_argument("--outdir", required=True)
    parser.add_argument("--num-steps", type=int, default=defaults.num_steps)
    parser.add_argument("--w-avg-samples", type=int, default=defaults.w_avg_samples)
    parser.add_argument("--w-plus", action="store_true", help="optimise one w per layer (W+) instead of one w")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--save-video", action=argparse.BooleanOptionalAction, default=True,
                        help="proj.mp4: target | projection at every step (projector.py's default: on)")
    parser.add_argument("--lpips", default=DEFAULT_LPIPS, choices=LPIPS_DISTANCES,
                        help="VGG16 LPIPS network (default: NVlabs' vgg16.pt, as projector.py)")
    parser.add_argument("--standin", help="a weight stand-in for the LPIPS network ('random' for lpips-vgg)")
    parser.add_argument("--weights-cache", default="weights_cache", help="pretrained-weight cache directory")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    return parser


@command
def main(argv: list[str] | None = None) -> int:
    from lead_hsr.gan.training import load_generator
    from lead_hsr.train import pick_device

    args = _parser().parse_args(argv)
    settings = ProjectorSettings(num_steps=args.num_steps, w_avg_samples=args.w_avg_samples, w_plus=args.w_plus)
    device = pick_device(args.device)
    G = load_generator(args.network, device)
    target = load_target(args.target, G.resolution)
    distance = make_lpips_distance(args.lpips, args.weights_cache, args.standin, device, setting="--lpips")
    projection = project(G, target, distance, settings, args.seed)
    projection.record.update(network=str(args.network), target=str(args.target))
    written = write_projection(G, projection, target, args.outdir, distance, args.save_video)
    print(f"wrote {len(written)} files under {args.outdir} ({projection.record['elapsed_s']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
