"""Which of the thesis's orderings hold in this run (config/tables.yaml `orderings:`)."""
from pathlib import Path

from lead_hsr.jobs import end_job, job_log
from lead_hsr.report.orderings import write_orderings
from lead_hsr.report.spec import load_tables

with job_log(snakemake):
    tables = load_tables(snakemake.params.tables_yaml)
    out_stem = Path(snakemake.output.csv).with_suffix("")
    write_orderings(snakemake.params.orderings, tables, snakemake.params.paths, out_stem,
                    footnote=snakemake.params.footnote)
end_job()  # outputs written and closed: skip interpreter shutdown (lead_hsr.jobs.end_job)
