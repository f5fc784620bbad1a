"""Compiled (`compile: true`, torch.compile with inductor) vs eager training steps, side by side on this machine.

    .venv/bin/python bench/bench_compile.py [--threads 1] [--steps 5] [--only gan byol moco stage2] [--device cpu]

Per trainer: compile time (wall seconds of the first `WARMUP` compiled steps minus as many eager steps: every graph
variant the step meets is built then, partly in inductor's worker processes; cold: its on-disk caches off), eager
and compiled seconds per step after warm-up (process CPU seconds, one thread by default: stable on a shared
machine), their ratio, and the differences of one step from the same state: the loss (absolute, relative)
and the gradients (largest absolute difference; ||compiled - eager|| / ||eager|| over all gradients: single tensors
whose true gradient is zero hold rounding noise only). Sizes are small so it runs in minutes on a CPU: GAN demo
preset, batch 8, plain steps (Gmain + Dmain: R1 and path length run eagerly either way); BYOL resnet18 at
32-px crops, batch 8; stage 2 (LEAD) 64-px crops, batch 8, dim 16. Set $LEAD_HSR_COMPILE_BACKEND to time another
backend.
"""
from __future__ import annotations

import os

# compile time measured cold: inductor's on-disk caches (kernels, FX graphs) off, as on a fresh cluster node
os.environ.setdefault("TORCHINDUCTOR_FORCE_DISABLE_CACHES", "1")

import argparse  # noqa: E402
import sys
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lead_hsr.data.store import write_store  # noqa: E402
from lead_hsr.gan.training import GanData, GanTrainer, resolve_options  # noqa: E402
from lead_hsr.lead import stage1, stage2  # noqa: E402
from lead_hsr.lead.common import training_images  # noqa: E402
from lead_hsr.train.compile import compile_backend  # noqa: E402

WARMUP = 3          # steps: the GAN meets its style-mixing and D graph variants within these
GAN_OPTIONS = dict(preset="demo", batch=8, ema_kimg=0.1, ada=True, precision="none", seed=0)
STAGE1 = dict(arch="resnet18", crop=32, batch=8, proj_hidden=64, proj_dim=32, queue=64, epochs=1)
# stage 2 at 64-px crops: at 32 px the FPN's deepest GroupNorm sees one value per group and its gradient is
# float32 rounding noise times 1/sqrt(eps) (eager float32 vs float64 differ by ~100% there: nothing to compare)
STAGE2 = dict(crop=64, batch=8, dim=16, proj_head="64", fpn_dim=16, teacher_norm="layer", steps=100)
DEVICE = "cpu"      # --device


def _store(path: Path, n: int, size: int) -> Path:
    images = np.random.default_rng(0).integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    table = pd.DataFrame({"file": [f"{i:03d}.png" for i in range(n)], "split": "train"})
    write_store(path, images, None, table, {"name": "bench"})
    return path


def gan(tmp: Path):
    store = _store(tmp / "gan", 32, 32)

    def build(compile: bool):
        opts = resolve_options(dict(GAN_OPTIONS, compile=compile, device=DEVICE))
        torch.manual_seed(0)
        trainer = GanTrainer(opts, GanData(store, 32, True), DEVICE)
        nets = [trainer.G, trainer.D]

        def step(i: int) -> float:
            torch.manual_seed(i)
            # odd steps: no R1 (every 16) and no path length (every 4): the phases that compile
            return trainer.step(2 * i + 1, np.arange(8) + i)["loss_G"]
        return step, [p for net in nets for p in net.parameters()]
    return build


def ssl(tmp: Path, objective: str):
    store, indices = training_images(_store(tmp / objective, 64, 40), "train", 32, "bench")

    def build(compile: bool):
        opts = stage1.DEFAULTS | STAGE1 | {"objective": objective, "compile": compile, "device": DEVICE}
        torch.manual_seed(0)
        model = stage1.build_ssl_model(opts).to(DEVICE)
        step_fn = stage1.make_step_fn(model, stage1.build_optimizer(model, opts), store, indices, opts, 1000, DEVICE)
        return (lambda i: step_fn(i)["loss"]), model.online_parameters()
    return build


