# Path helpers and config lookups shared by every rule file. No logic beyond building paths.
from pathlib import Path

from lead_hsr.data.registry import PREPARER_INPUTS, RAW_DATASETS

RESULTS = config["results"]
WORK = config["work_dir"]  # undeclared checkpoints and caches: Snakemake never deletes them on retry
SYNTHETIC = config.get("synthetic", {})
SCRIPTS = f"{workflow.basedir}/workflow_scripts"

wildcard_constraints:
    store="[^/]+",
    dataset="[^/]+",


localrules:
    all,


def raw_root(dataset):
    """Root of a raw dataset: the synthetic tree when the config renders it, otherwise `raw.<name>.root`."""
    if dataset in SYNTHETIC.get("datasets", {}):
        return f"{SYNTHETIC['root']}/{dataset}"
    try:
        return config["raw"][dataset]["root"]
    except KeyError:
        raise ValueError(
            f"config: raw dataset '{dataset}' has no root; set raw.{dataset}.root to the directory holding "
            f"the official layout, or list it under synthetic.datasets (see config/README.md)"
        )


def prepared(store):
    """Directory of a prepared store (DESIGN §4.2)."""
    return f"{RESULTS}/data/prepared/{store}"


def preparer_of(store):
    return config["prepared"][store]["preparer"]


def raw_inputs(store):
    """Synthetic trees are produced by the DAG, so they are inputs; real roots are checked by the job itself."""
    needed = PREPARER_INPUTS[preparer_of(store)]
    return [raw_root(d) for d in needed if d in SYNTHETIC.get("datasets", {})]


def raw_roots_of(store):
    return {d: raw_root(d) for d in PREPARER_INPUTS[preparer_of(store)]}


def log_path(*parts):
    return str(Path(RESULTS, "logs", *parts)) + ".log"


def bench_path(*parts):
    return str(Path(RESULTS, "benchmarks", *parts)) + ".tsv"


def data_targets():
    stores = list(config["prepared"])
    return [prepared(s) for s in stores] + [f"{RESULTS}/figures/data_{s}.png" for s in stores]


def all_targets():
    return data_targets()
