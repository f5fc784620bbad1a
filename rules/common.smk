# Path helpers and config lookups shared by every rule file. No logic beyond building paths.
from pathlib import Path

from lead_hsr.config import key_source, rule_resources
from lead_hsr.data.layouts import GENERATED_SOURCE, RawRoots, source_photos
from lead_hsr.data.registry import OWN_DATA_PREPARERS, PREPARER_INPUTS, RAW_DATASETS, SYNTHETIC_DEPENDS
from lead_hsr.errors import InputError

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
    own_data,
    table,
    training_curves,
    fetch_weights,


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


def own_data_paths(store):
    """Your own data (`image_folder*` preparers): {"images": ..., "landmarks": ...} from the store's entry."""
    spec = config["prepared"][store]
    return {key: spec[key] for key in OWN_DATA_PREPARERS[preparer_of(store)] if key in spec}


def raw_inputs(store):
    """Synthetic trees are produced by the DAG, so they are inputs; real roots are checked now, as the DAG is built.
    Own image folders / landmark files are inputs too: editing them reruns the preparation."""
    if preparer_of(store) in OWN_DATA_PREPARERS:
        return list(own_data_paths(store).values())
    RAW_ROOTS.check(store)
    needed = PREPARER_INPUTS[preparer_of(store)]
    return [raw_root(d) for d in needed if d in SYNTHETIC.get("datasets", {})]


def raw_config_file(dataset):
    """Where `raw.<dataset>.root` is set (config file relative to the repository, or --config)."""
    source = key_source(("raw", dataset, "root"), f"{workflow.basedir}/config/config.yaml",
                        workflow.config_settings.configfiles, workflow.config_settings.config)
    try:
        return Path(source).resolve().relative_to(Path(workflow.basedir).resolve()).as_posix()
    except (ValueError, OSError):
        return source


# which raw data each store lacks (lead_hsr.data.layouts; LEAD_HSR_SKIP_RAW_CHECK=1 skips the check)
RAW_ROOTS = RawRoots({s: preparer_of(s) for s in config["prepared"]}, prepared, raw_root,
                     set(SYNTHETIC.get("datasets", {})), raw_config_file)


def raw_roots_of(store):
    if preparer_of(store) in OWN_DATA_PREPARERS:
        return own_data_paths(store)
    return {d: raw_root(d) for d in PREPARER_INPUTS[preparer_of(store)]}


def own_table_targets():
    """Every table of `report.own_tables` (part of `all` and `own_data`)."""
    return [path for table_id, file in TABLE_FILES.items() if file != TABLES_YAML for path in table_outputs(table_id)]


def own_data_targets():
    """Every prepared store of your own data, its preview, and the own tables (`snakemake own_data`)."""
    stores = [s for s in config["prepared"] if preparer_of(s) in OWN_DATA_PREPARERS]
    return [prepared(s) for s in stores] + [f"{RESULTS}/figures/data_{s}.png" for s in stores] + own_table_targets()


def log_path(*parts):
    return f"{Path(RESULTS, 'logs', *parts)}.log"


def bench_path(*parts):
    return f"{Path(RESULTS, 'benchmarks', *parts)}.tsv"


def data_targets():
    stores = list(config["prepared"])
    return [prepared(s) for s in stores] + [f"{RESULTS}/figures/data_{s}.png" for s in stores]




# ---- LEAD ----
from lead_hsr.lead.arch import DEFAULT_ARCH, feature_dim

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


def stage1_arch(stage1):
    return stage1_options(stage1).get("arch", DEFAULT_ARCH)


def feature_weights(w):
    """Weights of a feature source: the stage-1 network for its hypercolumns, else the stage-2 model."""
    if w.stage2 == "none":
        feature_dim("none", w.dim, stage1_arch(w.stage1))  # dim~ must be the real hypercolumn width
        return stage1_weights(w.stage1)
    return stage2_weights(w.stage1, w.stage2, w.dim, w.proj)


def landmark_normaliser(dataset):
    """`lead.datasets.<name>.normaliser` ({pair: [i, j]} or box); absent: the store's protocol eye pair (metrics.iod)."""
    spec = LEAD["datasets"][dataset]
    return spec.get("normaliser", spec["store"])


def regression_options():
    return {**LEAD["regression"], "crop": config["geometry"]["crop"]}


