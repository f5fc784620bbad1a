"""Fig. 3.6: the k-means parts of Fig. 3.5 shown on reference images."""
from lead_hsr.jobs import job_log
from lead_hsr.metrics.lead_figures import cluster_masks_figure_job

with job_log(snakemake):
    cluster_masks_figure_job(snakemake.input.weights, snakemake.input.store, snakemake.output[0],
                             snakemake.params.options)
