"""Fig. 3.10: regression predictions across zoom-out factors of unaligned MAFL."""
from lead_hsr.jobs import end_job, job_log
from lead_hsr.metrics.lead_figures import scale_examples_figure_job

with job_log(snakemake):
    scale_examples_figure_job(dict(zip(snakemake.params.labels, snakemake.input.metrics)), snakemake.input.store,
                              snakemake.params.eyes, snakemake.output[0], snakemake.params.options)
end_job()  # outputs written and closed: skip interpreter shutdown (lead_hsr.jobs.end_job)