def fewshot_runs():
    """Every few-shot run of one feature source and dataset: (count, seed) pairs (config `lead.fewshot`)."""
    return [(count, seed) for count in LEAD["fewshot"]["counts"] for seed in LEAD["fewshot"]["seeds"]]


def fewshot_outputs(filename="metrics.json"):
    """Metric JSONs (or another per-run file) of `fewshot_runs()`, in the same order."""
    base = f"{RESULTS}/lead/regression/stage1~{{stage1}}/stage2~{{stage2}}/dim~{{dim}}/proj~{{proj}}/dataset~{{dataset}}"
    return [f"{base}/annotations~{count}/seed~{seed}/{filename}" for count, seed in fewshot_runs()]


def gpu_threads(rule_name):
    """CPU threads of a GPU rule: its GPUs x cpus_per_gpu (data loading); 1 on a CPU-only (demo) run."""
    spec = gpu_resources(rule_name)
    return max(1, spec["gpu"] * spec["cpus_per_gpu"])


def gpu_resources(rule_name):
    """Per-rule GPU resources from config `resources.<rule>` (used by the Slurm profile; ignored locally)."""
    return rule_resources(config.get("resources", {}), rule_name)


# ---- runs and tables ----
from lead_hsr.report.samples import samples_path
from lead_hsr.report.spec import load_orderings, load_tables, orderings_of_tables, table_runs


def samples_of(metrics_json):
    """The per-sample values a metric job writes beside its JSON (lead_hsr.report.samples)."""
    return str(samples_path(metrics_json))

TABLES_YAML = f"{workflow.basedir}/config/tables.yaml"
TABLES = load_tables(TABLES_YAML)
# Own data: tables of your own runs (`report.own_tables`, same format; ids `own_<name>`), built by `own_data`.
TABLE_FILES = {table_id: TABLES_YAML for table_id in TABLES}
if config["report"].get("own_tables"):
    OWN_TABLES = load_tables(config["report"]["own_tables"], own=True)
    TABLES.update(OWN_TABLES)
    TABLE_FILES.update({table_id: config["report"]["own_tables"] for table_id in OWN_TABLES})


def feature_path(run):
    """The feature source of a landmark run: `stage1~/stage2~/dim~/proj~` (proj `none` unless LEAD stage 2;
    dim `hypercolumn` becomes the stage-1 backbone's hypercolumn width, e.g. 960 for resnet18)."""
    dim = feature_dim(run["stage2"], run["dim"], stage1_arch(run["stage1"]))
    return "stage1~{stage1}/stage2~{stage2}/dim~{dim}/proj~{proj}".format(**{"proj": "none", **run, "dim": dim})


# ---- using LEAD: exported landmark models and predictions (rules/use_lead.smk) ----
MODEL_RUN = "stage1~{stage1}/stage2~{stage2}/dim~{dim}/proj~{proj}/dataset~{dataset}/annotations~{annotations}/seed~{seed}"
LEAD_PREDICT = LEAD.get("predict", {})


def landmark_model_path(name):
    """The exported model a `lead.predict.<name>` entry uses (its feature source's `dim~hypercolumn` resolved)."""
    spec = LEAD_PREDICT[name]
    if spec["dataset"] not in LEAD["datasets"]:
        raise ValueError(f"config lead.predict.{name}.dataset: got {spec['dataset']!r}; expected one of "
                         f"lead.datasets {sorted(LEAD['datasets'])}")
    source = feature_path(run_fields(spec["source"]))
    run = f"dataset~{spec['dataset']}/annotations~{spec.get('annotations', 'all')}/seed~{spec.get('seed', 0)}"
    return f"{RESULTS}/lead/models/{source}/{run}/model.pt"


def recorded_config_files():
    """The --configfile files of this run as a model card records them (relative to the repository when inside)."""
    files = []
    for path in workflow.overwrite_configfiles:
        try:
            files.append(Path(path).resolve().relative_to(Path(workflow.basedir).resolve()).as_posix())
        except (ValueError, OSError):
            files.append(str(path))
    return files


def predictions_dir(name):
    return f"{RESULTS}/lead/predictions/{name}"


def predictions_targets():
    """Every `lead.predict` entry's CSV, and its overlays when asked for (`snakemake predictions`)."""
    return [f"{predictions_dir(name)}/predictions.csv" for name in LEAD_PREDICT] + [
        f"{predictions_dir(name)}/overlays" for name, spec in LEAD_PREDICT.items() if spec.get("overlays")]


