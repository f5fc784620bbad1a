"""LEAD stage 2 (LEAD / CL / CL-on-FPN objectives, or NMF of the stage-1 hypercolumns)."""
from pathlib import Path

from lead_hsr.lead.stage2 import train_stage2
from lead_hsr.jobs import job_log, time_budget_from_runtime

with job_log(snakemake):
    train_stage2(Path(snakemake.input.store), Path(snakemake.input.stage1), Path(snakemake.output.weights),
                 snakemake.params.options, Path(snakemake.params.work_dir),
                 time_budget_s=time_budget_from_runtime(snakemake.resources.runtime),
                 out_options=snakemake.output.options)
