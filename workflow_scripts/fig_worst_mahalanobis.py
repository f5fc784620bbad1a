"""Fig. 4.6: per dataset, the generated images farthest (Mahalanobis) from the real feature moments."""
from lead_hsr.jobs import end_job, job_log
from lead_hsr.metrics.gan_eval import runs_by_label
from lead_hsr.metrics.mahalanobis import mahalanobis_worst_figure

with job_log(snakemake):
    named = dict(snakemake.input.items())
    groups = {dataset: {"store": named[f"run{i}_store"],
                        "runs": {label: paths["network"] for label, paths in
                                 runs_by_label(named, labels, ("network",), f"run{i}_").items()}}
              for i, (dataset, labels) in enumerate(zip(snakemake.params.datasets, snakemake.params.labels))}
    mahalanobis_worst_figure(groups, snakemake.output[0], snakemake.params.options, snakemake.params.cache,
                             snakemake.params.weights_cache)
end_job()  # outputs written and closed: skip interpreter shutdown (lead_hsr.jobs.end_job)
