"""GAN training-step throughput on CPU and its share of this CPU's measured matmul peak (same run, same threads).

    .venv/bin/python bench/bench_gan_step.py [--threads 1] [--steps 20] [--hsr]

FLOPs of a plain iteration (Gmain + Dmain) are counted with torch.utils.flop_counter (its module hooks do not
support the autograd.grad calls of R1/PL, so the lazy phases are timed but not counted). Reported: time of plain
steps (-> achieved FLOP/s and share of peak) and time per step under the real lazy schedule (R1 every 16, PL every
4 steps, as in training). Peak = best of several 2048^3 float32 matmuls in the same process. Times are process
CPU time (time.process_time): with one thread this is the wall time on an unloaded core, and it stays meaningful
when other jobs share the machine.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lead_hsr.data.store import write_store  # noqa: E402
from lead_hsr.gan.networks import count_parameters  # noqa: E402
from lead_hsr.gan.training import GanData, GanTrainer, resolve_options  # noqa: E402

BENCH_OPTIONS = dict(preset="demo", batch=8, device="cpu", ema_kimg=0.1, ada=True)
BENCH_HSR = dict(extractor="vit_random", extractor_arch="vit_tiny_patch16_224", extractor_input_size=64,
                 head_hidden=256, level_resolutions=[4, 8, 16, 32])


def matmul_peak_flops(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        a @ b
        best = min(best, time.process_time() - t0)
    return 2 * n ** 3 / best


def make_trainer(tmp: Path, hsr: bool) -> GanTrainer:
    opts = resolve_options(dict(BENCH_OPTIONS, hsr=BENCH_HSR if hsr else None))
    res = opts["preset"]["resolution"]
    images = np.random.default_rng(0).integers(0, 256, (64, res, res, 3), dtype=np.uint8)
    store = write_store(tmp / "store", images, None,
                        pd.DataFrame({"file": [f"{i}.png" for i in range(64)], "split": "train"}), {"name": "bench"})
    torch.manual_seed(0)
    trainer = GanTrainer(opts, GanData(store.path, res, True), "cpu")
    trainer.ada.p.fill_(0.2)            # augmentation really runs
    return trainer


def count_flops(trainer: GanTrainer, step: int) -> int:
    with FlopCounterMode(display=False) as counter:
        trainer.step(step, np.arange(trainer.opts["batch"]))
    return counter.get_total_flops()


def time_steps(trainer: GanTrainer, steps: list[int]) -> float:
    batch = trainer.opts["batch"]
    t0 = time.process_time()
    for step in steps:
        trainer.step(step, (np.arange(batch) + step * batch) % 128)
    return (time.process_time() - t0) / len(steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--hsr", action="store_true", help="with the demo HSR (tiny random ViT, small heads)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import tempfile
    trainer = make_trainer(Path(tempfile.mkdtemp()), args.hsr)
    batch = trainer.opts["batch"]
    plain_flops = count_flops(trainer, 1)               # step 1: Gmain + Dmain only
    plain_s = time_steps(trainer, [s for s in range(args.steps * 4) if s % 4 and s % 16][:args.steps])
    sched_s = time_steps(trainer, list(range(args.steps)))
    o = trainer.opts
    peak = matmul_peak_flops()
    print(f"config: preset={o['preset']} batch={batch} hsr={args.hsr} threads={args.threads}")
    print(f"params: G={count_parameters(trainer.G):,} D={count_parameters(trainer.D):,}")
    print(f"plain step (Gmain+Dmain): {plain_s * 1000:.1f} ms, {plain_flops / 1e9:.3f} GFLOP")
    print(f"scheduled step (with lazy PL/R1): {sched_s * 1000:.1f} ms ({batch / sched_s:.1f} img/s, "
          f"{1000 / batch * sched_s:.1f} s/kimg)")
    print(f"achieved {plain_flops / plain_s / 1e9:.2f} GFLOP/s vs matmul peak {peak / 1e9:.2f} GFLOP/s "
          f"-> {100 * plain_flops / plain_s / peak:.1f}% of peak")


if __name__ == "__main__":
    main()
