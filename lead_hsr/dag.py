"""Snakemake's own plan of this workflow, through its Python API (the plan `snakemake -n` makes): the jobs a
target needs, built or not. Nothing here re-derives a path from the config.

`training_work_dirs(targets, ...)`: the work directory of every training job the targets need (a rule that trains
through `lead_hsr.train` names its work directory `params.work_dir`); the `training_curves` rule draws those runs
only, not whatever an earlier config left under `work_dir`.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"


@contextmanager
def planned_dag(targets: Iterable[str] = (), *, config: Mapping | None = None, configfiles: Iterable[Path] = (),
                workdir: Path | None = None, snakefile: Path = SNAKEFILE):
    """Snakemake's DAG of `targets` (none: the default target), planned in `workdir` (default: here) with
    `configfiles` merged over config/config.yaml and then `config` (a whole config, e.g. a job's
    `snakemake.config`) over them, as the command line's --configfile and --config. Yields the DAG (its `jobs`)
    inside the API's context. Incomplete outputs and another Snakemake's lock are ignored: planning writes nothing,
    so it may run inside a job of the same workflow."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (ConfigSettings, DAGSettings, OutputSettings, Quietness,
                                          ResourceSettings)

    workdir = Path(workdir or Path.cwd()).resolve()
    with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
        settings = ConfigSettings(configfiles=[Path(f).resolve() for f in configfiles], config=dict(config or {}))
        workflow_api = api.workflow(resource_settings=ResourceSettings(), config_settings=settings,
                                    snakefile=Path(snakefile).resolve(), workdir=workdir)
        workflow_api.dag(DAGSettings(targets=set(targets)))
        # The API plans a DAG only to run or print it; its planner (what `snakemake -n` uses) is reached here.
        workflow = workflow_api._workflow
        workflow._prepare_dag(forceall=False, ignore_incomplete=True, lock_warn_only=True)
        workflow._build_dag()
        yield workflow.dag


def training_work_dirs(targets: Iterable[str] = (), **plan) -> list[Path]:
    """The work directory (`params.work_dir`) of every job the DAG of `targets` holds, sorted: the training runs
    this config trains for them, finished or not. `plan`: `planned_dag`'s keywords."""
    with planned_dag(targets, **plan) as dag:
        return sorted({Path(params["work_dir"]) for params in (dict(job.params.items()) for job in dag.jobs)
                       if params.get("work_dir")})
