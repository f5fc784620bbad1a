"""A grid of prepared images with their landmarks drawn: look before you train."""
from pathlib import Path

from lead_hsr.data.preview import store_preview
from lead_hsr.jobs import end_job, job_log

with job_log(snakemake):
    store_preview(Path(snakemake.input[0]), Path(snakemake.output[0]))
end_job()  # outputs written and closed: skip interpreter shutdown (lead_hsr.jobs.end_job)
