"""Stage 1 (BYOL, MoCo) and stage 2 (LEAD) under torchrun: 2 gloo processes on CPU end with the parameters of
one process with the same global batch (global-batch BatchNorm, rank shares of one augmented batch, averaged
gradients, MoCo keys gathered into the queue).

Both sides train in float64 (DESIGN §9): the expected difference is float64 summation-order rounding, the same on
any CPU and thread count, so the tolerance can be tight. In float32 that rounding alone, amplified by Adam/BatchNorm
on near-zero biases, reached 2.8e-2 relative on an AVX-512 machine and failed a tolerance tuned on another one."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import stage_run  # noqa: E402
from tiny_data import random_teacher, tiny_store  # noqa: E402

from lead_hsr.lead.backbones import build_backbone  # noqa: E402
from lead_hsr.train import CHECKPOINT_NAME, ddp  # noqa: E402
from lead_hsr.train.compile import BACKEND_ENV  # noqa: E402
from lead_hsr.train.device import default_dtype

# Tiny, but not degenerate: with 1x1 deepest maps GroupNorm/BatchNorm see one value per group and Adam turns the
# resulting float-noise gradients into full-size steps, so stage 2 runs 64-px crops (2x2 layer4).
STAGE1 = {"arch": "resnet18", "crop": 32, "steps": 3, "batch": 8, "proj_hidden": 32, "proj_dim": 16, "queue": 16,
          "lr": 0.002, "device": "cpu"}
STAGE2 = {"crop": 64, "steps": 3, "batch": 8, "dim": 16, "proj_head": "64", "fpn_dim": 16, "teacher_norm": "layer",
          "device": "cpu"}
# moco_bn_groups: CL's DataParallel BatchNorm, groups of 4 (one per process) with shuffle-BN across the processes
RUNS = {"byol": ("stage1", STAGE1), "moco": ("stage1", STAGE1 | {"objective": "moco"}),
        "moco_bn_groups": ("stage1", STAGE1 | {"objective": "moco", "moco_bn_group_size": 4}),
        "lead": ("stage2", STAGE2),
        # compile: the model's forward compiled (GlobalBatchNorm's differentiable all-reduce inside it), gradients
        # averaged outside; aot_eager (the captured graphs without inductor's minutes of C++ builds per process)
        "byol_compiled": ("stage1", STAGE1 | {"compile": True})}
DTYPE = "float64"
TOLERANCE = ddp.EQUIVALENCE_TOLERANCE   # why this value: lead_hsr.train.ddp


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A tiny store and a random-init teacher."""
    root = tmp_path_factory.mktemp("stage_ddp")
    random_teacher(tiny_store(root / "store", 16, 72), root / "teacher.pt", crop=64)
    return root


@pytest.fixture(scope="module")
def runs(root):
    """{name: (one-process weights, two-process weights, work dir of the two-process run)}."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(BACKEND_ENV, "aot_eager")   # read by this process and the torchrun processes
        return _runs(root)


def _runs(root):
    jobs = [{"stage": stage, "store": str(root / "store"), "out": str(root / f"{name}_ddp.pt"),
             "work": str(root / f"{name}_ddp"), "options": options, "stage1": str(root / "teacher.pt"), "dtype": DTYPE}
            for name, (stage, options) in RUNS.items()]
    (root / "jobs.json").write_text(json.dumps(jobs))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           stage_run.__file__, "many", str(root / "jobs.json")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    out = {}
    for name, (stage, options) in RUNS.items():
        stage_run.run(stage, root / "store", root / f"{name}_one.pt", root / f"{name}_one", options, root / "teacher.pt",
                      DTYPE)
        out[name] = (_weights(root / f"{name}_one.pt"), _weights(root / f"{name}_ddp.pt"), root / f"{name}_ddp")
    return out


def _weights(path: Path) -> dict:
    return torch.load(path, weights_only=True)["state_dict"]


@pytest.mark.parametrize("name", list(RUNS))
def test_two_gloo_processes_match_one_process(name, runs):
    one, two, work = runs[name]
    assert one.keys() == two.keys()
    for key, value in one.items():
        error = ddp.relative_difference(value, two[key])   # integer tensors (num_batches_tracked): 0 or inf
        assert error < TOLERANCE, (name, key, value.dtype, error)
        assert value.dtype == torch.float64 or not value.is_floating_point(), (name, key, value.dtype)
    assert (work / CHECKPOINT_NAME).exists()  # rank 0 checkpointed
    assert json.loads(work.with_suffix(".json").read_text())["world_size"] == 2


def test_compiled_processes_match_the_eager_process(runs):
    """Two compiled processes end where one eager process ends (float64: the same tolerance)."""
    eager, _, _ = runs["byol"]
    _, compiled, _ = runs["byol_compiled"]
    for key, value in eager.items():
        if value.is_floating_point():
            error = float((compiled[key] - value).norm() / value.norm().clamp_min(1e-12))
            assert error < TOLERANCE, (key, error)


def test_training_moved_the_weights(runs):
    with default_dtype(getattr(torch, DTYPE)):
        torch.manual_seed(0)  # the trainer's model seed
        initial = build_backbone("resnet18").state_dict()
    one, _, _ = runs["byol"]
    assert one["net.conv1.weight"].dtype == initial["conv1.weight"].dtype
    assert not torch.equal(one["net.conv1.weight"], initial["conv1.weight"])


def test_a_workflow_job_launches_the_same_run_as_torchrun(root, runs, tmp_path):
    """workflow_scripts use ddp.launch (one process per GPU given) instead of torchrun: identical processes."""
    ddp.launch(stage_run.run, 2, "stage1", root / "store", tmp_path / "byol.pt", tmp_path / "work", STAGE1, None, DTYPE)
    _, torchrun_weights, _ = runs["byol"]
    launched = _weights(tmp_path / "byol.pt")
    assert all(torch.equal(launched[key], value) for key, value in torchrun_weights.items())


def test_a_stopped_worker_exits_the_job_with_its_code():
    with pytest.raises(SystemExit) as stopped:
        ddp.launch(stage_run.exit_with, 2, 75)
    assert stopped.value.code == 75


def test_one_process_per_visible_gpu_requested(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert [ddp.processes_for(n) for n in (0, 1, 2, 4)] == [1, 1, 2, 2]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert ddp.processes_for(4) == 1  # a CPU-only node trains in one process
