"""Fig. 3.5: t-SNE of stage-1 feature maps, coloured by k-means parts."""
from lead_hsr.jobs import end_job, job_log
from lead_hsr.metrics.lead_figures import tsne_figure_job

with job_log(snakemake):
    tsne_figure_job(dict(zip(snakemake.params.labels, snakemake.input.weights)), snakemake.input.store,
                    snakemake.output[0], snakemake.params.options)
end_job()  # outputs written and closed: skip interpreter shutdown (lead_hsr.jobs.end_job)
