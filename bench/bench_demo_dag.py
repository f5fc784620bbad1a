"""Benchmark: the demo DAG's parts -- per-job import cost and CPU time per rule family -- so the next regression
is seen. It does not run the demo: point it at a results directory a demo run left behind.

1. Import cost per job: for each workflow script (workflow_scripts/*.py), its module-level imports are run in a
   fresh interpreter (what every Snakemake job of that script pays before doing any work), `--repeats` times;
   the median CPU seconds (user + sys of the child, resource.getrusage) is printed with the heavy packages the
   imports pulled in. Scripts with the same import lines are timed once.
2. CPU time per rule family, summed from the Snakemake benchmark files of a results directory
   (<results>/benchmarks/**/*.tsv: columns s, cpu_time, max_rss, ...): jobs, CPU seconds, wall seconds,
   largest max_rss, and each family's share. A family is the benchmark path without its wildcards
   (lead/regression, lead/stage1, hsr/train, figures/fig, ...). Beside the benchmark's CPU seconds ("sampled"),
   the job's own count ("job CPU"): the last line `lead_hsr.jobs.job_log` writes to the job's log
   (<results>/logs/<same path>.log). Snakemake samples CPU every 0.5 s for 30 samples, then every 30 s, so its
   figure misses up to 30 s of every job longer than 15 s; the job's own getrusage misses nothing.

CPU seconds, not wall time: the figures stay meaningful on a shared machine.

    .venv/bin/python bench/bench_demo_dag.py [--results results/demo] [--repeats 5] [--scripts regress,train_gan]
    .venv/bin/python bench/bench_demo_dag.py --results results/demo --no-imports
"""
from __future__ import annotations

import argparse
import ast
import csv
import os
import re
import resource
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from lead_hsr.jobs import parse_job_cpu

ROOT = Path(__file__).resolve().parents[1]
# Packages whose presence after a job's imports explains its cost (reported per script).
HEAVY_PACKAGES = ("torch", "torchvision", "torch._dynamo", "timm", "pandas", "scipy", "sklearn", "matplotlib",
                  "PIL", "lpips", "torch_fidelity")


def module_level_imports(script: Path) -> list[str]:
    """The script's top-level import statements, as source lines (what runs before its first line of work)."""
    tree = ast.parse(script.read_text(), filename=str(script))
    return [ast.unparse(node) for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]


