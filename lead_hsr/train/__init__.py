"""lead_hsr.train: the one training infrastructure (checkpoint/resume, signals, time budget, DDP, device, logs).

    from lead_hsr.train import RunConfig, train, TERMINATED_EXIT_CODE, pick_device, autocast_for

`train(cfg, state, step_fn, on_checkpoint=None) -> int` (see `loop.train`): seeds from cfg.seed, resumes
from `cfg.work_dir/checkpoint.pt` (or a prefix run's `export_state` file, `cfg.continue_from`), calls
`step_fn(step) -> {name: scalar}` for the remaining steps, logs to `work_dir/log.csv` and TensorBoard
(`work_dir/tensorboard/`), prints a progress line (step or kimg of total, losses, throughput, ETA, memory) every
`progress_every_s` seconds and at each checkpoint (also in `work_dir/progress.json`, read by
`python -m lead_hsr.train.status`), checkpoints atomically, and on SIGTERM/SIGINT or a nearly spent
`time_budget_s` checkpoints and raises `SystemExit(TERMINATED_EXIT_CODE)` so Snakemake `retries` resume the job.

Resume is bitwise identical on CPU when step_fn takes its randomness only from the global RNGs (restored on
resume) or from generators seeded by (seed, step): `batch_indices(n_items, batch, step, seed)` and
`step_generator(seed, step, stream)`. Final outputs are written with `atomic_save_torch`, `atomic_write_text`,
`atomic_write_json`; each run writes its resolved options with `write_options_json(path, options)`.
DDP helpers (torchrun, gloo on CPU, nccl on CUDA) live in `lead_hsr.train.ddp`.
"""
from lead_hsr.train.atomic import (atomic_copy, atomic_save_torch, atomic_write_bytes, atomic_write_json, atomic_write_text,
                                   write_options_json)
from lead_hsr.train.device import autocast_for, full_precision, grad_scaler_for, outside_autocast, pick_device
from lead_hsr.train.loop import CHECKPOINT_NAME, TERMINATED_EXIT_CODE, RunConfig, export_state, run_training, train
from lead_hsr.train.progress import LOG_NAME, PROGRESS_NAME, TENSORBOARD_DIR, read_log
from lead_hsr.train.rng import batch_indices, capture_rng_state, restore_rng_state, seed_everything, step_generator

__all__ = [
    "RunConfig", "train", "run_training", "export_state", "TERMINATED_EXIT_CODE", "CHECKPOINT_NAME", "LOG_NAME",
    "PROGRESS_NAME", "TENSORBOARD_DIR", "read_log",
    "pick_device", "autocast_for", "full_precision", "outside_autocast", "grad_scaler_for",
    "batch_indices", "step_generator", "seed_everything", "capture_rng_state", "restore_rng_state",
    "atomic_copy", "atomic_save_torch", "atomic_write_bytes", "atomic_write_text", "atomic_write_json", "write_options_json",
]
