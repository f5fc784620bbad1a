"""A slice of the project's own workflow (Snakefile, config/demo.yaml) small enough for the Slurm tests: the
synthetic raw data and the two prepared stores it needs, LEAD stage 1 (BYOL), the three LEAD stage-2 runs, the
four regressor runs and the table that reads them, Table 3.7 (the cheapest table: 4 runs of one dataset).

`TINY` is a second config file merged over config/demo.yaml (Snakemake deep-merges --configfile files in order;
--config cannot do it: it reads nested values as strings, which the schema rejects). It shrinks the data and the
training so a run of the whole slice takes about a minute of CPU; the rules, scripts and library code are the
real ones. Stage 1 runs 40 steps of 8 images and checkpoints every 5 steps (its log.csv gets a row per step).
"""
import csv
import shutil
from pathlib import Path

import yaml

from lead_hsr.lead.arch import hypercolumn_dim
from slurm_helpers import LOCAL_PROFILE, REPO, SLURM_PROFILE, run_snakemake, snakemake_command

# The slice takes ~2 min through Slurm on a shared 2-core machine; bound it generously, but bound it.
SLICE_TIMEOUT_S = 600

DEMO_CONFIG = REPO / "config" / "demo.yaml"
RESULTS = yaml.safe_load(DEMO_CONFIG.read_text())["results"]
WORK = yaml.safe_load(DEMO_CONFIG.read_text())["work_dir"]
# stage-1 hypercolumn runs are named by their width (960 for the demo's resnet18)
HYPERCOLUMN_DIM = hypercolumn_dim(yaml.safe_load(DEMO_CONFIG.read_text())["lead"]["stage1"]["common"]["arch"])

STAGE1_STEPS = 40
STAGE1_CHECKPOINT_EVERY = 5
TINY = f"""
synthetic:
  datasets:
    celeba: {{counts: {{train: 600, val: 60, test: 60}}}}
    mafl: {{counts: {{train: 200, test: 50}}}}
    aflw_m: {{counts: {{train: 120, test: 40}}}}
prepared:
  celeba_ssl: {{expected_counts: {{train: 350}}}}   # CelebA train minus the MAFL images
  aflw_m: {{expected_counts: {{train: 120, test: 40}}}}
lead:
  stage1:
    common: {{batch: 8, checkpoint_every: {STAGE1_CHECKPOINT_EVERY}, log_every: 1}}
    byol: {{steps: {STAGE1_STEPS}}}
  stage2:
    common: {{steps: 3, batch: 4}}
  regression: {{steps: 10}}
"""
TINY_NAME = "tiny.yaml"

TABLE = "table_3.7"
TABLE_FILES = [f"{RESULTS}/tables/{TABLE}.{ext}" for ext in ("csv", "md", "tex")]
STAGE1 = f"{RESULTS}/lead/stage1/stage1~byol/weights.pt"
STAGE1_FILES = [STAGE1, STAGE1.replace(".pt", ".json")]
STAGE1_WORK = f"{WORK}/lead/stage1/stage1~byol"           # undeclared: checkpoint.pt and log.csv live here
STAGE1_LOG = f"{RESULTS}/logs/lead/stage1~byol.log"        # the rule's log (the trainer's stderr)
STORES = ("celeba_ssl", "aflw_m")
STORE_FILES = ("images.npy", "landmarks.npy", "table.csv", "manifest.json")
DATA = [f"{RESULTS}/data/prepared/{store}/{name}" for store in STORES for name in STORE_FILES]
DIMS = (64, 128, 256)
STAGE2 = [f"{RESULTS}/lead/stage2/stage1~byol/stage2~lead/dim~{dim}/proj~256/weights.pt" for dim in DIMS]
REGRESSIONS = [f"{RESULTS}/lead/regression/{source}/dataset~aflw_m/annotations~all/seed~0/metrics.json"
               for source in [f"stage1~byol/stage2~none/dim~{HYPERCOLUMN_DIM}/proj~none",
                              *(f"stage1~byol/stage2~lead/dim~{dim}/proj~256" for dim in DIMS)]]
# Every output of the slice that must be byte-identical between a Slurm and a local run.
OUTPUTS = [*DATA, *STAGE1_FILES, *STAGE2, *REGRESSIONS, *TABLE_FILES]


def prepare_workdir(workdir: Path) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / TINY_NAME).write_text(TINY)
    return workdir


def config_args(workdir: Path) -> list:
    return ["--configfile", DEMO_CONFIG, workdir / TINY_NAME]  # nargs="+": keep it last on the command line


def run_slice(workdir: Path, *targets: str, profile: Path = SLURM_PROFILE, options: tuple = ()):
    return run_snakemake(workdir, *options, *targets, *config_args(workdir), profile=profile,
                         snakefile=REPO / "Snakefile", timeout_s=SLICE_TIMEOUT_S)


def slice_command(workdir: Path, *targets: str, profile: Path = SLURM_PROFILE, options: tuple = ()) -> list:
    return [str(c) for c in snakemake_command(workdir, profile, *options, *targets, *config_args(workdir),
                                              snakefile=REPO / "Snakefile", timeout_s=SLICE_TIMEOUT_S)]


def run_local(workdir: Path, *targets: str):
    return run_slice(workdir, *targets, profile=LOCAL_PROFILE)


def copy_prepared_data(source: Path, workdir: Path) -> Path:
    """A new workdir holding `source`'s raw data, prepared stores and Snakemake metadata, nothing else: only
    the jobs after data preparation need to run there. Modification times are kept (shutil.copy2)."""
    prepare_workdir(workdir)
    for rel in (yaml.safe_load(DEMO_CONFIG.read_text())["synthetic"]["root"], f"{RESULTS}/data", ".snakemake"):
        shutil.copytree(source / rel, workdir / rel, symlinks=True, ignore=shutil.ignore_patterns("locks", "log"))
    return workdir


def stage1_log_rows(workdir: Path) -> list[dict]:
    """The rows of the trainer's own log.csv (one per step, time_s counted from the start of each attempt)."""
    with open(workdir / STAGE1_WORK / "log.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def resumed_at(rows: list[dict]) -> list[int]:
    """Steps every later attempt started from, read from log.csv: each attempt restarts its clock, and on resume
    the trainer drops the rows past its checkpoint, so a restart shows as time_s falling after that step."""
    starts = []
    for before, row in zip(rows, rows[1:]):
        if float(row["time_s"]) < float(before["time_s"]):
            starts.append(int(before["step"]))
    return starts
