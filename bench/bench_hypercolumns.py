"""Benchmark: hypercolumns in channels-last memory (lead_hsr.lead.hypercolumns) vs the default NCHW layout.

Matching and regression descriptors spend most of their time upsampling ResNet stages to the crop size,
normalising each layer block per location and concatenating (the network itself is < 10% of matching).
Both variants compute the same values; the timing uses torch.utils.benchmark, the two measured side by side.
Prints seconds per call and the ratio NCHW / channels-last (goal > 1).

    .venv/bin/python bench/bench_hypercolumns.py [--arch resnet50] [--crop 96] [--batch 8] [--threads 1]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch.utils import benchmark

from lead_hsr.lead.backbones import build_backbone
from lead_hsr.lead.hypercolumns import hypercolumns


def hypercolumns_nchw(stages, size: int) -> torch.Tensor:
    """The same computation as `hypercolumns(stages, size, "layer")` in the default memory layout."""
    ups = [F.interpolate(s, size=(size, size), mode="bilinear", align_corners=False) for s in reversed(stages)]
    return torch.cat([F.normalize(u, dim=1) for u in ups], dim=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--crop", type=int, default=96)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.manual_seed(0)
    with torch.no_grad():
        stages = [s.contiguous() for s in build_backbone(args.arch).eval()(torch.randn(args.batch, 3, args.crop,
                                                                                       args.crop))]
    ours = hypercolumns(stages, args.crop, "layer")
    torch.testing.assert_close(ours, hypercolumns_nchw(stages, args.crop))
    timings = {}
    for label, stmt in (("NCHW", "hypercolumns_nchw(stages, crop)"),
                        ("channels-last", "hypercolumns(stages, crop, 'layer')")):
        timer = benchmark.Timer(stmt=stmt, num_threads=args.threads, label="hypercolumns", sub_label=label,
                                globals={"hypercolumns": hypercolumns, "hypercolumns_nchw": hypercolumns_nchw,
                                         "stages": stages, "crop": args.crop})
        timings[label] = timer.blocked_autorange(min_run_time=2.0).median
    print(f"{args.arch} hypercolumns ({ours.shape[1]}-d) of {args.batch} images at {args.crop}x{args.crop}, "
          f"{args.threads} thread(s)")
    for label, seconds in timings.items():
        print(f"  {label:14s} {seconds * 1e3:8.1f} ms per call")
    print(f"  ratio NCHW / channels-last: {timings['NCHW'] / timings['channels-last']:.2f}")


if __name__ == "__main__":
    main()
