"""Import a released StyleGAN2-ADA / HSR training pickle into our network.pt (nothing in the pickle is executed)."""
import json

from lead_hsr.gan.checkpoints import import_file
from lead_hsr.jobs import end_job, job_log

with job_log(snakemake):
    print(json.dumps(import_file(snakemake.input[0], snakemake.output[0], snakemake.params.expect_preset,
                                 snakemake.params.drop_hsr_heads), indent=1))
end_job()  # outputs written and closed: skip interpreter shutdown (lead_hsr.jobs.end_job)