# Tables whose GAN runs are read from the ALS JSON instead of the FID/PR/PPL one.
ALS_TABLES = ("fig_4.10",)


def run_paths(run, table_id=None):
    """Metric JSONs (one per seed) of a run named by its table wildcards (config/tables.yaml)."""
    if run.get("task") == "matching":
        return [f"{RESULTS}/lead/matching/{feature_path(run)}/metrics.json"]
    if run.get("task") == "regression":
        seeds = [0] if run["annotations"] == "all" else LEAD["fewshot"]["seeds"]
        return [f"{RESULTS}/lead/regression/{feature_path(run)}/dataset~{run['dataset']}/"
                f"annotations~{run['annotations']}/seed~{seed}/metrics.json" for seed in seeds]
    name = "als.json" if table_id in ALS_TABLES else "metrics.json"
    if "imported" in run:   # a released network (hsr.imported), evaluated by the same metric jobs
        return [f"{RESULTS}/hsr/metrics/imported~{run['imported']}/{name}"]
    return [f"{RESULTS}/hsr/metrics/dataset~{run['dataset']}/aug~{run['aug']}/plr~{run['plr']}/hsr~{run['hsr']}/"
            f"hsr_levels~{run['hsr_levels']}/{name}"]


def table_inputs(table_id):
    """run key -> metric JSONs, for every run the table needs."""
    from lead_hsr.report.spec import run_key

    return {run_key(run): run_paths(run, table_id) for run in table_runs(TABLES[table_id])}


def table_outputs(table_id):
    return [f"{RESULTS}/tables/{table_id}.{ext}" for ext in ("csv", "md", "tex")]


ORDERINGS = load_orderings(TABLES_YAML, TABLES)


def reported_orderings():
    """The thesis orderings checked on this config: those of the tables it reports (with the learning checks)."""
    return orderings_of_tables(ORDERINGS, config["report"]["tables"])


def orderings_inputs():
    """result key (run and metric) -> metric JSONs, for every cell the reported orderings compare."""
    from lead_hsr.report.spec import ordering_side_cells, result_key

    return {result_key(run, metric): run_paths(run, table_id)
            for ordering in reported_orderings() for side in ("better", "worse")
            for run, metric, table_id, _ in ordering_side_cells(ordering[side], TABLES)}


def orderings_samples():
    """The per-sample files the orderings' bootstrap reads: beside each single-run cell's metric JSON (cells with
    several seeds take their interval from the seeds)."""
    return [samples_of(paths[0]) for paths in orderings_inputs().values() if len(paths) == 1]


def gan_metric_options(metrics_json):
    """A GAN metric job's options; FID's bootstrap replicates only for the runs whose FID an ordering compares."""
    fid_cells = {paths[0] for key, paths in orderings_inputs().items() if key.endswith("@fid") and len(paths) == 1}
    fid = {**HSR["metrics"]["fid"], "bootstrap": metrics_json in fid_cells}
    return {**HSR["metrics"], "fid": fid, "seed": config["seed"]}


def orderings_outputs():
    return [f"{RESULTS}/tables/orderings.{ext}" for ext in ("csv", "md")] if reported_orderings() else []


def report_targets():
    tables = [path for table_id in config["report"]["tables"] for path in table_outputs(table_id)]
    return tables + orderings_outputs()


def arch_card_targets():
    return [f"{RESULTS}/hsr/arch/{preset}.json" for preset in HSR["arch_cards"]]


def figure_targets():
    return [f"{RESULTS}/figures/{fig}.png" for fig in config["report"].get("figures", [])]


def results_targets():
    """Every table (thesis and own), figure, data preview and architecture card the config asks for."""
    return data_targets() + arch_card_targets() + report_targets() + figure_targets() + own_table_targets()


def training_curves_dir():
    """One training-curve figure per training run of the DAG (rules/report.smk), drawn once every result exists."""
    return f"{RESULTS}/training_curves"


def all_targets():
    return results_targets() + [training_curves_dir()]


# ---- HSR ----
HSR = config.get("hsr", {})


def gan_run_file(filename, **fixed):
    """`<results>/hsr/train/dataset~.../hsr_levels~.../<filename>`, some wildcards fixed (e.g. the baseline's)."""
    n = {"gan_dataset": "{gan_dataset}", "aug": "{aug}", "plr": "{plr}", "hsr": "{hsr}",
         "hsr_levels": "{hsr_levels}", **fixed}
    return (f"{RESULTS}/hsr/train/dataset~{n['gan_dataset']}/aug~{n['aug']}/plr~{n['plr']}/"
            f"hsr~{n['hsr']}/hsr_levels~{n['hsr_levels']}/{filename}")


