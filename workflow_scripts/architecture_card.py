"""Parameter counts of a GAN preset and its HSR heads, built without any dataset."""
from lead_hsr.gan.arch_card import architecture_card
from lead_hsr.gan.hsr import HSRSpec
from lead_hsr.jobs import end_job, job_log
from lead_hsr.train import atomic_write_json

with job_log(snakemake):
    head_settings = {k: v for k, v in snakemake.params.hsr.items() if k in HSRSpec.__dataclass_fields__}
    card = architecture_card(snakemake.wildcards.preset, snakemake.params.extractors, hsr=head_settings)
    atomic_write_json(card, snakemake.output[0])
    print(card)
end_job()  # outputs written and closed: skip interpreter shutdown (lead_hsr.jobs.end_job)
