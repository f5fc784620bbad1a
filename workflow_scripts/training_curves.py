"""Training curves of every run this config's DAG trains (each one's log.csv), one figure per run, for the report."""
from pathlib import Path

from lead_hsr.dag import training_work_dirs
from lead_hsr.jobs import end_job, job_log
from lead_hsr.report.training_curves import write_training_curves
from lead_hsr.train.progress import run_curves

with job_log(snakemake):
    # the DAG of this job's inputs, planned again by Snakemake with this job's config: its training jobs' work dirs
    runs = training_work_dirs(list(snakemake.input), config=snakemake.config, snakefile=snakemake.params.snakefile)
    write_training_curves(run_curves(runs, Path(snakemake.params.work_root)), Path(snakemake.output[0]))
end_job()  # outputs written and closed: skip interpreter shutdown (lead_hsr.jobs.end_job)
