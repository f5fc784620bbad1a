"""Train one StyleGAN2-ADA run (a baseline's prefix, the rest of the baseline, or HSR from the prefix's snapshot)."""
from pathlib import Path

from lead_hsr.gan.training import train_gan
from lead_hsr.jobs import end_job, job_log, time_budget_from_runtime
from lead_hsr.train import ddp

with job_log(snakemake):  # one process per GPU the job was given (DDP), a single process on a CPU
    ddp.launch(train_gan, ddp.processes_for(snakemake.resources.gpu), Path(snakemake.input.store),
               Path(snakemake.output[0]).parent, snakemake.params.options, Path(snakemake.params.work_dir),
               time_budget_from_runtime(snakemake.resources.runtime))
end_job()  # outputs written and closed: skip interpreter shutdown (lead_hsr.jobs.end_job)
