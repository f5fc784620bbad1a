"""FID, precision/recall and PPL of one GAN run."""
from pathlib import Path

from lead_hsr.jobs import end_job, job_log
from lead_hsr.metrics.gan_eval import evaluate_gan

with job_log(snakemake):
    evaluate_gan(Path(snakemake.input.network), Path(snakemake.input.store), Path(snakemake.output.metrics),
                 snakemake.params.options, Path(snakemake.params.cache), Path(snakemake.params.weights_cache))
end_job()  # outputs written and closed: skip interpreter shutdown (lead_hsr.jobs.end_job)
