"""Use a trained generator: images per seed, a grid, a truncation sweep, a style-mixing grid, an interpolation video.

The official StyleGAN2-ADA tools (generate.py, style_mixing.py) fix the facts kept here: z of seed s is
`np.random.RandomState(s).randn(z_dim)`; truncation psi = 1 and noise mode "const" by default; images quantised as
x * 127.5 + 128 (clamped, truncated); outputs `seed%04d.png`, `proj%02d.png` for a projected W file,
`<row>-<col>.png` + `grid.png` for style mixing with columns' styles 0-6. Any network.pt works: ours
(`train_gan`) or an imported official pickle (`python -m lead_hsr.gan.checkpoints import`).
Every output is written atomically; the same seed gives the same image (noise mode "random" draws its noise from
a generator seeded with the image's seed).

    python -m lead_hsr.gan.generate images --network NET.pt --seeds 0-7 --trunc 0.7 --outdir out
    python -m lead_hsr.gan.generate grid --network NET.pt --seeds 0-15 --outdir out
    python -m lead_hsr.gan.generate truncation --network NET.pt --seeds 0-3 --psis 1,0.8,0.6,0.4 --outdir out
    python -m lead_hsr.gan.generate mixing --network NET.pt --rows 0-3 --cols 10-13 --outdir out
    python -m lead_hsr.gan.generate video --network NET.pt --seeds 0-4 --outdir out
"""
from __future__ import annotations

import argparse
import io
import math
import sys
from pathlib import Path

import numpy as np
import torch

from lead_hsr.atomic import atomic_write_bytes, atomic_write_named
from lead_hsr.errors import command, InputError
from lead_hsr.gan.networks import quantise_to_uint8

NOISE_MODES = ("const", "random", "none")
DEFAULT_NOISE_MODE = "const"  # generate.py / style_mixing.py --noise-mode default
DEFAULT_TRUNCATION = 1.0  # generate.py / style_mixing.py --trunc default
MIXING_STYLES = "0-6"  # style_mixing.py --styles default: the columns' ws 0..6 replace the rows' (clipped to num_ws)
GRID_SEEDS = "0-15"
TRUNCATION_SEEDS = "0-3"
TRUNCATION_SWEEP = "1,0.9,0.8,0.7,0.6,0.5"
MIXING_ROWS, MIXING_COLS = "0-3", "10-13"
VIDEO_SEEDS = "0-4"
VIDEO_FRAMES_PER_SEED = 30  # frames from one seed's w to the next (linear in W), then back to the first seed
VIDEO_FPS = 30
VIDEO_FORMATS = ("mp4", "gif")  # mp4: imageio's ffmpeg plugin (libx264); gif: Pillow, where no encoder is installed


def parse_range(text: str, option: str = "--seeds") -> list[int]:
    """'0-3,7' -> [0, 1, 2, 3, 7] (the official tools' num_range, plus comma lists of ranges)."""
    values = []
    try:
        for part in str(text).split(","):
            low, _, high = part.strip().partition("-")
            values += list(range(int(low), int(high) + 1)) if high else [int(low)]
    except ValueError:
        raise InputError(f"{option} {text!r}: expected integers and ranges such as 0-3,7") from None
    if not values:
        raise InputError(f"{option} {text!r}: expected at least one value such as 0-3,7")
    return values


def parse_floats(text: str, option: str) -> list[float]:
    try:
        return [float(part) for part in str(text).split(",")]
    except ValueError:
        raise InputError(f"{option} {text!r}: expected comma-separated numbers such as 1,0.7,0.5") from None


def seed_z(seeds, z_dim: int) -> torch.Tensor:
    """z [len(seeds), z_dim] of each seed, as the official tools draw it."""
    return torch.from_numpy(np.stack([np.random.RandomState(seed).randn(z_dim) for seed in seeds])).float()


