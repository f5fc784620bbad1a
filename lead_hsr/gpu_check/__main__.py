"""`python -m lead_hsr.gpu_check`: measure this machine's GPU against the budget (docs/gpu_check.md)."""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import lead_hsr.gpu_check

DEFAULT_BUDGET_S = 480.0   # 8 minutes: what a borrowed GPU's first slot allows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lead_hsr.gpu_check",
                                     description=lead_hsr.gpu_check.__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/gpu_check"),
                        help="directory for gpu_check.md and gpu_check.json (default %(default)s)")
    parser.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S,
                        help="time budget in seconds; sections that no longer fit are listed as not run")
    parser.add_argument("--tiny", action="store_true", help="tiny shapes on the CPU (what the test suite runs)")
    args = parser.parse_args(argv)

    import torch

    from lead_hsr.gpu_check import runner, sections, shapes
    if args.tiny:
        device, chosen = torch.device("cpu"), shapes.tiny_shapes()
    elif torch.cuda.is_available():
        device, chosen = torch.device("cuda", 0), shapes.paper_shapes()
    else:
        print("no CUDA device visible: run on a GPU node, or add --tiny for the CPU check", file=sys.stderr)
        return 2
    ctx = runner.Context(device=device, shapes=chosen, budget_s=args.budget_s)
    tables = runner.run_sections(sections.sections(), ctx)
    elapsed = time.monotonic() - ctx.started
    preamble = [f"Shapes: {chosen.name}; device: {device}; {elapsed:.0f} s of a {args.budget_s:.0f} s budget. "
                "Projections: lead_hsr.budget (the probe's FLOPs at the assumed peak and utilisation; its peak "
                "memory in float32). Throughput: images/s or steps/s of the measured step."]
    text = runner.markdown("GPU check", preamble, tables, sections.COLUMNS)
    raw = {"shapes": dataclasses.asdict(chosen),
           "device": str(device), "budget_s": args.budget_s, "elapsed_s": elapsed, "sections": ctx.results,
           "section_order": list(ctx.results)}   # the JSON is written with sorted keys
    md, js = runner.write_outputs(args.out, text, raw)
    print(text)
    print(f"written: {md}, {js}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
