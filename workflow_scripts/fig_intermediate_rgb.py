"""Fig. 4.8: the generator's intermediate RGB outputs per resolution, baseline vs HSR."""
from lead_hsr.jobs import end_job, job_log
from lead_hsr.metrics.gan_eval import intermediate_rgb_figure, runs_by_label

with job_log(snakemake):
    runs = runs_by_label(dict(snakemake.input.items()), snakemake.params.labels, ("network",))
    intermediate_rgb_figure({label: paths["network"] for label, paths in runs.items()}, snakemake.output[0],
                            snakemake.params.options)
end_job()  # outputs written and closed: skip interpreter shutdown (lead_hsr.jobs.end_job)
