"""Prepare one dataset from its raw layout into the prepared store (DESIGN §4.2)."""
from pathlib import Path

from lead_hsr.data.prepare_all import prepare
from lead_hsr.jobs import end_job, job_log

with job_log(snakemake):
    spec = snakemake.params.spec
    prepare(
        snakemake.params.preparer,
        raw_roots={k: Path(v) for k, v in snakemake.params.raw_roots.items()},
        out=Path(snakemake.output[0]),
        geometry=dict(snakemake.params.geometry),
        expected_counts=spec.get("expected_counts"),
        options=spec.get("options", {}),
        skip_corrupt=snakemake.params.skip_corrupt,
        seed=snakemake.params.seed,
    )
end_job()  # outputs written and closed: skip interpreter shutdown (lead_hsr.jobs.end_job)
