"""Render one raw dataset of the built-in synthetic data in its official layout."""
from pathlib import Path

from lead_hsr.data.synthetic import write_dataset
from lead_hsr.jobs import end_job, job_log

with job_log(snakemake):
    spec = snakemake.params.spec
    written = write_dataset(
        snakemake.wildcards.dataset,
        Path(snakemake.output[0]),
        counts=spec["counts"],
        seed=snakemake.params.seed,
        image_size=spec.get("image_size"),
        **{key: Path(path) for key, path in snakemake.input.items()},
    )
    print(f"wrote {snakemake.wildcards.dataset}: {written}")
end_job()  # outputs written and closed: skip interpreter shutdown (lead_hsr.jobs.end_job)
