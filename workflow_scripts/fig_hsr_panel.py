"""Fig. 4.1: bottom-10%-ile PPL interpolations and attribute-edit transitions, baseline vs HSR."""
from lead_hsr.jobs import end_job, job_log
from lead_hsr.metrics.gan_eval import hsr_panel_figure, runs_by_label

with job_log(snakemake):
    named = dict(snakemake.input.items())
    hsr_panel_figure(runs_by_label(named, snakemake.params.labels, ("network", "metrics", "distances")),
                     {label: paths["network"] for label, paths in
                      runs_by_label(named, snakemake.params.als_labels, ("network",), "als_").items()},
                     snakemake.input.classifier, snakemake.output[0], snakemake.params.options)
end_job()  # outputs written and closed: skip interpreter shutdown (lead_hsr.jobs.end_job)
