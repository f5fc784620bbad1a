"""Landmark matching (same / different identity pairs) of one feature source on MAFL test."""
from pathlib import Path

from lead_hsr.jobs import end_job, job_log
from lead_hsr.metrics.landmarks import matching_run

with job_log(snakemake):
    matching_run(Path(snakemake.input.weights), Path(snakemake.input.store), Path(snakemake.output[0]),
                 snakemake.params.options)
end_job()  # outputs written and closed: skip interpreter shutdown (lead_hsr.jobs.end_job)
