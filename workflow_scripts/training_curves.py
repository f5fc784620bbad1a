"""Training curves of every run under the config's work_dir (its log.csv), one figure per run, for the report."""
from pathlib import Path

from lead_hsr.jobs import end_job, job_log
from lead_hsr.report.training_curves import write_training_curves
from lead_hsr.train.progress import LOG_NAME, curve_data, find_runs

with job_log(snakemake):
    root = Path(snakemake.params.work_dir)
    runs = {run.relative_to(root).as_posix(): curve_data(run) for run in find_runs(root)
            if (run / LOG_NAME).is_file()}
    write_training_curves(runs, Path(snakemake.output[0]))
end_job()  # outputs written and closed: skip interpreter shutdown (lead_hsr.jobs.end_job)
