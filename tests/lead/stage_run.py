"""Run the real LEAD stage-1 / stage-2 trainers from a command line (a subprocess to kill, or torchrun ranks).

    python stage_run.py stage1 STORE OUT WORK '{"arch": "resnet18", ...}'
    python stage_run.py stage2 STORE OUT WORK '{...}' --stage1 STAGE1_WEIGHTS
    python stage_run.py many JOBS.json        (a list of {stage, store, out, work, options, stage1, dtype}: one start-up)
    torchrun --nproc-per-node 2 stage_run.py ...      (DDP: gloo on CPU)

One thread per process, as the in-process reference runs of the tests, so results can be compared bitwise.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root, for `lead_hsr`

from lead_hsr.lead import stage1, stage2  # noqa: E402
from lead_hsr.train import ddp  # noqa: E402
from lead_hsr.train.device import default_dtype  # noqa: E402


def exit_with(code: int) -> None:
    """A worker that stops itself with `code` (as a trainer does on SIGTERM / time budget: 75)."""
    raise SystemExit(code)


def run(stage: str, store, out, work, options: dict, stage1_weights=None, dtype: str = "float32") -> dict:
    """One trainer run; `dtype` is torch's default float dtype during it (float64: process-count comparisons whose
    expected difference is float64 rounding, ~1e-12, on any CPU)."""
    torch.set_num_threads(1)
    with default_dtype(getattr(torch, dtype)):
        if stage == "stage1":
            return stage1.train_stage1(Path(store), Path(out), options, Path(work))
        return stage2.train_stage2(Path(store), Path(stage1_weights), Path(out), options, Path(work))


def main() -> None:
    parser = argparse.ArgumentParser()
    if sys.argv[1:2] == ["many"]:
        jobs = json.loads(Path(sys.argv[2]).read_text())
    else:
        parser = argparse.ArgumentParser()
        parser.add_argument("stage", choices=("stage1", "stage2"))
        parser.add_argument("store")
        parser.add_argument("out")
        parser.add_argument("work")
        parser.add_argument("options", help="JSON dict of stage options")
        parser.add_argument("--stage1", default=None, help="stage-1 weights (stage 2 only)")
        args = parser.parse_args()
        jobs = [{"stage": args.stage, "store": args.store, "out": args.out, "work": args.work,
                 "options": json.loads(args.options), "stage1": args.stage1}]
    try:
        for job in jobs:
            run(job["stage"], job["store"], job["out"], job["work"], job["options"], job.get("stage1"),
                job.get("dtype", "float32"))
    finally:
        ddp.shutdown()


if __name__ == "__main__":
    main()
