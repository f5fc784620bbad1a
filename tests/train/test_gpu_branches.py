"""The CUDA-only branches of lead_hsr.train, exercised on a CPU: which device, backend, GPU index and module
types they choose (torch.cuda and torch.distributed replaced by recorders). What only a GPU can run is listed in
ARCHITECTURE.md ("What only a GPU can test") with the gpu-check section that covers it."""
import torch
import torch.distributed as dist

from lead_hsr.train import ddp, grad_scaler_for, pick_device


def _fake_gpus(monkeypatch, count: int) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


def test_each_torchrun_process_drives_the_gpu_of_its_local_rank(monkeypatch):
    _fake_gpus(monkeypatch, 2)
    for local_rank, index in (("0", 0), ("1", 1), ("3", 1)):   # more ranks than GPUs: wrap around
        monkeypatch.setenv("LOCAL_RANK", local_rank)
        assert pick_device("cuda") == pick_device("auto") == torch.device("cuda", index)


def test_cuda_processes_join_with_nccl_on_their_own_gpu(monkeypatch):
    joined, selected = [], []
    monkeypatch.setattr(dist, "init_process_group", lambda backend, init_method: joined.append(backend))
    monkeypatch.setattr(torch.cuda, "set_device", selected.append)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    ddp.init_from_env(torch.device("cuda", 1))
    ddp.init_from_env("cpu")
    assert joined == ["nccl", "gloo"] and selected == [1]


def test_cuda_models_get_their_device_id_and_sync_batchnorm(monkeypatch):
    built = []

    class RecordingDDP(torch.nn.Module):
        def __init__(self, module, device_ids):
            super().__init__()
            built.append(device_ids)

    monkeypatch.setattr(ddp, "is_distributed", lambda: True)
    monkeypatch.setattr(torch.nn.parallel, "DistributedDataParallel", RecordingDDP)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4))
    ddp.wrap_model(model, torch.device("cuda", 1))
    ddp.wrap_model(model, "cpu")
    assert built == [[1], None]
    synced = ddp.sync_batchnorm(model, torch.device("cuda", 1))
    assert isinstance(synced[1], torch.nn.SyncBatchNorm)          # torch's CUDA implementation
    cpu_model = torch.nn.Sequential(torch.nn.BatchNorm2d(4))
    assert isinstance(ddp.sync_batchnorm(cpu_model, "cpu")[0], ddp.GlobalBatchNorm)


def test_nccl_collectives_move_their_scalars_to_the_gpu(monkeypatch):
    moved = []

    def fake_cuda(self, *args, **kwargs):
        moved.append(self.dtype)
        return self

    monkeypatch.setattr(ddp, "is_distributed", lambda: True)
    monkeypatch.setattr(ddp, "world_size", lambda: 2)
    monkeypatch.setattr(dist, "get_backend", lambda: "nccl")
    monkeypatch.setattr(dist, "all_reduce", lambda tensor, op=None: tensor.mul_(2))   # two equal ranks
    monkeypatch.setattr(torch.Tensor, "cuda", fake_cuda)
    assert ddp.mean_over_ranks(1.5) == 1.5 and ddp.any_rank(True) and not ddp.any_rank(False)
    assert moved == [torch.float64, torch.float32, torch.float32]   # NCCL reduces CUDA tensors only


def test_one_process_per_gpu_a_slurm_job_was_given(monkeypatch):
    _fake_gpus(monkeypatch, 4)       # Slurm --gpus=4 sets CUDA_VISIBLE_DEVICES to four GPUs
    assert [ddp.processes_for(n) for n in (1, 2, 4, 8)] == [1, 2, 4, 4]


def test_grad_scaler_is_on_exactly_for_fp16_on_either_device(monkeypatch):
    assert [grad_scaler_for("cpu", p).is_enabled() for p in ("none", "bf16", "fp16")] == [False, False, True]
    _fake_gpus(monkeypatch, 1)       # a CUDA scaler disables itself where CUDA is absent; it allocates only once used
    assert [grad_scaler_for("cuda", p).is_enabled() for p in ("none", "bf16", "fp16")] == [False, False, True]