@torch.no_grad()
def seed_ws(G, seeds, truncation_psi: float = DEFAULT_TRUNCATION) -> torch.Tensor:
    """ws [len(seeds), num_ws, w_dim] = G.mapping(z of each seed), truncated towards w_avg on every layer."""
    device = G.mapping.w_avg.device
    return G.mapping(seed_z(seeds, G.z_dim).to(device), None, truncation_psi=truncation_psi)


def check_noise_mode(noise_mode: str) -> str:
    if noise_mode not in NOISE_MODES:
        raise InputError(f"--noise-mode {noise_mode!r}: expected one of {NOISE_MODES}")
    return noise_mode


@torch.no_grad()
def synthesise(G, ws: torch.Tensor, noise_mode: str = DEFAULT_NOISE_MODE, seeds=None) -> np.ndarray:
    """uint8 [N, H, W, 3] of G.synthesis(ws); with noise mode "random" image i's noise comes from torch's RNG
    seeded with seeds[i] (default i), so it does not depend on what was generated before."""
    check_noise_mode(noise_mode)
    seeds = range(len(ws)) if seeds is None else seeds
    images = []
    for w, seed in zip(ws, seeds):
        with torch.random.fork_rng(devices=[w.device] if w.device.type == "cuda" else []):
            torch.manual_seed(int(seed))
            images.append(G.synthesis(w[None], noise_mode=noise_mode).float())
    images = torch.cat(images)
    if images.shape[1] == 1:
        images = images.repeat(1, 3, 1, 1)
    return quantise_to_uint8(images).permute(0, 2, 3, 1).cpu().numpy()


def tile(images: np.ndarray) -> np.ndarray:
    """[rows, cols, H, W, 3] -> one [rows H, cols W, 3] picture."""
    rows, cols, h, w, c = images.shape
    return images.transpose(0, 2, 1, 3, 4).reshape(rows * h, cols * w, c)


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image), "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def save_png(image: np.ndarray, path) -> Path:
    return atomic_write_bytes(png_bytes(image), path)


