"""Fig. 3.8: predictions of regressors trained with different numbers of annotations."""
from lead_hsr.jobs import end_job, job_log
from lead_hsr.metrics.lead_figures import annotations_figure_job

with job_log(snakemake):
    runs = [{"label": label, "metrics": metrics} for label, metrics in zip(snakemake.params.labels,
                                                                           snakemake.input.metrics)]
    annotations_figure_job(runs, snakemake.input.store, snakemake.params.eyes, snakemake.output[0],
                           snakemake.params.options)
end_job()  # outputs written and closed: skip interpreter shutdown (lead_hsr.jobs.end_job)
