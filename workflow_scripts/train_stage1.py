"""LEAD stage 1: BYOL / MoCo-v2 training, or the random-init baseline (BatchNorm statistics recomputed)."""
from pathlib import Path

from lead_hsr.lead.stage1 import train_stage1, write_random_init
from lead_hsr.jobs import end_job, job_log, time_budget_from_runtime
from lead_hsr.train import ddp

with job_log(snakemake):
    store, out = Path(snakemake.input[0]), Path(snakemake.output.weights)
    if snakemake.wildcards.stage1 == "random":
        write_random_init(store, out, snakemake.params.options, out_options=snakemake.output.options)
    else:  # one process per GPU the job was given (DDP), a single process on a CPU
        ddp.launch(train_stage1, ddp.processes_for(snakemake.resources.gpu), store, out, snakemake.params.options,
                   Path(snakemake.params.work_dir), time_budget_from_runtime(snakemake.resources.runtime),
                   Path(snakemake.output.options))
end_job()  # outputs written and closed: skip interpreter shutdown (lead_hsr.jobs.end_job)
