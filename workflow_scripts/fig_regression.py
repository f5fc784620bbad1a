"""Fig. 3.7: regression predictions on test images of each landmark dataset."""
from lead_hsr.jobs import end_job, job_log
from lead_hsr.metrics.lead_figures import regression_figure_job

with job_log(snakemake):
    runs = [{"label": label, "store": store, "metrics": metrics, "dataset": dataset}
            for label, store, metrics, dataset in zip(snakemake.params.labels, snakemake.input.stores,
                                                      snakemake.input.metrics, snakemake.params.eyes)]
    regression_figure_job(runs, snakemake.output[0], snakemake.params.options)
end_job()  # outputs written and closed: skip interpreter shutdown (lead_hsr.jobs.end_job)