def lead_stage2(tmp: Path):
    path = _store(tmp / "stage2", 64, 72)
    stage1.write_random_init(path, tmp / "teacher.pt", {"arch": "resnet18", "crop": 64, "device": "cpu"}, bn_images=16)
    store, indices = training_images(path, "train", 64, "bench")

    def build(compile: bool):
        opts = stage2._resolve(STAGE2 | {"compile": compile, "device": DEVICE})
        teacher = stage2._teacher(tmp / "teacher.pt", DEVICE)
        torch.manual_seed(0)
        student = stage2._student(opts, teacher).to(DEVICE)
        params = [p for p in student.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(params, lr=1e-3)
        step_fn = stage2.make_step_fn(student, teacher, optimizer, store, indices, opts, 100, DEVICE)
        return (lambda i: step_fn(i)["loss"]), params
    return build


def seconds_per_step(step, first: int, steps: int) -> float:
    """Process CPU seconds per step on a CPU (this process runs the compiled kernels; a shared machine's neighbours
    do not count), wall seconds on a GPU."""
    clock = time.perf_counter if DEVICE == "cuda" else time.process_time
    t0 = clock()
    for i in range(first, first + steps):
        step(i)             # each step reads its loss (.item()): the device has finished it
    return (clock() - t0) / steps


def one_step(build, compile: bool) -> tuple[float, list[torch.Tensor]]:
    step, params = build(compile)
    loss = step(0)
    return loss, [p.grad.detach().double().cpu() if p.grad is not None else torch.zeros(p.shape) for p in params]


def relative(grads, reference) -> float:
    """||grads - reference|| / ||reference|| over all gradients at once: single tensors whose true gradient is zero
    (a bias before a normalisation) hold rounding noise only."""
    flat, ref = (torch.cat([g.flatten() for g in gs]) for gs in (grads, reference))
    return float((flat - ref).norm() / ref.norm())


def differences(build) -> dict:
    """Loss and gradients of one step from the same state, eager vs compiled."""
    loss_e, grads_e = one_step(build, False)
    loss_c, grads_c = one_step(build, True)
    row = dict(loss_abs=abs(loss_c - loss_e), loss_rel=abs(loss_c - loss_e) / abs(loss_e),
               grad_abs=max(float((a - b).abs().max()) for a, b in zip(grads_c, grads_e)),
               grad_rel=relative(grads_c, grads_e))
    return row


def measure(name: str, build, steps: int) -> dict:
    eager_step, _ = build(False)
    eager_step(0)                                       # first-call allocations
    eager = seconds_per_step(eager_step, 1, steps)
    fast_step, _ = build(True)
    t0 = time.perf_counter()
    for i in range(WARMUP):
        fast_step(i)
    compile_s = time.perf_counter() - t0 - WARMUP * eager
    fast = seconds_per_step(fast_step, WARMUP, steps)
    row = dict(trainer=name, compile_s=compile_s, eager_s_per_step=eager, compiled_s_per_step=fast,
               ratio=fast / eager, **differences(build))
    print(f"{name:8s} compile {compile_s:6.1f} s | eager {eager:.4f} s/step | compiled {fast:.4f} s/step | "
          f"ratio {fast / eager:.2f} | loss diff {row['loss_abs']:.1e} (rel {row['loss_rel']:.1e}) | "
          f"grad diff {row['grad_abs']:.1e} (rel {row['grad_rel']:.1e})", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--only", nargs="*", default=["gan", "byol", "moco", "stage2"])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    args = parser.parse_args()
    global DEVICE
    DEVICE = args.device
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, backend {compile_backend()}, {args.device}, {args.threads} thread(s), "
          f"{args.steps} timed steps")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        builds = {"gan": lambda: gan(tmp), "byol": lambda: ssl(tmp, "byol"), "moco": lambda: ssl(tmp, "moco"),
                  "stage2": lambda: lead_stage2(tmp)}
        rows = [measure(name, builds[name](), args.steps) for name in args.only]
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".3g"))


if __name__ == "__main__":
    main()
