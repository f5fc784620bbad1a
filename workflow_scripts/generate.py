"""Images, a grid, a truncation sweep, style mixing or an interpolation video of a network (rules/use_gan.smk)."""
from lead_hsr.gan.generate import generate_product
from lead_hsr.jobs import end_job, job_log

with job_log(snakemake):
    written = generate_product(snakemake.params.product, snakemake.input.network, snakemake.output[0],
                               snakemake.params.options)
    print(f"wrote {len(written)} file(s): {written[-1]}")
end_job()  # outputs written and closed: skip interpreter shutdown (lead_hsr.jobs.end_job)
