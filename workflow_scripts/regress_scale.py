"""Scale-sensitivity regression run of one feature source on unaligned MAFL (Figs. 3.9/3.10)."""
from pathlib import Path

from lead_hsr.jobs import end_job, job_log
from lead_hsr.metrics.scale import scale_run

with job_log(snakemake):
    scale_run(Path(snakemake.input.weights), Path(snakemake.input.store), Path(snakemake.output.metrics),
              snakemake.params.eyes, snakemake.params.options)
end_job()  # outputs written and closed: skip interpreter shutdown (lead_hsr.jobs.end_job)
