"""Fig. 4.9 / 4.11: attribute scores along W interpolations / attribute edits (of sampled latents or projected photos)
with the images, baseline vs HSR."""
from lead_hsr.jobs import end_job, job_log
from lead_hsr.metrics.linearity_figures import linearity_figure
from lead_hsr.metrics.gan_eval import runs_by_label

with job_log(snakemake):
    runs = runs_by_label(dict(snakemake.input.items()), snakemake.params.labels, ("network",))
    linearity_figure({label: paths["network"] for label, paths in runs.items()}, snakemake.input.classifier,
                     snakemake.output[0], snakemake.params.options, snakemake.params.mode,
                     photos=snakemake.input.get("photos", []), weights_cache=snakemake.params.get("weights_cache"))
end_job()  # outputs written and closed: skip interpreter shutdown (lead_hsr.jobs.end_job)