def gan_start_snapshot():
    """The baseline snapshot HSR runs start from (thesis: HSR turned on after 500 kimg)."""
    return f"network-snapshot-{float(HSR['start_kimg']):g}.pt"


def gan_prefix_state():
    """The baseline prefix's full trainer state at `hsr.start_kimg` (the full baseline continues from it)."""
    return f"training-state-{float(HSR['start_kimg']):g}.pt"


def gan_options(w, part="full", **fixed):
    """Training options of one GAN run: config `hsr.train` + the dataset's overrides + what the path says.
    A baseline is two jobs: `part="prefix"` trains to `hsr.start_kimg` (the HSR runs' snapshot), the full run
    continues from the prefix's training state."""
    run = {**dict(w), **fixed}
    dataset = HSR["datasets"][run["gan_dataset"]]
    opts = {**HSR["train"], **dataset.get("train", {})}
    opts.update(ada=run["aug"] == "ada", seed=config["seed"], weights_cache=config["weights_cache"],
                xflip=dataset.get("xflip", True))
    if run["plr"] == "off":
        opts["pl_weight"] = 0
    if run["hsr"] == "none" and part == "prefix":
        if not 0 < HSR["start_kimg"] < opts["total_kimg"]:
            raise ValueError(f"hsr.start_kimg {HSR['start_kimg']} must lie inside (0, total_kimg "
                             f"{opts['total_kimg']}); fix the config")
        opts.update(total_kimg=HSR["start_kimg"], export_snapshots_kimg=[HSR["start_kimg"]], prefix=True)
    elif run["hsr"] == "none":
        opts["continue_from"] = gan_run_file(gan_prefix_state(), **run)
    else:
        opts["init_from"] = gan_init_from(run)
        # the HSR run continues the baseline: same total length, counted from the snapshot it starts from
        opts["total_kimg"] = opts["total_kimg"] - HSR["start_kimg"]
        opts["hsr"] = {**HSR.get("hsr", {}), **HSR["extractors"][run["hsr"]], "extractor": run["hsr"],
                       "levels": run["hsr_levels"]}
    return opts


# ---- pretrained weights: cache files, inputs of the jobs that load them (fetched by rules/weights.smk) ----
from lead_hsr import weights as pretrained  # light: torch only when a weight is loaded


def weight_files(*names):
    """Cache files of registered weights, in order, without repeats; None (a stand-in: no file) is skipped."""
    return [f"{config['weights_cache']}/{pretrained.spec(n).file_name}" for n in dict.fromkeys(names) if n]


def weights_cache_of(files):
    """The weights cache as a job sees it: the directory of the weight files it declares (`weight_files`; the
    cache is flat), not the configured path, which Snakemake may localise elsewhere (storage without a shared file
    system; `snakemake --lint`); the configured cache where the job declares none (every weight a stand-in)."""
    folders = {str(Path(f).parent) for f in files}
    if len(folders) > 1:
        raise InputError(f"weight files {list(files)} are not in one cache directory; weight_files() puts them "
                         f"in {config['weights_cache']}")
    return folders.pop() if folders else config["weights_cache"]


def fid_weight():
    """The FID extractor's weight (also Fig. 4.6's Mahalanobis features); None for a stand-in or random-cnn."""
    fid = HSR["metrics"]["fid"]
    return pretrained.metric_weight(fid["extractor"], fid.get("standin"))


def gan_metrics_weights():
    """FID, precision/recall and PPL (LPIPS-VGG16) weights of `gan_metrics`, as the config selects them."""
    pr, ppl = HSR["metrics"]["pr"], HSR["metrics"]["ppl"]
    return [fid_weight(), pretrained.metric_weight(pr["extractor"], pr.get("standin")),
            pretrained.ppl_weight(ppl.get("distance"), ppl.get("standin"))]


def hsr_extractor_weight(extractor):
    """The weight an HSR run's extractor loads (config `extractor_weights`: pretrained | random | state_dict:...)."""
    if extractor not in HSR["extractors"]:  # "none" (a baseline wildcard tried against this rule): nothing to load
        return None
    settings = {**HSR.get("hsr", {}), **HSR["extractors"][extractor]}
    return pretrained.hsr_extractor_weight(extractor, settings.get("extractor_weights", "pretrained"))


