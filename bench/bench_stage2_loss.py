"""Benchmark: LEAD stage-2 loss, chunked vs naive, at the paper's sizes (3840-d hypercolumns, 24x24, batch 32).

Each variant runs forward + backward in its own process after a full-size warm-up call, so peak memory is
measured without interference: on CUDA max_memory_allocated; on CPU the peak resident set size sampled every
millisecond by a thread (RSS also counts library code pages, which the warm-up has already loaded).
Prints times, peaks and the naive/chunked ratios.

    .venv/bin/python bench/bench_stage2_loss.py [--batch 32] [--size 24] [--teacher-dim 3840] [--dim 64]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import threading
import time

import psutil

import torch

from lead_hsr.lead.dense_objectives import DEFAULT_CHUNK, lead_loss, lead_loss_naive


class _RssSampler(threading.Thread):
    """Peak RSS (MiB) of this process while running, sampled every millisecond."""

    def __init__(self):
        super().__init__(daemon=True)
        self.process, self.peak, self.running = psutil.Process(), 0, True

    def run(self):
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.001)

    def stop(self) -> float:
        self.running = False
        self.join()
        return self.peak / 2**20


def _measure(fn, device) -> float:
    """Extra peak memory (MiB) while `fn()` runs."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    before = psutil.Process().memory_info().rss / 2**20
    sampler = _RssSampler()
    sampler.start()
    fn()
    return sampler.stop() - before


def _run(variant: str, args, queue) -> None:
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    shape = (args.batch, args.teacher_dim, args.size, args.size)
    teacher = torch.rand(shape, generator=gen).to(device)
    teacher_tgt = torch.roll(teacher, 1, 0)
    student = torch.randn(args.batch, args.dim, args.size, args.size, generator=gen).to(device).requires_grad_()
    loss_fn = (lambda *t: lead_loss(*t, chunk_size=args.chunk)) if variant == "chunked" else lead_loss_naive
    result = {}

    def step():
        student.grad = None
        start = time.perf_counter()
        loss = loss_fn(student, torch.roll(student, 1, 0), teacher, teacher_tgt)
        loss.backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        result.setdefault("times", []).append(time.perf_counter() - start)
        result["loss"] = float(loss.detach())

    step()  # warm-up: kernels, library pages, allocator pools
    peaks = [_measure(step, device) for _ in range(args.repeats)]
    queue.put((variant, min(result["times"][1:]), max(peaks), result["loss"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=24)
    parser.add_argument("--teacher-dim", type=int, default=3840)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--chunk", type=int, default=DEFAULT_CHUNK)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    results = {}
    for variant in ("naive", "chunked"):
        queue = ctx.Queue()
        proc = ctx.Process(target=_run, args=(variant, args, queue))
        proc.start()
        name, seconds, peak, loss = queue.get()
        proc.join()
        results[name] = (seconds, peak, loss)
        print(f"{name:8s} time {seconds * 1000:8.1f} ms   extra peak memory {peak:8.1f} MiB   loss {loss:.6f}")
    (t_n, m_n, l_n), (t_c, m_c, l_c) = results["naive"], results["chunked"]
    print(f"batch {args.batch}, {args.size}x{args.size}, teacher {args.teacher_dim}-d, student {args.dim}-d, "
          f"chunk {args.chunk}, device {args.device}, threads {args.threads}")
    print(f"ratio naive/chunked: time {t_n / t_c:.2f}x   peak memory {m_n / max(m_c, 1e-9):.2f}x   "
          f"|loss difference| {abs(l_n - l_c):.2e}")


if __name__ == "__main__":
    main()
