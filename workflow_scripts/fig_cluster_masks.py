"""Fig. 3.6: the k-means parts of Fig. 3.5 shown on reference images."""
from lead_hsr.jobs import end_job, job_log
from lead_hsr.metrics.lead_figures import cluster_masks_figure_job

with job_log(snakemake):
    cluster_masks_figure_job(snakemake.input.weights, snakemake.input.store, snakemake.output[0],
                             snakemake.params.options)
end_job()  # outputs written and closed: skip interpreter shutdown (lead_hsr.jobs.end_job)
