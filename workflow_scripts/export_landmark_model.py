"""A regression run exported as one landmark model file + MODEL_CARD.md (rules/use_lead.smk)."""
from lead_hsr.jobs import end_job, job_log
from lead_hsr.metrics.landmark_model import export

with job_log(snakemake):
    export(snakemake.input.weights, snakemake.input.metrics, snakemake.input.store, snakemake.output.model,
           snakemake.params.normaliser, snakemake.params.geometry, snakemake.wildcards.dataset,
           snakemake.params.config_files)
end_job()  # outputs written and closed: skip interpreter shutdown (lead_hsr.jobs.end_job)
