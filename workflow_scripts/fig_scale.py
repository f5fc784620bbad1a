"""Fig. 3.9: IOD error per zoom-out bin (seen vs unseen scales) of each method."""
from lead_hsr.jobs import end_job, job_log
from lead_hsr.metrics.lead_figures import scale_figure_job

with job_log(snakemake):
    scale_figure_job(dict(zip(snakemake.params.labels, snakemake.input.metrics)), snakemake.output[0])
end_job()  # outputs written and closed: skip interpreter shutdown (lead_hsr.jobs.end_job)
