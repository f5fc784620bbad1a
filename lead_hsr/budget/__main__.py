"""`python -m lead_hsr.budget`: the GPU budget of a configuration as Markdown (docs/budget.md)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import lead_hsr.budget
from lead_hsr.budget.dry_run import REPO
from lead_hsr.budget.estimate import DEFAULT_GPU, DEFAULT_UTILISATION, GPU_PEAK_TFLOPS, budget


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lead_hsr.budget",
                                     description=lead_hsr.budget.__doc__.split("\n")[0])
    parser.add_argument("--configfile", type=Path, default=REPO / "config" / "config.yaml")
    parser.add_argument("--gpu", default=DEFAULT_GPU, choices=sorted(GPU_PEAK_TFLOPS))
    parser.add_argument("--utilisation", type=float, default=DEFAULT_UTILISATION,
                        help="fraction of the dense peak reached (default %(default)s)")
    parser.add_argument("--out", type=Path, help="also write the Markdown table here (atomically)")
    args = parser.parse_args(argv)
    text = budget(args.configfile, args.gpu, args.utilisation)
    if args.out:
        from lead_hsr.atomic import atomic_write_text
        atomic_write_text(text, args.out)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