def save_video(frames, path, fps: int = VIDEO_FPS) -> Path:
    """frames (uint8 H x W x 3 each) -> `path`: .mp4 through imageio's ffmpeg plugin (libx264, as projector.py's
    proj.mp4), .gif through Pillow (an animated image, looping)."""
    path = Path(path)
    frames = [np.ascontiguousarray(frame) for frame in frames]
    if path.suffix == ".gif":
        from PIL import Image

        def write_gif(handle):
            first, *rest = [Image.fromarray(frame, "RGB") for frame in frames]
            first.save(handle, format="GIF", save_all=True, append_images=rest, loop=0,
                       duration=max(1, round(1000 / fps)))
        from lead_hsr.atomic import atomic_write_with
        return atomic_write_with(path, write_gif)
    if path.suffix != ".mp4":
        raise InputError(f"{path}: video format {path.suffix!r} unknown; expected one of {VIDEO_FORMATS}")

    def write_mp4(tmp: Path):
        try:
            import imageio.v2 as imageio
        except ImportError:
            raise InputError(f"{path}: writing mp4 needs imageio and imageio-ffmpeg (envs/requirements.txt); "
                             "install them or ask for --format gif") from None
        writer = imageio.get_writer(tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264", bitrate="16M")
        try:
            for frame in frames:
                writer.append_data(frame)
        finally:
            writer.close()
    return atomic_write_named(path, write_mp4)


# ---- the five products ----
def generate_images(G, seeds, outdir, truncation_psi=DEFAULT_TRUNCATION, noise_mode=DEFAULT_NOISE_MODE) -> list:
    images = synthesise(G, seed_ws(G, seeds, truncation_psi), noise_mode, seeds)
    return [save_png(image, Path(outdir) / f"seed{seed:04d}.png") for seed, image in zip(seeds, images)]


def load_projected_w(path, G) -> torch.Tensor:
    """ws [N, num_ws, w_dim] from a projector's projected_w.npz (key `w`), checked against G."""
    path = Path(path)
    try:
        ws = np.load(path)["w"]
    except (OSError, KeyError, ValueError) as error:
        raise InputError(f"{path}: not a projected_w.npz with key 'w' ({error}); expected the output of "
                         "`python -m lead_hsr.gan.project`") from None
    expected = (G.num_ws, G.mapping.w_dim)
    if ws.ndim != 3 or tuple(ws.shape[1:]) != expected:
        raise InputError(f"{path}: w has shape {ws.shape}; this network needs [N, {expected[0]}, {expected[1]}] "
                         "(project with the same network)")
    return torch.from_numpy(ws).float().to(G.mapping.w_avg.device)


def generate_from_projected(G, projected_w, outdir, noise_mode=DEFAULT_NOISE_MODE) -> list:
    images = synthesise(G, load_projected_w(projected_w, G), noise_mode)
    return [save_png(image, Path(outdir) / f"proj{index:02d}.png") for index, image in enumerate(images)]


def generate_grid(G, seeds, out_png, columns: int | None = None, truncation_psi=DEFAULT_TRUNCATION,
                  noise_mode=DEFAULT_NOISE_MODE) -> Path:
    """The seeds' images in rows of `columns` (default: a square grid); missing cells are black."""
    images = synthesise(G, seed_ws(G, seeds, truncation_psi), noise_mode, seeds)
    columns = columns or math.ceil(math.sqrt(len(seeds)))
    rows = math.ceil(len(seeds) / columns)
    padded = np.zeros((rows * columns, *images.shape[1:]), np.uint8)
    padded[:len(images)] = images
    return save_png(tile(padded.reshape(rows, columns, *images.shape[1:])), out_png)


def generate_truncation_sweep(G, seeds, psis, out_png, noise_mode=DEFAULT_NOISE_MODE) -> Path:
    """One row per seed, one column per truncation psi (same z and noise along a row)."""
    rows = [synthesise(G, torch.cat([seed_ws(G, [seed], psi) for psi in psis]), noise_mode, [seed] * len(psis))
            for seed in seeds]
    return save_png(tile(np.stack(rows)), out_png)


def generate_style_mixing(G, row_seeds, col_seeds, outdir, styles=MIXING_STYLES,
                          truncation_psi=DEFAULT_TRUNCATION, noise_mode=DEFAULT_NOISE_MODE) -> Path:
    """style_mixing.py's outputs: `<row>-<col>.png` (the row seed's ws with the column seed's ws at `styles`),
    `<seed>-<seed>.png` for every seed, and `grid.png` (columns' images on top, rows' on the left, black corner)."""
    layers = [layer for layer in parse_range(styles, "--styles") if layer < G.num_ws]
    if not layers:
        raise InputError(f"--styles {styles!r}: no layer below this network's num_ws = {G.num_ws}")
    seeds = sorted(set(row_seeds) | set(col_seeds))
    ws = dict(zip(seeds, seed_ws(G, seeds, truncation_psi)))
    images = {(seed, seed): image for seed, image in zip(seeds, synthesise(G, torch.stack(list(ws.values())),
                                                                              noise_mode, seeds))}
    for row in row_seeds:
        mixed = torch.stack([ws[row].clone() for _ in col_seeds])
        for index, col in enumerate(col_seeds):
            mixed[index, layers] = ws[col][layers]
        for col, image in zip(col_seeds, synthesise(G, mixed, noise_mode, [row] * len(col_seeds))):
            images[(row, col)] = image
    outdir = Path(outdir)
    for (row, col), image in images.items():
        save_png(image, outdir / f"{row}-{col}.png")
    blank = np.zeros_like(next(iter(images.values())))
    canvas = [[blank] + [images[(col, col)] for col in col_seeds]]
    canvas += [[images[(row, row)]] + [images[(row, col)] for col in col_seeds] for row in row_seeds]
    return save_png(tile(np.stack([np.stack(row) for row in canvas])), outdir / "grid.png")


def interpolation_frames(G, seeds, frames_per_seed=VIDEO_FRAMES_PER_SEED, truncation_psi=DEFAULT_TRUNCATION,
                         noise_mode=DEFAULT_NOISE_MODE):
    """Frames along straight W lines seed -> next seed -> ... -> first seed (a loop), constant noise by default;
    with noise mode "random" every frame's noise comes from its frame index."""
    ws = seed_ws(G, list(seeds) + [seeds[0]], truncation_psi)
    t = torch.arange(frames_per_seed, device=ws.device, dtype=ws.dtype) / frames_per_seed
    path = torch.cat([torch.lerp(ws[i][None], ws[i + 1][None], t[:, None, None]) for i in range(len(seeds))])
    return synthesise(G, path, noise_mode)


def generate_video(G, seeds, out_path, frames_per_seed=VIDEO_FRAMES_PER_SEED, fps=VIDEO_FPS,
                   truncation_psi=DEFAULT_TRUNCATION, noise_mode=DEFAULT_NOISE_MODE) -> Path:
    return save_video(interpolation_frames(G, seeds, frames_per_seed, truncation_psi, noise_mode), out_path, fps)


# ---- command line ----
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lead_hsr.gan.generate", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Images from a trained generator (any network.pt: train_gan's, or an official pickle imported "
                    "with `python -m lead_hsr.gan.checkpoints import`). z of a seed, truncation, noise mode and "
                    "file names as StyleGAN2-ADA's generate.py / style_mixing.py; the same seed gives the same "
                    "image.", epilog=__doc__.split("\n\n")[-1])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--network", required=True, help="network.pt (G_ema is used)")
    common.add_argument("--outdir", required=True, help="output directory (created)")
    common.add_argument("--noise-mode", default=DEFAULT_NOISE_MODE, choices=NOISE_MODES,
                        help="const (default, as the official tools), random (seeded per image), none")
    common.add_argument("--device", default="auto", help="auto | cpu | cuda")
    trunc = argparse.ArgumentParser(add_help=False)
    trunc.add_argument("--trunc", type=float, default=DEFAULT_TRUNCATION, help="truncation psi (default 1)")
    sub = parser.add_subparsers(dest="command", required=True)
    images = sub.add_parser("images", parents=[common, trunc], help="seed%%04d.png per seed (or proj%%02d.png)")
    images.add_argument("--seeds", help="seeds, e.g. 0-7,42")
    images.add_argument("--projected-w", help="a projected_w.npz of the projector: writes proj%%02d.png instead")
    grid = sub.add_parser("grid", parents=[common, trunc], help="grid.png of the seeds' images")
    grid.add_argument("--seeds", default=GRID_SEEDS)
    grid.add_argument("--columns", type=int, help="images per row (default: square)")
    sweep = sub.add_parser("truncation", parents=[common], help="truncation.png: rows = seeds, columns = psi")
    sweep.add_argument("--seeds", default=TRUNCATION_SEEDS)
    sweep.add_argument("--psis", default=TRUNCATION_SWEEP, help=f"truncation values (default {TRUNCATION_SWEEP})")
    mixing = sub.add_parser("mixing", parents=[common, trunc], help="style mixing: <row>-<col>.png and grid.png")
    mixing.add_argument("--rows", default=MIXING_ROWS, help="seeds of the rows (their coarse styles are kept)")
    mixing.add_argument("--cols", default=MIXING_COLS, help="seeds of the columns (their --styles are copied)")
    mixing.add_argument("--styles", default=MIXING_STYLES, help=f"ws layers copied (default {MIXING_STYLES})")
    video = sub.add_parser("video", parents=[common, trunc], help="interpolation.mp4 (or .gif) through the seeds")
    video.add_argument("--seeds", default=VIDEO_SEEDS)
    video.add_argument("--frames-per-seed", type=int, default=VIDEO_FRAMES_PER_SEED)
    video.add_argument("--fps", type=int, default=VIDEO_FPS)
    video.add_argument("--format", default="mp4", choices=VIDEO_FORMATS)
    return parser


