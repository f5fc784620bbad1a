"""Fig. 4.7: images of samples from the bottom 10%-ile by per-sample PPL, baseline vs HSR."""
from lead_hsr.jobs import end_job, job_log
from lead_hsr.metrics.gan_eval import runs_by_label
from lead_hsr.metrics.ppl import ppl_worst_figure

with job_log(snakemake):
    runs = runs_by_label(dict(snakemake.input.items()), snakemake.params.labels, ("network", "metrics", "distances"))
    ppl_worst_figure(runs, snakemake.output[0], snakemake.params.options)
end_job()  # outputs written and closed: skip interpreter shutdown (lead_hsr.jobs.end_job)
