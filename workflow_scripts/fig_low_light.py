"""Fig. 3.11: regression predictions on the darkest test images."""
from lead_hsr.jobs import end_job, job_log
from lead_hsr.metrics.lead_figures import low_light_figure_job

with job_log(snakemake):
    low_light_figure_job(snakemake.input.store, snakemake.input.metrics, snakemake.params.eyes,
                         snakemake.output[0], snakemake.params.options)
end_job()  # outputs written and closed: skip interpreter shutdown (lead_hsr.jobs.end_job)
