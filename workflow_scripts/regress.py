"""Landmark regression runs of one feature source on one dataset (all annotations, or every few-shot run)."""
from pathlib import Path

from lead_hsr.jobs import job_log
from lead_hsr.metrics.landmarks import regression_runs

with job_log(snakemake):
    # params.runs lists (annotations, seed) in the order of output.metrics (rules/common.smk); each run also
    # writes predictions.npy beside its metrics.json. A single named output is a str, several a list.
    metrics = snakemake.output.metrics
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    outputs = {(str(count), int(seed)): Path(path) for (count, seed), path in zip(snakemake.params.runs, metrics,
                                                                                 strict=True)}
    regression_runs(Path(snakemake.input.weights), Path(snakemake.input.store), snakemake.params.eyes, outputs,
                    snakemake.params.options)
