"""Snakemake's own plan of this workflow, through its Python API (the plan `snakemake -n` makes): the jobs a
target needs, built or not. Nothing here re-derives a path from the config.

`training_work_dirs(targets, ...)`: the work directory of every training job the targets need (a rule that trains
through `lead_hsr.train` names its work directory `params.work_dir`); the `training_curves` rule draws those runs
only, not whatever an earlier config left under `work_dir`.
"""
from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"


# Snakemake's public interfaces plan a DAG only to run or print it: the `snakemake.api.DAGApi` methods (printdag,
# printd3dag, summary, ...) build it, print and return nothing, and no listing they or the command line print
# (`-n`, `--summary`, `--detailed-summary`, `--d3dag`, `--dag`, `--filegraph`, `--export-cwl`) carries a job's params
# or the names of its inputs, which are the labels printed here (the table rule's `params.runs`: run key -> metric
# JSONs; the figure rules' named inputs). So `planned_dag` plans it as those methods do (`Workflow._prepare_dag`,
# `Workflow._build_dag`, the workflow reached through `WorkflowApi._workflow`) and reads the jobs' `input`,
# `output`, `params`, `wildcards` (what a rule's script sees as `snakemake.input`, ...). These are the internals;
# each is checked before use (`missing_snakemake_internals`, pinned by tests/workflow/test_runs.py), so an upgrade
# that moves one fails naming it; the tests there compare the rest with the public `snakemake -n`.
SNAKEMAKE_INTERNALS = (
    ("snakemake.api", "WorkflowApi", "_workflow"),
    ("snakemake.workflow", "Workflow", "_prepare_dag"),
    ("snakemake.workflow", "Workflow", "_build_dag"),
    ("snakemake.workflow", "Workflow", "dag"),
    ("snakemake.dag", "DAG", "jobs"),
    ("snakemake.dag", "DAG", "dependencies"),
    ("snakemake.dag", "DAG", "needrun"),
    *(("snakemake.jobs", "Job", name) for name in ("rule", "input", "output", "params", "wildcards")),
)
PREPARE_DAG_ARGUMENTS = {"forceall": False, "ignore_incomplete": True, "lock_warn_only": True}  # as DAGApi.printdag


def missing_snakemake_internals() -> list[str]:
    """The Snakemake internals `planned_dag` uses that the installed Snakemake lacks (empty: all there)."""
    missing = [f"{module}.{owner}.{name}" for module, owner, name in SNAKEMAKE_INTERNALS
               if not hasattr(getattr(importlib.import_module(module), owner, None), name)]
    if not missing:
        from snakemake.workflow import Workflow
        accepted = inspect.signature(Workflow._prepare_dag).parameters
        missing = [f"snakemake.workflow.Workflow._prepare_dag({name}=)" for name in PREPARE_DAG_ARGUMENTS
                   if name not in accepted]
    return missing


@contextmanager
def planned_dag(targets: Iterable[str] = (), *, config: Mapping | None = None, configfiles: Iterable[Path] = (),
                workdir: Path | None = None, snakefile: Path = SNAKEFILE):
    """Snakemake's DAG of `targets` (none: the default target), planned in `workdir` (default: here) with
    `configfiles` merged over config/config.yaml and then `config` (a whole config, e.g. a job's
    `snakemake.config`) over them, as the command line's --configfile and --config. Yields the DAG (its `jobs`)
    inside the API's context. Incomplete outputs and another Snakemake's lock are ignored: planning writes nothing,
    so it may run inside a job of the same workflow."""
    import snakemake
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (ConfigSettings, DAGSettings, OutputSettings, Quietness,
                                          ResourceSettings)

    missing = missing_snakemake_internals()
    if missing:
        raise RuntimeError(f"lead_hsr.dag plans Snakemake's DAG through internals this Snakemake "
                           f"({snakemake.__version__}) lacks: {', '.join(missing)}. Install the Snakemake "
                           f"envs/requirements.txt pins, or adapt lead_hsr/dag.py (planned_dag).")
    workdir = Path(workdir or Path.cwd()).resolve()
    with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
        settings = ConfigSettings(configfiles=[Path(f).resolve() for f in configfiles], config=dict(config or {}))
        workflow_api = api.workflow(resource_settings=ResourceSettings(), config_settings=settings,
                                    snakefile=Path(snakefile).resolve(), workdir=workdir)
        workflow_api.dag(DAGSettings(targets=set(targets)))
        workflow = workflow_api._workflow         # the internals (SNAKEMAKE_INTERNALS says why)
        workflow._prepare_dag(**PREPARE_DAG_ARGUMENTS)
        workflow._build_dag()
        yield workflow.dag


def training_work_dirs(targets: Iterable[str] = (), **plan) -> list[Path]:
    """The work directory (`params.work_dir`) of every job the DAG of `targets` holds, sorted: the training runs
    this config trains for them, finished or not. `plan`: `planned_dag`'s keywords."""
    with planned_dag(targets, **plan) as dag:
        return sorted({Path(params["work_dir"]) for params in (dict(job.params.items()) for job in dag.jobs)
                       if params.get("work_dir")})
