"""Landmark regression runs of one feature source on one dataset (all annotations, or every few-shot run)."""
import re
from pathlib import Path

from lead_hsr.jobs import job_log
from lead_hsr.metrics.landmarks import regression_runs

RUN = re.compile(r"annotations~([^/]+)/seed~([0-9]+)/metrics.json$")

with job_log(snakemake):
    outputs = {}
    for path in snakemake.output:
        annotations, seed = RUN.search(path).groups()
        outputs[(annotations, int(seed))] = Path(path)
    regression_runs(Path(snakemake.input.weights), Path(snakemake.input.store), snakemake.params.eyes, outputs,
                    snakemake.params.options)
