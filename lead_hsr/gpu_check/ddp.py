"""Two-process DDP equivalence on a device type: stage-1 BYOL (resnet18, tiny crops, 3 steps, float64) trained
by `lead_hsr.lead.stage1.train_stage1` in two processes launched as a workflow job launches them
(`ddp.launch`: nccl on CUDA, gloo on CPU) and in one process, compared tensor by tensor with
`ddp.relative_difference` as the gloo test (tests/lead/test_stage_ddp.py) compares them."""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lead_hsr.train import ddp

# The gloo test's stage-1 run (tests/lead/test_stage_ddp.py STAGE1), on the device under test
STAGE1 = {"arch": "resnet18", "crop": 32, "steps": 3, "batch": 8, "proj_hidden": 32, "proj_dim": 16, "lr": 0.002}
STORE_IMAGES, STORE_SIZE = 16, 40


def run_stage1(store, out, work, options: dict) -> None:
    """One stage-1 run in float64 (module level: `ddp.launch` pickles it into the worker processes)."""
    from lead_hsr.lead import stage1
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        stage1.train_stage1(Path(store), Path(out), options, Path(work))
    finally:
        torch.set_default_dtype(previous)


def _store(path: Path) -> Path:
    from lead_hsr.data.store import write_store
    images = np.random.default_rng(0).integers(0, 256, (STORE_IMAGES, STORE_SIZE, STORE_SIZE, 3), dtype=np.uint8)
    table = pd.DataFrame({"file": [f"{i:03d}.png" for i in range(STORE_IMAGES)], "split": "train"})
    write_store(path, images, None, table, {"name": "gpu-check"})
    return path


def two_process_difference(device_type: str) -> dict:
    """{"key": worst tensor, "error": its relative difference} of 2 processes vs 1 on `device_type`."""
    options = {**STAGE1, "device": device_type}
    with tempfile.TemporaryDirectory(prefix="gpu-check-ddp-") as tmp:
        root = Path(tmp)
        store = _store(root / "store")
        ddp.launch(run_stage1, 2, store, root / "two.pt", root / "two", options)
        run_stage1(store, root / "one.pt", root / "one", options)
        one = torch.load(root / "one.pt", weights_only=True)["state_dict"]
        two = torch.load(root / "two.pt", weights_only=True)["state_dict"]
    errors = {key: ddp.relative_difference(value, two[key]) for key, value in one.items()}
    worst = max(errors, key=errors.get)
    return {"key": worst, "error": errors[worst]}
