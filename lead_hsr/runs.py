"""Which runs a table or figure reads, and where their results are.

    python -m lead_hsr.runs [--configfile FILE]... TARGET...

prints, for each table or figure target, every result it reads (one line per run: the table row it fills,
the rule that writes it, whether it is built, its path), so a single row can be rebuilt with
`snakemake <path> --forcerun <rule>`. The DAG is Snakemake's own, planned exactly as `snakemake -n` would
plan it (`lead_hsr.dag.planned_dag`: its Python API and, where that stops, its internals); nothing
here re-derives a path.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from lead_hsr.dag import planned_dag
from lead_hsr.report.spec import cell_run, load_tables, run_key

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class RunResult:
    label: str  # the table rows it fills, or the figure rule's input name
    rule: str  # the rule that writes it: the one to --forcerun
    built: bool  # False: missing or out of date (a run of the DAG would (re)build it)
    path: str


def row_labels(tables_yaml: str | Path, table_id: str) -> dict[str, str]:
    """run key -> the labels of the table rows (and columns, where they are other runs) that read it."""
    spec = load_tables(tables_yaml)[table_id]
    labels: dict[str, list[str]] = {}
    for row in spec["rows"]:
        if row.get("quoted"):
            continue
        for column in spec["columns"]:
            label = " | ".join(str(part) for part in row["label"])
            if column.get("run"):  # columns that are runs of their own (datasets, counts, ...)
                label += f" [{column.get('label', column['name'])}]"
            names = labels.setdefault(run_key(cell_run(row, column)), [])
            if label not in names:
                names.append(label)
    return {key: "; ".join(names) for key, names in labels.items()}


def _input_labels(job) -> dict[str, str]:
    """path -> label of each input of the job that builds a target."""
    params = dict(job.params.items())
    if "runs" in params and "tables_yaml" in params:  # the table rule: run key -> metric JSONs
        labels = row_labels(params["tables_yaml"], job.wildcards.table)
        return {path: labels.get(key, key) for key, paths in params["runs"].items() for path in paths}
    named = {}
    for name, value in job.input.items():
        for path in [value] if isinstance(value, str) else value:
            named[path] = name
    return named


def needed_runs(targets: list[str], configfiles: list[Path] = (), workdir: Path | None = None,
                snakefile: Path = REPO / "Snakefile") -> dict[str, list[RunResult]]:
    """target -> the results its job reads, each with the rule that writes it, in the job's input order."""
    with planned_dag(targets, configfiles=configfiles, workdir=workdir, snakefile=snakefile) as dag:
        found = {}
        for target in targets:
            job = next((job for job in dag.jobs if target in job.output), None)
            if job is None:
                raise ValueError(f"{target}: no job of the DAG writes it (a source file?); name a table or figure")
            labels = _input_labels(job)
            producers = {path: dep for dep, paths in dag.dependencies[job].items() for path in paths}
            found[target] = [RunResult(labels.get(path, ""), producers[path].rule.name,
                                       not dag.needrun(producers[path]), path)
                             for path in job.input if path in producers]
        return found


def format_runs(target: str, runs: list[RunResult]) -> str:
    width = max((len(run.label) for run in runs), default=0)
    rule_width = max((len(run.rule) for run in runs), default=0)
    lines = [f"{target} reads {len(runs)} results:"]
    for run in runs:
        lines.append(f"  {run.label:<{width}}  {run.rule:<{rule_width}}  {'built  ' if run.built else 'missing'}  "
                     f"{run.path}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lead_hsr.runs", description=__doc__.split("\n\n")[0],
        epilog="Rebuild one of them: snakemake [--profile ...] <path> --forcerun <rule> (targets first).")
    parser.add_argument("targets", nargs="+", help="table or figure paths, e.g. results/paper/tables/table_3.3.md")
    parser.add_argument("--configfile", action="append", default=[], type=Path,
                        help="config file merged over config/config.yaml, as for snakemake (once per file)")
    parser.add_argument("--directory", type=Path, default=None, help="working directory (default: here)")
    args = parser.parse_args(argv)
    try:
        found = needed_runs(args.targets, args.configfile, args.directory)
    except Exception as error:  # Snakemake's own exceptions (a target no rule makes, a config error)
        print(f"python -m lead_hsr.runs: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print("\n\n".join(format_runs(target, runs) for target, runs in found.items()))
    print("\nrebuild one: snakemake [--profile ...] <path> --forcerun <rule>   (targets before --forcerun)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
