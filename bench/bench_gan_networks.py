"""Benchmark: one plain StyleGAN2 G+D step of our networks (lead_hsr.gan.networks), in process CPU seconds.

The step is the non-saturating G phase (mapping -> synthesis with random noise -> D -> softplus(-logits),
backward, Adam) then the D phase (fakes under no_grad, D on fakes and reals, logistic loss, backward, Adam): no
augmentation, no lazy regularization, no style mixing, so the networks alone are timed. Default configuration
= issue 16's side-by-side comparison with the official StyleGAN2-ADA reference path (resolution 32,
channel_base 4096, channel_max 128, 2 mapping layers, z/w 128, batch 16, 1 thread; 1,251,347 G and 1,346,305 D
parameters). Measured numbers, including that comparison, are in bench/README.md.

It also times the two forms of `modulated_conv2d` (fused: one grouped conv over the batch; unfused: scale
input, shared conv, scale output, the default), forward + backward at this configuration's synthesis layer
shapes, interleaved A/B repetitions, and prints the ratio fused / unfused (goal > 1).

Times are process CPU time (time.process_time): with one thread this is the wall time on an unloaded core, and
it stays meaningful when other jobs share the machine.

    .venv/bin/python bench/bench_gan_networks.py [--steps 3] [--rounds 5] [--threads 1] [--batch 16]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lead_hsr.gan.layers import fir_filter_2d, modulated_conv2d  # noqa: E402
from lead_hsr.gan.networks import Discriminator, Generator, channels_at, count_parameters, get_preset  # noqa: E402

COMPARISON_PRESET = dict(resolution=32, z_dim=128, w_dim=128, mapping_layers=2, channel_base=4096,
                         channel_max=128, mbstd_group=4)


def make_plain_step(G: Generator, D: Discriminator, batch: int):
    opt_G = torch.optim.Adam(G.parameters(), lr=0.002, betas=(0.0, 0.99))
    opt_D = torch.optim.Adam(D.parameters(), lr=0.002, betas=(0.0, 0.99))
    real = torch.rand(batch, 3, G.resolution, G.resolution) * 2 - 1

    def step() -> None:
        G.requires_grad_(True)
        D.requires_grad_(False)
        loss = F.softplus(-D(G.synthesis(G.mapping(torch.randn(batch, G.z_dim))))).mean()
        opt_G.zero_grad(set_to_none=True)
        loss.backward()
        opt_G.step()
        G.requires_grad_(False)
        D.requires_grad_(True)
        with torch.no_grad():
            fake = G.synthesis(G.mapping(torch.randn(batch, G.z_dim)))
        loss = F.softplus(D(fake)).mean() + F.softplus(-D(real)).mean()
        opt_D.zero_grad(set_to_none=True)
        loss.backward()
        opt_D.step()
    return step


def cpu_seconds(fn, repeats: int) -> float:
    t0 = time.process_time()
    for _ in range(repeats):
        fn()
    return (time.process_time() - t0) / repeats


def modconv_cases(preset: dict, batch: int):
    """(name, x, weight, styles, up) for every distinct synthesis conv shape of the preset."""
    f = fir_filter_2d()
    cases = []
    res = 8
    while res <= preset["resolution"]:
        c_in = channels_at(res // 2, preset["channel_base"], preset["channel_max"])
        c_out = channels_at(res, preset["channel_base"], preset["channel_max"])
        for up, ci, r in ((True, c_in, res // 2), (False, c_out, res)):
            x = torch.randn(batch, ci, r, r, requires_grad=True)
            cases.append((f"{'up ' if up else ''}{ci}->{c_out} @{r}", x,
                          torch.randn(c_out, ci, 3, 3, requires_grad=True),
                          torch.randn(batch, ci, requires_grad=True), up, f))
        res *= 2
    return cases


def time_modconv(cases, rounds: int, repeats: int) -> list[tuple[str, float, float]]:
    out = []
    for name, x, w, s, up, f in cases:
        def run(fused: bool) -> None:
            modulated_conv2d(x, w, s, up=up, resample_filter=f, fused=fused).square().sum().backward()
        times = {True: [], False: []}
        for fused in (True, False):
            run(fused)                                   # warm-up
        for _ in range(rounds):
            for fused in (True, False):                  # interleaved A/B
                times[fused].append(cpu_seconds(lambda: run(fused), repeats))
        out.append((name, statistics.median(times[True]), statistics.median(times[False])))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (median reported)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    preset = get_preset(COMPARISON_PRESET)
    G, D = Generator(**preset).train(), Discriminator(**preset).train()
    step = make_plain_step(G, D, args.batch)
    step()                                               # warm-up
    per_step = [cpu_seconds(step, args.steps) for _ in range(args.rounds)]
    print(f"config: {preset} batch={args.batch} threads={args.threads}")
    print(f"params: G={count_parameters(G):,} D={count_parameters(D):,}")
    print(f"plain G+D step: median {statistics.median(per_step):.3f} CPU-s (min {min(per_step):.3f}, "
          f"{args.rounds} rounds x {args.steps} steps)")
    print("modulated conv forward+backward, fused (grouped conv) vs unfused (shared conv, default):")
    for name, fused_s, unfused_s in time_modconv(modconv_cases(preset, args.batch), args.rounds, 2):
        print(f"  {name:18s} fused {fused_s * 1000:7.1f} ms  unfused {unfused_s * 1000:7.1f} ms  "
              f"ratio fused/unfused {fused_s / unfused_s:.2f}x")


if __name__ == "__main__":
    main()
