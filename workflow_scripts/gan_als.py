"""Attribute Linearity Score of one GAN run (thesis Eq. 4.3-4.5)."""
from pathlib import Path

from lead_hsr.jobs import end_job, job_log
from lead_hsr.metrics.gan_eval import evaluate_als

with job_log(snakemake):
    evaluate_als(Path(snakemake.input.network), Path(snakemake.input.classifier), Path(snakemake.output[0]),
                 snakemake.params.options)
end_job()  # outputs written and closed: skip interpreter shutdown (lead_hsr.jobs.end_job)
