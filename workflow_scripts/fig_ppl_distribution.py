"""Fig. 4.2: per-sample PPL distributions of the baseline and the HSR run."""
from lead_hsr.jobs import end_job, job_log
from lead_hsr.metrics.ppl import ppl_distribution_figure

with job_log(snakemake):
    ppl_distribution_figure({"SG2-ADA": snakemake.input.baseline, "SG2-ADA + HSR": snakemake.input.hsr},
                            snakemake.output[0])
end_job()  # outputs written and closed: skip interpreter shutdown (lead_hsr.jobs.end_job)
