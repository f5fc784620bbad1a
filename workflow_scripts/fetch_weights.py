"""Fetch the configured pretrained weights the cache lacks (a localrule: runs on the login node)."""
import sys

from lead_hsr.errors import InputError
from lead_hsr.jobs import job_log
from lead_hsr.weights import fetch_all

try:
    with job_log(snakemake):
        for path in fetch_all(snakemake.params.names, snakemake.params.cache):
            print(path)
except InputError as error:
    print(f"\n{error}\n", file=sys.stderr)  # on the terminal too, not only in the log: the user must act on it
    sys.exit(1)
