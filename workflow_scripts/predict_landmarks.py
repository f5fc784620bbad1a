"""Landmarks on one configured folder of images with an exported model (rules/use_lead.smk)."""
from lead_hsr.jobs import end_job, job_log
from lead_hsr.lead.predict import run

with job_log(snakemake):
    boxes = snakemake.input.boxes or None  # an empty input list when the entry has no box file
    print(run(snakemake.input.model, snakemake.input.images, snakemake.output.csv, boxes,
              device=snakemake.params.device))
end_job()  # outputs written and closed: skip interpreter shutdown (lead_hsr.jobs.end_job)
