"""Fig. 3.4: landmark matching from an annotated reference into queries of increasing head yaw."""
from lead_hsr.jobs import end_job, job_log
from lead_hsr.metrics.lead_figures import matching_figure_job

with job_log(snakemake):
    matching_figure_job(dict(zip(snakemake.params.labels, snakemake.input.weights)), snakemake.input.store,
                        snakemake.output[0], snakemake.params.eyes, snakemake.params.options)
end_job()  # outputs written and closed: skip interpreter shutdown (lead_hsr.jobs.end_job)
