"""A tiny, fully random training run used by the train tests (run as a script in a subprocess, or imported).

It draws randomness from all three global RNGs (torch dropout + noise, numpy, python) and from
`batch_indices`, and uses SGD with momentum, so any state that resume failed to restore changes the weights.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root, for `lead_hsr`

from lead_hsr.train import RunConfig, atomic_save_torch, batch_indices, train  # noqa: E402
from lead_hsr.train import ddp  # noqa: E402
from lead_hsr.train.device import default_dtype  # noqa: E402

N_ITEMS, DIM, BATCH = 40, 4, 8


def make_data():
    gen = torch.Generator().manual_seed(123)
    return torch.randn(N_ITEMS, DIM, generator=gen), torch.randn(N_ITEMS, 2, generator=gen)


def make_model(dropout: float) -> torch.nn.Module:
    torch.manual_seed(7)
    return torch.nn.Sequential(torch.nn.Linear(DIM, 16), torch.nn.ReLU(), torch.nn.Dropout(dropout),
                               torch.nn.Linear(16, 2))


def run(work_dir, total_steps, checkpoint_every=7, sleep_s=0.0, time_budget_s=None, seed=3,
        random_draws=True, log_every=5, dtype=torch.float32) -> tuple[torch.nn.Module, int]:
    """`dtype`: torch's default float dtype during the run (float64 for comparisons across process counts)."""
    torch.set_num_threads(1)
    with default_dtype(dtype):
        return _run(work_dir, total_steps, checkpoint_every, sleep_s, time_budget_s, seed, random_draws, log_every)


def _run(work_dir, total_steps, checkpoint_every, sleep_s, time_budget_s, seed, random_draws, log_every):
    inputs, targets = make_data()
    model = make_model(dropout=0.3 if random_draws else 0.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.7)

    def step_fn(step: int) -> dict:
        idx = batch_indices(N_ITEMS, BATCH, step, seed)
        x, y = inputs[idx], targets[idx]
        if random_draws:  # one draw from every global RNG
            x = x + 0.1 * torch.randn_like(x)
            x = x * float(np.random.uniform(0.9, 1.1)) * random.uniform(0.9, 1.1)
        loss = torch.nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        if sleep_s:
            time.sleep(sleep_s)
        return {"loss": loss.item()}

    cfg = RunConfig(work_dir=Path(work_dir), total_steps=total_steps, seed=seed, checkpoint_every=checkpoint_every,
                    time_budget_s=time_budget_s, log_every=log_every)
    done = train(cfg, {"model": model, "optimizer": optimizer, "scheduler": scheduler}, step_fn)
    return model, done


def ddp_worker(rank: int, world: int, port: int, work_dir: str, out_dir: str, total_steps: int) -> None:
    """One torchrun-like rank: the global batch is split across ranks and gradients are averaged, once with
    DistributedDataParallel and once with `ddp.average_gradients` (one process group, two runs). In float64, so
    the comparison with one process measures float64 rounding on any CPU."""
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    ddp.init_from_env("cpu")
    try:
        for mode in ("wrapped", "averaged"):
            model = _ddp_run(Path(work_dir) / mode, total_steps, wrap=(mode == "wrapped"))
            atomic_save_torch(ddp.unwrap_model(model).state_dict(), Path(out_dir) / f"{mode}_rank{rank}.pt")
    finally:
        ddp.shutdown()


def _ddp_run(work_dir: Path, total_steps: int, wrap: bool) -> torch.nn.Module:
    inputs, targets = make_data()
    model = ddp.wrap_model(make_model(dropout=0.0), "cpu") if wrap else make_model(dropout=0.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    def step_fn(step: int) -> dict:
        idx = ddp.rank_batch_indices(N_ITEMS, BATCH, step, seed=3)
        loss = torch.nn.functional.mse_loss(model(inputs[idx]), targets[idx])
        optimizer.zero_grad()
        loss.backward()
        if not wrap:
            ddp.average_gradients(model)
        optimizer.step()
        return {"loss": loss.item()}

    cfg = RunConfig(work_dir=work_dir, total_steps=total_steps, seed=3, checkpoint_every=4)
    train(cfg, {"model": model, "optimizer": optimizer}, step_fn)
    return model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("work_dir")
    parser.add_argument("out")
    parser.add_argument("--total-steps", type=int, required=True)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--checkpoint-every", type=int, default=7)
    parser.add_argument("--time-budget", type=float, default=None)
    args = parser.parse_args()
    model, _ = run(args.work_dir, args.total_steps, args.checkpoint_every, args.sleep, args.time_budget)
    atomic_save_torch(model.state_dict(), args.out)


if __name__ == "__main__":
    main()
