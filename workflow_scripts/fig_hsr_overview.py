"""Fig. 4.3: the HSR architecture of the configured HSR run, drawn from its options.json."""
from lead_hsr.jobs import end_job, job_log
from lead_hsr.metrics.gan_eval import hsr_overview_figure

with job_log(snakemake):
    hsr_overview_figure(snakemake.input.options, snakemake.output[0])
end_job()  # outputs written and closed: skip interpreter shutdown (lead_hsr.jobs.end_job)