def run(args) -> list[Path]:
    from lead_hsr.gan.training import load_generator
    from lead_hsr.train import pick_device

    G = load_generator(args.network, pick_device(args.device))
    out = Path(args.outdir)
    if args.command == "images":
        if args.projected_w:
            return generate_from_projected(G, args.projected_w, out, args.noise_mode)
        if not args.seeds:
            raise InputError("images: give --seeds (e.g. 0-7) or --projected-w FILE")
        return generate_images(G, parse_range(args.seeds), out, args.trunc, args.noise_mode)
    if args.command == "grid":
        return [generate_grid(G, parse_range(args.seeds), out / "grid.png", args.columns, args.trunc,
                              args.noise_mode)]
    if args.command == "truncation":
        return [generate_truncation_sweep(G, parse_range(args.seeds), parse_floats(args.psis, "--psis"),
                                          out / "truncation.png", args.noise_mode)]
    if args.command == "mixing":
        return [generate_style_mixing(G, parse_range(args.rows, "--rows"), parse_range(args.cols, "--cols"), out,
                                      args.styles, args.trunc, args.noise_mode)]
    return [generate_video(G, parse_range(args.seeds), out / f"interpolation.{args.format}", args.frames_per_seed,
                           args.fps, args.trunc, args.noise_mode)]


