"""Aggregate one thesis table from its runs' metric JSONs (spec in config/tables.yaml)."""
from pathlib import Path

from lead_hsr.jobs import end_job, job_log
from lead_hsr.report.tables import report_table

with job_log(snakemake):
    stem = Path(snakemake.output.csv).with_suffix("")
    report_table(snakemake.params.tables_yaml, snakemake.wildcards.table, snakemake.params.runs, stem,
                 footnote=snakemake.params.footnote)
end_job()  # outputs written and closed: skip interpreter shutdown (lead_hsr.jobs.end_job)
