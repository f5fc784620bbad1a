"""Landmark regression runs of one feature source on one dataset (all annotations, or every few-shot run)."""
from pathlib import Path

from lead_hsr.jobs import end_job, job_log
from lead_hsr.metrics.landmarks import regression_runs

with job_log(snakemake):
    # params.runs lists (annotations, seed) in the order of output.metrics (a list in both regression rules,
    # rules/landmarks.smk); each run also writes predictions.npy beside its metrics.json.
    outputs = {(str(count), int(seed)): Path(path)
               for (count, seed), path in zip(snakemake.params.runs, snakemake.output.metrics, strict=True)}
    regression_runs(Path(snakemake.input.weights), Path(snakemake.input.store), snakemake.params.normaliser, outputs,
                    snakemake.params.options)
end_job()  # outputs written and closed: skip interpreter shutdown (lead_hsr.jobs.end_job)