# ---- workflow targets (rules/use_gan.smk): config `hsr.generate` -> the same command line ----
PRODUCTS = ("images", "grid", "truncation", "mixing", "video")
SHARED_OPTIONS = ("noise_mode", "device")  # hsr.generate keys every product takes; `trunc` all but truncation


def product_argv(product: str, network, outdir, options: dict | None = None) -> list[str]:
    """The command line of `product` from config `hsr.generate` (top-level noise_mode, trunc, device; a block per
    product whose keys are its options with `_` for `-`, lists for comma lists), so defaults and checks stay the
    command's own."""
    if product not in PRODUCTS:
        raise InputError(f"generate product {product!r}: expected one of {PRODUCTS}")
    options = dict(options or {})
    chosen = {key: options[key] for key in SHARED_OPTIONS if key in options}
    if product != "truncation" and "trunc" in options:
        chosen["trunc"] = options["trunc"]
    chosen.update(options.get(product) or {})
    argv = [product, "--network", str(network), "--outdir", str(outdir)]
    for key, value in chosen.items():
        value = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else value
        argv += [f"--{key.replace('_', '-')}", str(value)]
    return argv


PRODUCT_FILES = {"grid": "grid.png", "truncation": "truncation.png", "video": "interpolation.{format}"}


def generate_product(product: str, network, output, options: dict | None = None) -> list[Path]:
    """One workflow target: `product` of `network` written to `output` (a directory for images and mixing, else
    the file: grid.png, truncation.png, interpolation.mp4 / .gif, whose suffix picks the video format), options
    from config `hsr.generate`."""
    output = Path(output)
    options = dict(options or {})
    if product not in PRODUCT_FILES:
        return run(_parser().parse_args(product_argv(product, network, output, options)))
    if product == "video":
        options["video"] = {**(options.get("video") or {}), "format": output.suffix.lstrip(".")}
    expected = PRODUCT_FILES[product].format(format=output.suffix.lstrip("."))
    if output.name != expected:
        raise InputError(f"{output}: the {product} target is named {PRODUCT_FILES[product]}")
    return run(_parser().parse_args(product_argv(product, network, output.parent, options)))


@command
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    written = run(args)
    print(f"wrote {len(written)} file(s) under {args.outdir}" + (f": {written[-1]}" if written else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
