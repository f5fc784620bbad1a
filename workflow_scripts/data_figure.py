"""A grid of prepared images with their landmarks drawn: look before you train."""
from pathlib import Path

from lead_hsr.data.preview import store_preview
from lead_hsr.jobs import job_log

with job_log(snakemake):
    store_preview(Path(snakemake.input[0]), Path(snakemake.output[0]))
