"""A tiny train_gan run (script for the kill -9 / resume test; importable for the option helpers).

usage: tiny_gan_run.py STORE OUT_DIR WORK_DIR [--sleep S]
`--sleep` pauses after each step (outside the numerics) so the test can kill the process mid-run.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lead_hsr.data.store import write_store  # noqa: E402
from lead_hsr.gan import training  # noqa: E402

TINY_PRESET = dict(resolution=16, z_dim=16, w_dim=16, mapping_layers=1, channel_base=128, channel_max=16,
                   mbstd_group=4)
TINY_HSR = dict(extractor="vit_random", extractor_arch="vit_tiny_patch16_224", extractor_input_size=32,
                head_hidden=16, level_resolutions=[4, 4, 8, 16])


def tiny_options(**overrides) -> dict:
    # ada_kimg tiny so p really moves within a few steps; every regularizer runs within 16 steps
    opts = dict(preset=TINY_PRESET, batch=8, lr=0.002, gamma=1.0, ema_kimg=0.05, ada=True, ada_kimg=0.2,
                total_kimg=0.096, snapshot_kimg=0.048, device="cpu", checkpoint_every=3, grid_size=2,
                r1_interval=4, pl_interval=2, seed=5, precision="none")
    opts.update(overrides)
    return opts


def make_trainer(store: Path, **overrides) -> training.GanTrainer:
    """A GanTrainer on `store` with tiny_options(**overrides), seeded as train_gan seeds it."""
    opts = training.resolve_options(tiny_options(**overrides))
    torch.manual_seed(opts["seed"])
    return training.GanTrainer(opts, training.GanData(store, 16, opts["xflip"]), "cpu")


def make_store(path: Path, n: int = 24, resolution: int = 16) -> Path:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:resolution, :resolution]
    images = np.stack([np.stack([(xx * (i % 5 + 1) * 7 + yy * 3 + c * 40 + rng.integers(0, 20, xx.shape)) % 256
                                 for c in range(3)], axis=-1) for i in range(n)]).astype(np.uint8)
    table = pd.DataFrame({"file": [f"img{i:03d}.png" for i in range(n)], "split": "train"})
    write_store(path, images, None, table, {"name": "tiny_gan"})
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store")
    parser.add_argument("out_dir")
    parser.add_argument("work_dir")
    parser.add_argument("--sleep", type=float, default=0.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.sleep:
        original = training.GanTrainer.step

        def slow_step(self, step, indices):
            out = original(self, step, indices)
            time.sleep(args.sleep)
            return out
        training.GanTrainer.step = slow_step
    training.train_gan(Path(args.store), Path(args.out_dir), tiny_options(hsr=TINY_HSR), Path(args.work_dir))


if __name__ == "__main__":
    main()


def ddp_worker(rank: int, world: int, port: int, store: str, out_dir: str, work_dir: str) -> None:
    """One gloo process of a 2-process train_gan run; saves its own final G so the test can compare ranks."""
    import os
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    captured = {}
    original = training.GanTrainer.state

    def capture_state(self):
        captured["trainer"] = self
        return original(self)
    training.GanTrainer.state = capture_state
    training.train_gan(Path(store), Path(out_dir), tiny_options(total_kimg=0.032, ada=False), Path(work_dir))
    torch.save(captured["trainer"].G.state_dict(), Path(out_dir) / f"G_rank{rank}.pt")
    torch.distributed.destroy_process_group()
