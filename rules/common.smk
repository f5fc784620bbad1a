# Path helpers and config lookups shared by every rule file. No logic beyond building paths.
from pathlib import Path

from lead_hsr.data.registry import PREPARER_INPUTS, RAW_DATASETS, SYNTHETIC_DEPENDS

RESULTS = config["results"]
WORK = config["work_dir"]  # undeclared checkpoints and caches: Snakemake never deletes them on retry
SYNTHETIC = config.get("synthetic", {})
SCRIPTS = f"{workflow.basedir}/workflow_scripts"

wildcard_constraints:
    store="[^/]+",
    dataset="[^/]+",


localrules:
    all,
    data,


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


def synthetic_depends(dataset):
    """{'celeba_root': ...} for a synthetic dataset made from another one (MAFL lists CelebA files)."""
    base = SYNTHETIC_DEPENDS.get(dataset)
    return {f"{base}_root": raw_root(base)} if base else {}


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


# ---- LEAD ----
LEAD = config.get("lead", {})


def crop_size():
    """Side of the landmark crop (96 in the paper); feature sizes derive from it."""
    return config["geometry"]["resize"] - 2 * config["geometry"]["crop"]


def stage1_weights(stage1):
    return f"{RESULTS}/lead/stage1/stage1~{stage1}/weights.pt"


def stage2_weights(stage1, stage2, dim, proj):
    return f"{RESULTS}/lead/stage2/stage1~{stage1}/stage2~{stage2}/dim~{dim}/proj~{proj}/weights.pt"


def stage1_options(stage1):
    """Config `lead.stage1.common` + `lead.stage1.<objective>`, plus what the DAG decides (crop, seed)."""
    base = {**LEAD["stage1"]["common"], "crop": crop_size(), "seed": config["seed"]}
    if stage1 == "random":
        return {k: base[k] for k in ("arch", "crop", "seed", "device") if k in base}
    return {**base, **LEAD["stage1"].get(stage1, {}), "objective": stage1}


def stage2_options(stage2, dim, proj):
    opts = {**LEAD["stage2"]["common"], **LEAD["stage2"].get(stage2, {})}
    opts.update(objective=stage2, dim=int(dim), crop=crop_size(), seed=config["seed"])
    if stage2 == "lead":
        opts["proj_head"] = proj
    return opts


def gpu_resources(rule_name):
    """Per-rule GPU resources from config `resources.<rule>` (used by the Slurm profile; ignored locally)."""
    spec = config.get("resources", {}).get(rule_name, {})
    return {"gpu": spec.get("gpu", 1), "cpus_per_gpu": spec.get("cpus_per_gpu", 8),
            "mem_mb": spec.get("mem_mb", 32000), "runtime": spec.get("runtime", 24 * 60)}
