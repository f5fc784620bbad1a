"""LEAD stage 2 (LEAD / CL / CL-on-FPN objectives, or NMF of the stage-1 hypercolumns)."""
from pathlib import Path

from lead_hsr.lead.stage2 import train_stage2
from lead_hsr.jobs import end_job, job_log, time_budget_from_runtime
from lead_hsr.train import ddp

with job_log(snakemake):  # one process per GPU the job was given (DDP), a single process on a CPU
    ddp.launch(train_stage2, ddp.processes_for(snakemake.resources.gpu), Path(snakemake.input.store),
               Path(snakemake.input.stage1), Path(snakemake.output.weights), snakemake.params.options,
               Path(snakemake.params.work_dir), time_budget_from_runtime(snakemake.resources.runtime),
               Path(snakemake.output.options))
end_job()  # outputs written and closed: skip interpreter shutdown (lead_hsr.jobs.end_job)