def edit_photos():
    """Fig. 4.11's photos (`hsr.figures.edits.source`: a folder, listed now so each file is an input; none for
    `generated`)."""
    return [str(p) for p in source_photos(HSR["figures"]["edits"].get("source", GENERATED_SOURCE),
                                          "hsr.figures.edits.source")]


def edit_projection_weight():
    """The LPIPS weight Fig. 4.11's photo projections load (`hsr.figures.edits.projection`); None without photos."""
    if HSR["figures"]["edits"].get("source", GENERATED_SOURCE) == GENERATED_SOURCE:
        return None
    projection = HSR["figures"]["edits"].get("projection") or {}
    return pretrained.projector_weight(projection.get("lpips"), projection.get("standin"))


def configured_weights():
    """Every registered weight some job of this config loads (what `fetch_weights` fetches when missing)."""
    if not HSR:
        return []
    names = gan_metrics_weights() + [hsr_extractor_weight(e) for e in HSR["extractors"]] + [edit_projection_weight()]
    return [name for name in dict.fromkeys(names) if name]


# ---- imported official checkpoints (rules/imported.smk; lead_hsr.gan.checkpoints) ----
def imported_spec(name):
    """One `hsr.imported` entry: pickle, dataset (whose real store its metrics use), drop_hsr_heads, expect_preset."""
    imported = HSR.get("imported") or {}
    if name not in imported:
        raise ValueError(f"imported network {name!r} is not configured; add it under hsr.imported "
                         f"(configured: {sorted(imported)})")
    if imported[name]["dataset"] not in HSR["datasets"]:
        raise ValueError(f"hsr.imported.{name}.dataset {imported[name]['dataset']!r} is not one of hsr.datasets "
                         f"{sorted(HSR['datasets'])}")
    return imported[name]


def imported_network(name):
    return f"{RESULTS}/hsr/imported/{name}/network.pt"


# ---- using a network (rules/use_gan.smk) ----
GENERATED = f"{RESULTS}/hsr/generate/{{gen_run}}"


def generated_network(w):
    """The network.pt a generate target reads: a training run's, or an imported released network's."""
    if w.gen_run.startswith("imported~"):
        return imported_network(w.gen_run.removeprefix("imported~"))
    return f"{RESULTS}/hsr/train/{w.gen_run}/network.pt"


def generate_log(product):
    return log_path("hsr", "generate", f"{{gen_run}}_{product}")


def generate_bench(product):
    return bench_path("hsr", "generate", f"{{gen_run}}_{product}")


def gan_init_from(run):
    """What an HSR run starts from: its dataset's `start_from` imported network, else its baseline's snapshot."""
    start = HSR["datasets"][run["gan_dataset"]].get("start_from")
    if start:
        return imported_network(start)
    return gan_run_file(gan_start_snapshot(), **{**run, "hsr": "none", "hsr_levels": "none"})


# ---- figures (rules/figures.smk): a chapter-4 figure compares a baseline run with its HSR run ----
FIGURE_SIDES = {"baseline": "hsr~none/hsr_levels~none", "hsr": "hsr~vit_dino/hsr_levels~all"}  # thesis HSR


def hsr_pair_inputs(run, prefix="", **files):
    """Named inputs `<prefix><side>_<key>` of a baseline / HSR pair; files: key -> (`train` | `metrics`, name)."""
    return {f"{prefix}{side}_{key}": f"{RESULTS}/hsr/{tree}/{run}/{path}/{name}"
            for key, (tree, name) in files.items() for side, path in FIGURE_SIDES.items()}


def run_fields(run):
    """`dataset~ffhq10k/aug~ada/plr~on` -> {"dataset": "ffhq10k", "aug": "ada", "plr": "on"}"""
    return dict(part.split("~", 1) for part in Path(run).parts)


def hsr_pair_labels(run):
    """side -> label: SG2-ADA for ADA runs, SG2 otherwise (thesis Tables 4.3 / 4.5)."""
    base = "SG2-ADA" if run_fields(run)["aug"] == "ada" else "SG2"
    return {"baseline": base, "hsr": f"{base} + HSR"}


def hsr_figure_options(name, **extra):
    figures = HSR["figures"]
    return {**figures[name], "seed": config["seed"], "device": figures.get("device", "auto"), **extra}
