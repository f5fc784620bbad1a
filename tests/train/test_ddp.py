"""DDP on 2 gloo processes equals one process with the same global batch."""
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).parent))
import tiny_run  # noqa: E402

from lead_hsr.train import CHECKPOINT_NAME, LOG_NAME, batch_indices, ddp  # noqa: E402
from lead_hsr.train.device import default_dtype

STEPS = 6


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _single_process_weights(work_dir) -> dict:
    model, _ = tiny_run.run(work_dir, STEPS, checkpoint_every=4, random_draws=False, dtype=torch.float64)
    return model.state_dict()


def test_two_gloo_ranks_match_one_process(tmp_path):
    out = tmp_path / "out"
    mp.spawn(tiny_run.ddp_worker, args=(2, _free_port(), str(tmp_path / "ddp"), str(out), STEPS), nprocs=2)
    single = _single_process_weights(tmp_path / "single")
    with default_dtype(torch.float64):
        initial = tiny_run.make_model(0.0).state_dict()
    for mode in ("wrapped", "averaged"):  # DistributedDataParallel, and ddp.average_gradients
        rank0 = torch.load(out / f"{mode}_rank0.pt", weights_only=True)
        rank1 = torch.load(out / f"{mode}_rank1.pt", weights_only=True)
        for name in single:
            assert torch.equal(rank0[name], rank1[name]), (mode, name)  # ranks stay in sync
            # float64 on both sides: only summation-order rounding differs (measured: max abs 7e-17, max relative 4e-15)
            torch.testing.assert_close(rank0[name], single[name], rtol=1e-12, atol=1e-14)
            assert not torch.equal(single[name], initial[name])  # training moved it
        assert (tmp_path / "ddp" / mode / CHECKPOINT_NAME).exists() and (tmp_path / "ddp" / mode / LOG_NAME).exists()


def test_rank_shares_tile_the_global_batch(monkeypatch):
    shares = []
    for rank in range(4):
        monkeypatch.setattr(ddp, "rank", lambda r=rank: r)
        monkeypatch.setattr(ddp, "world_size", lambda: 4)
        shares.append(ddp.rank_batch_indices(50, 16, step=5, seed=2))
    np.testing.assert_array_equal(np.concatenate(shares), batch_indices(50, 16, step=5, seed=2))
    with pytest.raises(ValueError, match="divisible"):
        ddp.rank_batch_indices(50, 10, step=0, seed=0)  # 10 not divisible by 4 ranks


def test_single_process_fallbacks():
    info = ddp.init_from_env("cpu")  # no torchrun variables in the test environment
    assert (info.rank, info.world_size) == (0, 1) and ddp.is_main_process()
    model = torch.nn.Linear(2, 2)
    assert ddp.wrap_model(model, "cpu") is model and ddp.unwrap_model(model) is model
    assert ddp.any_rank(True) and not ddp.any_rank(False)