def child_cpu_seconds(code: str, root: Path = ROOT) -> tuple[float, str]:
    """CPU seconds (user + sys) of a fresh interpreter running `code` with `root` first on the path, and its
    stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = dict(os.environ, PYTHONPATH=str(root), OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, check=True, capture_output=True,
                         text=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), out


def import_costs(scripts: list[Path], repeats: int) -> list[tuple[str, float, str]]:
    report = "import sys; print(' '.join(p for p in %r if p in sys.modules))" % (HEAVY_PACKAGES,)
    by_imports: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for script in scripts:
        by_imports[tuple(module_level_imports(script))].append(script.stem)
    rows = [("(python -c pass)", statistics.median(child_cpu_seconds("pass")[0] for _ in range(repeats)), "")]
    for lines, names in by_imports.items():
        code = "\n".join([*lines, report])
        runs = [child_cpu_seconds(code) for _ in range(repeats)]
        rows.append((", ".join(names), statistics.median(r[0] for r in runs), runs[0][1].strip()))
    return rows


def rule_family(relative: Path) -> str:
    """lead/regression/<wildcards>.tsv -> lead/regression; lead/stage1~byol.tsv -> lead/stage1;
    figures/fig_4.2.tsv -> figures/fig."""
    parts = relative.with_suffix("").parts
    if len(parts) >= 3:
        return f"{parts[0]}/{parts[1]}"
    if len(parts) == 2:
        return f"{parts[0]}/{re.split(r'[~_]', parts[1])[0]}"
    return parts[0]


def job_cpu_from_log(results: Path, benchmark: Path) -> float | None:
    """The job's own CPU seconds from the log beside its benchmark file (None: no log, or written before
    job_log recorded it)."""
    log = (results / "logs" / benchmark.relative_to(results / "benchmarks")).with_suffix(".log")
    return parse_job_cpu(log.read_text(errors="replace")) if log.is_file() else None


def read_benchmarks(results: Path) -> list[dict]:
    """One row per benchmark file: family, file, s, cpu_time, max_rss (MB), summed over the file's rows
    (Snakemake writes one row per repetition; a retried job's file holds its last attempt), and job_cpu (the
    job's own count from its log; the sampled cpu_time where the log has none)."""
    root = results / "benchmarks"
    if not root.is_dir():
        raise SystemExit(f"{root}: no benchmarks directory; run the demo first (make demo) or pass --results")
    rows = []
    for tsv in sorted(root.rglob("*.tsv")):
        with tsv.open() as fh:
            records = list(csv.DictReader(fh, delimiter="\t"))
        if not records:
            continue

        def total(col: str) -> float:
            return sum(float(r[col]) for r in records if r.get(col) not in (None, "", "NA", "-"))
        rss = [float(r["max_rss"]) for r in records if r.get("max_rss") not in (None, "", "NA", "-")]
        own = job_cpu_from_log(results, tsv)
        rows.append(dict(family=rule_family(tsv.relative_to(root)), file=str(tsv.relative_to(root)),
                         s=total("s"), cpu_time=total("cpu_time"), max_rss=max(rss, default=0.0),
                         job_cpu=total("cpu_time") if own is None else own, from_log=own is not None))
    return rows


def print_families(rows: list[dict], top: int) -> None:
    families: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        families[r["family"]].append(r)
    total_cpu = sum(r["job_cpu"] for r in rows) or 1.0
    print(f"{'rule family':28s} {'jobs':>5s} {'job CPU s':>9s} {'share':>6s} {'sampled':>9s} {'wall s':>9s} "
          f"{'max RSS MB':>10s}")
    for name, group in sorted(families.items(), key=lambda kv: -sum(r["job_cpu"] for r in kv[1])):
        cpu = sum(r["job_cpu"] for r in group)
        print(f"{name:28s} {len(group):5d} {cpu:9.1f} {100 * cpu / total_cpu:5.1f}% "
              f"{sum(r['cpu_time'] for r in group):9.1f} {sum(r['s'] for r in group):9.1f} "
              f"{max(r['max_rss'] for r in group):10.0f}")
    print(f"{'total':28s} {len(rows):5d} {total_cpu:9.1f} {'100%':>6s} {sum(r['cpu_time'] for r in rows):9.1f} "
          f"{sum(r['s'] for r in rows):9.1f}")
    missing = sum(not r["from_log"] for r in rows)
    if missing:
        print(f"({missing} jobs have no job CPU line in their log: their sampled figure is counted)")
    print(f"\ncostliest {top} jobs (job CPU s):")
    for r in sorted(rows, key=lambda r: -r["job_cpu"])[:top]:
        print(f"  {r['job_cpu']:8.1f}  {r['file']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, help="a results directory holding benchmarks/ (e.g. results/demo)")
    parser.add_argument("--repeats", type=int, default=5, help="fresh interpreters per import measurement")
    parser.add_argument("--scripts", help="comma-separated workflow script names (default: all)")
    parser.add_argument("--no-imports", action="store_true", help="skip the import-cost measurement")
    parser.add_argument("--top", type=int, default=10, help="costliest jobs listed")
    args = parser.parse_args()
    if not args.no_imports:
        scripts = sorted((ROOT / "workflow_scripts").glob("*.py"))
        if args.scripts:
            wanted = set(args.scripts.split(","))
            scripts = [s for s in scripts if s.stem in wanted]
        print(f"import cost per job (median CPU s of {args.repeats} fresh interpreters, user + sys):")
        for names, cpu, heavy in import_costs(scripts, args.repeats):
            print(f"  {cpu:6.2f}  {names:60s} {heavy}")
        print()
    if args.results is not None:
        print(f"CPU time per rule family, from {args.results}/benchmarks:")
        print_families(read_benchmarks(args.results), args.top)


if __name__ == "__main__":
    main()
