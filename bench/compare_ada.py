"""Our ADA (lead_hsr.gan.ada) side by side with the official StyleGAN2-ADA AugmentPipe and p heuristic.

    .venv/bin/python bench/compare_ada.py --reference /path/to/stylegan2-ada-pytorch [--iterations 10000]
        [--repeats 20] [--skip-timing]

1. Outputs: for each transform group (blit, geom, color, and 'bgc' together), dtype (float64: both sides with
   torch's default dtype set to float64, so the official constants and draws are float64 too; float32) and p in
   {0.2, 0.5, 1.0}: both pipes on the same images (uniform noise in [-1, 1], the worst case for resampling) after
   the same torch.manual_seed, so both draw the same random numbers; max abs diff, max diff relative to the
   official output's max abs value, and whether both consumed the same RNG stream. The official geometric filter
   is the sym6 taps rounded to float32 (its upfirdn2d takes float32 filters only); the float64 rows also show ours
   with those rounded taps ("f32 taps"). Rows p=0: the official pipe still resamples there, ours returns the input.
2. p schedule: a simulated run of synthetic sign statistics (batch 128, real logits ~ N(2.0 - 0.9 p, 1): p settles
   near 1.29, above 1; the same normal draws on every side, D main every iteration, R1 (Dreg) every 16) under the
   official loop's semantics, run with its own torch_utils.training_stats (signs reported in Dmain AND Dreg,
   p = max(p + adjust, 0) every 4 iterations, no upper clamp), against AdaptiveAugment accumulating in both
   phases, in Dmain only, and the old rule (Dmain only, p clamped to [0, 1]).
3. Cost of the official 2x path vs the single warp (GEOMETRY "single_warp") per training step: ADA calls of one
   step (Gmain: forward + backward; Dmain: fake and real forwards), time.process_time over interleaved repeats,
   one thread, at 8x3x32x32 (demo) and 16x3x256x256 (paper), p = 0.5; and whole demo GAN steps with each geometry.
Nothing of the reference is copied here: it is imported from the given checkout.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from lead_hsr.gan import ada  # noqa: E402
from lead_hsr.train.device import default_dtype  # noqa: E402

GROUPS = {"blit": ("b", dict(xflip=1, rotate90=1, xint=1)),
          "geom": ("g", dict(scale=1, rotate=1, aniso=1, xfrac=1)),
          "color": ("c", dict(brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1))}
GROUPS["bgc"] = ("bgc", {**GROUPS["blit"][1], **GROUPS["geom"][1], **GROUPS["color"][1]})


def import_reference(path: str):
    sys.path.insert(0, str(Path(path).resolve()))
    from torch_utils import training_stats
    from training.augment import AugmentPipe
    return AugmentPipe, training_stats


def _diffs(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    d = (a - b).abs().max().item()
    return d, d / max(a.abs().max().item(), 1e-30)


def compare_outputs(AugmentPipe, batch: int = 16, size: int = 32) -> list[dict]:
    rows = []
    for dtype in (torch.float64, torch.float32):
        with default_dtype(dtype):
            x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
            for name, (groups, kwargs) in GROUPS.items():
                pipe = AugmentPipe(**kwargs)
                probs = ada.pipe_multipliers(groups)
                for p in (0.0, 0.2, 0.5, 1.0):
                    pipe.p.fill_(p)
                    torch.manual_seed(123)
                    theirs = pipe(x)
                    rng_theirs = torch.get_rng_state()
                    torch.manual_seed(123)
                    ours = ada.augment(x, p, probs)
                    same_rng = torch.equal(rng_theirs, torch.get_rng_state())
                    row = dict(group=name, dtype=str(dtype).replace("torch.", ""), p=p, same_rng=same_rng)
                    if p == 0:
                        row["official_vs_input_abs"] = _diffs(theirs, x)[0]
                        row["ours_vs_input_abs"] = _diffs(ours, x)[0]
                    else:
                        row["max_abs"], row["max_rel"] = _diffs(theirs, ours)
                        if dtype == torch.float64 and name != "color":
                            torch.manual_seed(123)
                            ours32 = ada.augment(x, p, probs, filt=pipe.Hz_geom.to(dtype))
                            row["max_abs_f32_taps"] = _diffs(theirs, ours32)[0]
                    rows.append(row)
    return rows


def simulate_p(training_stats, iterations: int, batch: int = 128, interval: int = 4, r1_interval: int = 16,
               target: float = 0.6, kimg: float = 500) -> dict[str, np.ndarray]:
    """p trajectories under the official semantics and ours; the same normal draws on every side."""
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((iterations, 2, batch)).astype(np.float32)   # [iteration, phase, sample]

    def logits(p: float, it: int, phase: int) -> torch.Tensor:
        return torch.from_numpy(noise[it, phase]) + float(2.0 - 0.9 * p)

    traj = {}
    # Official: training_stats reports + Collector, the update of training_loop.py.
    collector = training_stats.Collector(regex="Loss/signs/real")
    p_off = torch.zeros([])
    out = np.zeros(iterations)
    for it in range(iterations):                       # batch_idx = it before the increment
        training_stats.report("Loss/signs/real", logits(float(p_off), it, 0).sign())          # Dmain
        if it % r1_interval == 0:
            training_stats.report("Loss/signs/real", logits(float(p_off), it, 1).sign())      # Dreg
        if (it + 1) % interval == 0:
            collector.update()
            adjust = np.sign(collector["Loss/signs/real"] - target) * (batch * interval) / (kimg * 1000)
            p_off.copy_((p_off + adjust).max(torch.zeros([])))
        out[it] = float(p_off)
    traj["official"] = out
    # Ours, accumulating where the official reports (both phases) and where training.py calls it (Dmain only).
    for name, with_r1 in [("ours (Dmain+Dreg)", True), ("ours (Dmain only)", False)]:
        aug = ada.AdaptiveAugment(target=target, interval=interval, speed_kimg=kimg)
        out = np.zeros(iterations)
        for it in range(iterations):
            aug.accumulate(logits(float(aug.p), it, 0))
            if with_r1 and it % r1_interval == 0:
                aug.accumulate(logits(float(aug.p), it, 1))
            aug.maybe_adjust(it, batch)
            out[it] = float(aug.p)
        traj[name] = out
    # The old rule: Dmain only, p clamped to [0, 1].
    p_old, s, cnt, out = torch.zeros([]), 0.0, 0, np.zeros(iterations)
    for it in range(iterations):
        lg = logits(float(p_old), it, 0)
        s, cnt = s + float(lg.sign().sum()), cnt + lg.numel()
        if (it + 1) % interval == 0:
            adj = float(np.sign(s / cnt - target)) * batch * interval / (kimg * 1000)
            p_old, s, cnt = (p_old + adj).clamp(0, 1), 0.0, 0
        out[it] = float(p_old)
    traj["old (Dmain only, clamp 1)"] = out
    return traj


def time_paths(repeats: int) -> list[dict]:
    rows = []
    for shape, reps in [((8, 3, 32, 32), repeats), ((16, 3, 256, 256), max(2, repeats // 8))]:
        total = {g: 0.0 for g in ada.GEOMETRY}

        def step(geometry):
            torch.manual_seed(0)
            fake = torch.rand(shape, requires_grad=True) * 2 - 1
            ada.augment(fake, 0.5, geometry=geometry).square().sum().backward()       # Gmain
            with torch.no_grad():
                ada.augment(torch.rand(shape), 0.5, geometry=geometry)                # Dmain fake
                ada.augment(torch.rand(shape), 0.5, geometry=geometry)                # Dmain real

        for g in ada.GEOMETRY:
            step(g)                                                                   # warm-up
        for _ in range(reps):
            for g in ada.GEOMETRY:
                t0 = time.process_time()
                step(g)
                total[g] += time.process_time() - t0
        rows.append(dict(shape="x".join(map(str, shape)), repeats=reps,
                         official_ms=1000 * total["official"] / reps, single_warp_ms=1000 * total["single_warp"] / reps,
                         ratio=total["official"] / total["single_warp"]))
    return rows


def time_gan_steps(chunks: int = 6, per_chunk: int = 8) -> dict[str, float]:
    """Whole demo GAN steps (bench_gan_step's trainer: demo preset, batch 8, p = 0.2) with each geometry, interleaved
    in chunks of consecutive steps (the same lazy R1/PL schedule on both sides); ms per step."""
    import tempfile

    import bench_gan_step as gan_bench
    trainer = gan_bench.make_trainer(Path(tempfile.mkdtemp()), hsr=False)
    total = {g: 0.0 for g in ada.GEOMETRY}
    for c in range(chunks):
        steps = list(range(c * per_chunk, (c + 1) * per_chunk))
        for g in ada.GEOMETRY:
            trainer.ada.geometry = g
            trainer.ada.p.fill_(0.2)
            total[g] += gan_bench.time_steps(trainer, steps) * per_chunk
    return {g: 1000 * t / (chunks * per_chunk) for g, t in total.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference", required=True, help="a stylegan2-ada-pytorch checkout (read, imported)")
    parser.add_argument("--iterations", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--skip-timing", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    AugmentPipe, training_stats = import_reference(args.reference)

    print("## outputs: official AugmentPipe vs ours, same seed (16x3x32x32, uniform noise in [-1, 1])")
    print("| group | dtype | p | max abs diff | max rel diff | f32-taps max abs | same RNG use |")
    print("|---|---|---|---|---|---|---|")
    rows = compare_outputs(AugmentPipe)
    for r in rows:
        if r["p"] == 0:
            continue
        f32 = f"{r['max_abs_f32_taps']:.1e}" if "max_abs_f32_taps" in r else "-"
        print(f"| {r['group']} | {r['dtype']} | {r['p']} | {r['max_abs']:.1e} | {r['max_rel']:.1e} | {f32} | "
              f"{r['same_rng']} |")
    print("\np = 0 (official: resampling still runs; ours: input returned):")
    for r in rows:
        if r["p"] == 0:
            print(f"  {r['group']:5s} {r['dtype']}: official vs input {r['official_vs_input_abs']:.1e}, "
                  f"ours vs input {r['ours_vs_input_abs']:.1e}, same RNG use {r['same_rng']}")

    print(f"\n## p schedule: {args.iterations} iterations, batch 128, synthetic logits N(2.0 - 0.9 p, 1)")
    traj = simulate_p(training_stats, args.iterations)
    ref = traj["official"]
    print("| run | final p | max p | max abs diff to official | iterations differing |")
    print("|---|---|---|---|---|")
    for name, t in traj.items():
        print(f"| {name} | {t[-1]:.5f} | {t.max():.5f} | {np.abs(t - ref).max():.2e} | "
              f"{int((t != ref).sum())} |")

    if not args.skip_timing:
        print("\n## cost per training step of ADA (Gmain fwd+bwd, Dmain 2 fwd), p=0.5, 1 thread, process time")
        print("| images | repeats | official 2x path ms | single warp ms | ratio |")
        print("|---|---|---|---|---|")
        for r in time_paths(args.repeats):
            print(f"| {r['shape']} | {r['repeats']} | {r['official_ms']:.1f} | {r['single_warp_ms']:.1f} | "
                  f"{r['ratio']:.1f}x |")
        gan = time_gan_steps()
        print(f"\ndemo GAN step (bench_gan_step trainer, batch 8, p=0.2): official {gan['official']:.0f} ms, "
              f"single warp {gan['single_warp']:.0f} ms ({gan['official'] / gan['single_warp']:.2f}x)")


if __name__ == "__main__":
    main()
