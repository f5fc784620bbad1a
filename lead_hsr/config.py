"""Config validation with messages a researcher can act on, at Snakefile parse time.

Every violation is one line `<config file>: <key.path>: got <value>; expected <what is allowed>`, where the
config file is the one the value came from (the Snakefile's config/config.yaml, a `--configfile` merged over
it, or `--config` on the command line). Three layers, all checked before any job runs:
- YAML syntax: `load_yaml` names file, line and column (Snakemake's own loader names neither);
- the JSON schema (config/schema.yaml): every key of every section, nested option blocks included, with
  types and ranges;
- cross-key constraints the schema cannot express (`cross_key_errors`): geometry, store and figure-source
  references, raw roots, GAN resolution vs architecture preset, batch vs the dataset size where it is known.

This module must stay light (no torch, no numpy): the Snakefile imports it at parse time, and the Slurm
executor re-parses the Snakefile in every job. Constants the schema mirrors from torch-side modules are
compared with their source of truth by tests/workflow/test_config.py.
"""
from __future__ import annotations

import copy
import sys
from pathlib import Path

import jsonschema
import yaml

from lead_hsr.data.registry import PREPARER_INPUTS
from lead_hsr.errors import InputError

# lead_hsr.gan.networks.PRESETS[name]["resolution"] (torch-side; a test keeps the two equal)
PRESET_RESOLUTIONS = {"paper256": 256, "demo": 32}
MIN_CROP_SIZE = 8  # lead_hsr.data.geometry.Geometry.from_config: resize - 2 * crop >= 8
COMMAND_LINE = "--config (command line)"
# Rules whose `resources:` entry defaults to another rule's: `resources.train_gan_prefix` only overrides what
# differs from `resources.train_gan` (the prefix is 500 of 25,000 kimg: same GPUs, a shorter runtime).
RESOURCES_BASE = {"train_gan_prefix": "train_gan"}
GPU_RESOURCE_DEFAULTS = {"gpu": 1, "cpus_per_gpu": 8, "mem_mb": 32000, "runtime": 24 * 60}


def rule_resources(resources: dict, rule_name: str) -> dict:
    """A rule's GPU resources (gpu, cpus_per_gpu, mem_mb, runtime) from config `resources:`, its base rule's
    entry (RESOURCES_BASE) under its own, GPU_RESOURCE_DEFAULTS for what neither states."""
    spec = {**resources.get(RESOURCES_BASE.get(rule_name), {}), **resources.get(rule_name, {})}
    return {name: spec.get(name, default) for name, default in GPU_RESOURCE_DEFAULTS.items()}


# ------------------------------------------------------------------------------------------------ YAML files


def load_yaml(path) -> dict:
    """A YAML config file as a dict; syntax errors name the file, line and column (1-based)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: config file not found. Fix: check the path given to --configfile.") from None
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not UTF-8 text (byte offset {error.start}). Fix: save the file as UTF-8.") from None
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = " ".join(part for part in (error.context, error.problem) if part)
        start = error.context_mark
        if start is not None and mark is not None and (start.line, start.column) != (mark.line, mark.column):
            problem += f"; the construct began at line {start.line + 1}, column {start.column + 1}"
        raise InputError(f"{where}: invalid YAML ({problem}). Fix: check the indentation (spaces, not tabs), "
                         "colons and brackets at that place.") from None
    except yaml.YAMLError as error:
        raise InputError(f"{path}: invalid YAML ({error}).") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: got a YAML {type(data).__name__}; expected a mapping of config keys "
                         "(see config/config.yaml).")
    return data


def check_yaml_files(paths) -> None:
    """Parse every config file first, so a syntax error is reported with file:line:column."""
    for path in paths:
        load_yaml(path)


# ------------------------------------------------------------------------------------------------ schema


def load_schema(path) -> dict:
    """The schema, with each prepared store's `options` tied to the option block of its preparer."""
    schema = load_yaml(path)
    store = schema["properties"]["prepared"]["additionalProperties"]
    blocks = schema["$defs"]["preparer_options"]
    no_options = {"type": "object", "maxProperties": 0, "description": "this preparer takes no options"}
    store["allOf"] = store.get("allOf", []) + [
        {"if": {"properties": {"preparer": {"const": name}}, "required": ["preparer"]},
         "then": {"properties": {"options": blocks.get(name, no_options)}}}
        for name in store["properties"]["preparer"]["enum"]
    ]
    return schema


def _expected(schema: dict, keyword: str, value) -> str:
    """What the failing schema keyword allows, in words."""
    if keyword == "enum":
        return f"one of {schema['enum']}"
    if keyword == "const":
        return f"{schema['const']!r}"
    if keyword == "type":
        return f"type {schema['type']}"
    if keyword in ("minimum", "maximum"):
        return f"{'>=' if keyword == 'minimum' else '<='} {value}"
    if keyword in ("exclusiveMinimum", "exclusiveMaximum"):
        return f"{'>' if keyword == 'exclusiveMinimum' else '<'} {value}"
    if keyword in ("minItems", "maxItems", "minLength", "minProperties"):
        return f"{keyword} {value}"
    if keyword == "maxProperties" and value == 0:
        return "no options (this preparer takes none; remove the key)"
    if keyword == "pattern":
        return f"a string matching {value!r}"
    if keyword == "anyOf":
        return " or ".join(" ".join(_expected(alt, k, v) for k, v in alt.items() if k != "description")
                           for alt in value)
    return f"{keyword}: {value!r}"


def _shown(value) -> str:
    if isinstance(value, dict):
        return f"a mapping with keys {sorted(map(str, value))}"
    return repr(value)


def _schema_errors(config: dict, schema: dict) -> list[tuple[tuple, str, str]]:
    """(key path, got, expected) per violation; nested if/then errors point at the failing key."""
    validator = jsonschema.Draft202012Validator(schema)
    found = []
    for error in validator.iter_errors(config):
        path = tuple(error.absolute_path)
        if error.validator == "additionalProperties":
            allowed = sorted(error.schema.get("properties", {}))
            for extra in sorted(set(error.instance) - set(allowed)):
                found.append((path + (extra,), _shown(error.instance[extra]),
                              f"no key '{extra}' here (allowed keys: {', '.join(allowed)})"))
        elif "propertyNames" in error.relative_schema_path:  # a key outside a fixed set of names
            found.append((path + (error.instance,), f"the key {error.instance!r}",
                          f"a key among {error.schema['enum']}" if error.validator == "enum" else
                          _expected(error.schema, error.validator, error.validator_value)))
        elif error.validator == "required":
            missing = error.message.split("'")[1]
            found.append((path + (missing,), "nothing (the key is missing)",
                          "this required key (see config/README.md)"))
        else:
            found.append((path, _shown(error.instance), _expected(error.schema, error.validator,
                                                                   error.validator_value)))
    return found


# ------------------------------------------------------------------------------------------------ cross-key


def _get(config: dict, *path, default=None):
    node = config
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def _train_count(config: dict, store: str) -> int | None:
    """Training images of a prepared store when the config states it (expected_counts / an FFHQ subset size)."""
    spec = _get(config, "prepared", store, default={}) or {}
    subset = _get(spec, "options", "subset")
    if isinstance(subset, int) and not isinstance(subset, bool):
        return subset
    count = _get(spec, "expected_counts", "train")
    return count if isinstance(count, int) else None


def cross_key_errors(config: dict) -> list[tuple[tuple, str, str]]:
    """Constraints between keys (run after the schema passes, so every value has its type)."""
    errors = []
    geometry = config["geometry"]
    size = geometry["resize"] - 2 * geometry["crop"]
    if size < MIN_CROP_SIZE:
        errors.append((("geometry", "crop"), f"{geometry['crop']} with resize {geometry['resize']} (crop size "
                       f"{size})", f"resize - 2 * crop >= {MIN_CROP_SIZE} (paper: resize 136, crop 20 -> 96)",
                       [("geometry", "resize")]))
    stores = set(config["prepared"])
    hsr, lead = config.get("hsr"), config.get("lead")

    def store_ref(path):
        value = _get(config, *path)
        if value is not None and value not in stores:
            errors.append((path, repr(value), f"a store of `prepared` ({', '.join(sorted(stores))})"))

    synthetic = set(_get(config, "synthetic", "datasets", default={}) or {})
    for store, spec in config["prepared"].items():
        for raw in PREPARER_INPUTS.get(spec["preparer"], []):
            if raw not in synthetic and _get(config, "raw", raw, "root") is None:
                errors.append((("raw", raw, "root"), f"nothing (store '{store}', preparer '{spec['preparer']}', "
                               f"reads it)", "the folder holding the official layout, or list the dataset under "
                               "synthetic.datasets"))
    if lead:
        store_ref(("lead", "ssl_store"))
        store_ref(("lead", "matching", "store"))
        store_ref(("lead", "scale", "store"))
        store_ref(("lead", "figures", "tsne", "store"))
        for name in lead["datasets"]:
            store_ref(("lead", "datasets", name, "store"))
        errors += _lead_figure_errors(lead)
        errors += _lead_size_errors(config, lead)
    if hsr:
        store_ref(("hsr", "als", "store"))
        for name in hsr["datasets"]:
            store_ref(("hsr", "datasets", name, "store"))
        errors += _hsr_errors(config, hsr)
    return errors


def _lead_figure_errors(lead: dict) -> list:
    figures, errors = lead["figures"], []
    labels = sorted(figures["sources"])
    for name, spec in figures.items():
        if not isinstance(spec, dict) or name == "sources":
            continue
        for key in ("source", "sources"):
            if key not in spec:
                continue
            for index, label in enumerate([spec[key]] if key == "source" else spec[key]):
                if label not in labels:
                    path = ("lead", "figures", name, key) + (() if key == "source" else (index,))
                    errors.append((path, repr(label), f"a label of lead.figures.sources ({', '.join(labels)})"))
        references = [(("dataset",), spec["dataset"])] if "dataset" in spec else []
        if name == "regression":
            references += [(("datasets", index), dataset) for index, dataset in enumerate(spec["datasets"])]
        for tail, dataset in references:
            if dataset not in lead["datasets"]:
                errors.append((("lead", "figures", name) + tail, repr(dataset),
                               f"a dataset of lead.datasets ({', '.join(sorted(lead['datasets']))})"))
    return errors


def _lead_size_errors(config: dict, lead: dict) -> list:
    """Batches and few-shot counts against the training images of their store, where the config states them."""
    errors = []
    ssl_images = _train_count(config, lead["ssl_store"])
    for stage in ("stage1", "stage2"):
        common = lead[stage].get("common", {})
        for objective, overrides in lead[stage].items():
            batch = {**common, **overrides}.get("batch")
            if ssl_images is not None and batch is not None and batch > ssl_images:
                errors.append((("lead", stage, objective, "batch"), f"{batch} (store '{lead['ssl_store']}' has "
                               f"{ssl_images} training images)", f"a batch <= {ssl_images}", _size_paths(lead["ssl_store"])))
    largest = max(lead["fewshot"]["counts"])
    for dataset, spec in lead["datasets"].items():
        images = _train_count(config, spec["store"])
        if images is not None and largest > images:
            errors.append((("lead", "fewshot", "counts"), f"{largest} annotated images (dataset '{dataset}', store "
                           f"'{spec['store']}', has {images} training images)", f"counts <= {images}",
                           _size_paths(spec["store"])))
    return errors


def _size_paths(store: str) -> list[tuple]:
    """Keys that state a store's training size (for naming the file a size conflict came from)."""
    return [("prepared", store, "expected_counts", "train"), ("prepared", store, "options", "subset")]


def _hsr_errors(config: dict, hsr: dict) -> list:
    errors = []
    resolution = config["geometry"]["resolution"]
    for name, spec in [(None, {})] + list(hsr["datasets"].items()):
        train = {**hsr["train"], **(spec.get("train") or {})}
        path = ("hsr", "train") if name is None else ("hsr", "datasets", name, "train")
        preset = train.get("preset")
        if name is None or "preset" in (spec.get("train") or {}):
            if preset in PRESET_RESOLUTIONS and PRESET_RESOLUTIONS[preset] != resolution:
                errors.append((path + ("preset",), f"{preset!r} (a {PRESET_RESOLUTIONS[preset]} px generator) "
                               f"with geometry.resolution {resolution}", "a preset of the same resolution "
                               f"({', '.join(p for p, r in PRESET_RESOLUTIONS.items() if r == resolution) or 'none'})",
                               [("geometry", "resolution")]))
        if name is not None:
            images, batch = _train_count(config, spec["store"]), train.get("batch")
            if images is not None and batch is not None and batch > images:
                errors.append((path + ("batch",), f"{batch} (store '{spec['store']}' has {images} images)",
                               f"a batch <= {images}", _size_paths(spec["store"])))
    total = hsr["train"].get("total_kimg")
    if total is not None and not hsr["start_kimg"] < total:
        errors.append((("hsr", "start_kimg"), f"{hsr['start_kimg']} with hsr.train.total_kimg {total}",
                       "start_kimg < total_kimg (HSR runs resume from the baseline's snapshot at start_kimg)",
                       [("hsr", "train", "total_kimg")]))
    for key in ("ppl_run", "als_run", "worst_runs"):
        runs = hsr["figures"][key]
        for index, run in enumerate(runs if isinstance(runs, list) else [runs]):
            dataset = run.split("/")[0].split("~", 1)[1]
            if dataset not in hsr["datasets"]:
                path = ("hsr", "figures", key) + ((index,) if isinstance(runs, list) else ())
                errors.append((path, repr(run), f"a run whose dataset is in hsr.datasets "
                               f"({', '.join(sorted(hsr['datasets']))})"))
    return errors


# ------------------------------------------------------------------------------------------------ sources


def source_of(path: tuple, sources: list[tuple[str, dict]], related=()) -> str:
    """The config file (or --config) that set `path`: the last source holding it (later sources override),
    else the last one holding its deepest existing parent, else the first (the workflow's own config).
    With `related` keys (a cross-key conflict), the one of highest precedence among all of them."""
    if not sources:
        return "config"
    return sources[max(_source_index(p, sources) for p in [path, *related])][0]


def _source_index(path: tuple, sources: list[tuple[str, dict]]) -> int:
    for depth in range(len(path), -1, -1):
        for index in range(len(sources) - 1, -1, -1):
            if _has(sources[index][1], path[:depth]):
                return index
    return 0


def _has(data: dict, path: tuple) -> bool:
    node = data
    for key in path:
        if isinstance(node, list) and isinstance(key, int) and key < len(node):
            node = node[key]
        elif isinstance(node, dict) and key in node:
            node = node[key]
        else:
            return False
    return bool(path) or bool(data)


def key_source(keys, default_configfile, cli_configfiles=(), cli_config=None) -> str:
    """Where a config value comes from, as Snakemake merges them: `--config` on the command line, else the last
    `--configfile` that sets it, else the workflow's default config file."""
    sources = [(str(path), load_yaml(path) if Path(path).is_file() else {})
               for path in (default_configfile, *cli_configfiles)]
    if cli_config:
        sources.append((COMMAND_LINE, cli_config))
    index = max((i for i, (_, data) in enumerate(sources) if _has(data, tuple(keys))), default=0)
    return sources[index][0]


def validate_config(config: dict, schema_path, config_files=(), overrides: dict | None = None) -> None:
    """Raise InputError listing every violation as `<file>: <key.path>: got <value>; expected <allowed>`.

    `config_files` are the YAML files merged into `config`, lowest precedence first (the Snakefile's
    configfile, then each --configfile); `overrides` is the --config mapping (highest precedence).
    """
    config = copy.deepcopy(config)
    errors = _schema_errors(config, load_schema(schema_path))
    try:
        errors += cross_key_errors(config)
    except (KeyError, TypeError, AttributeError, ValueError, IndexError):
        if not errors:  # a config the schema accepts must never break the cross-key checks
            raise
        # else: a value of the wrong type stopped a cross-key check; the schema errors above say which
    if not errors:
        return
    sources = [(str(path), load_yaml(path)) for path in config_files]
    if overrides:
        sources.append((COMMAND_LINE, overrides))
    lines = [f"{source_of(path, sources, rest[0] if rest else ())}: {'.'.join(map(str, path)) or '<top level>'}: "
             f"got {got}; expected {allowed}"
             for path, got, allowed, *rest in sorted(errors, key=lambda e: list(map(str, e[0])))]
    raise InputError("invalid configuration (checked against config/schema.yaml; every key is explained in "
                     "config/README.md):\n  " + "\n  ".join(lines))


def main(argv=None) -> int:
    """`python -m lead_hsr.config config/config.yaml [more.yaml ...]`: check files merged like Snakemake does."""
    paths = list(argv if argv is not None else sys.argv[1:]) or ["config/config.yaml"]
    try:
        merged: dict = {}
        for path in paths:
            merged = _merge(merged, load_yaml(path))
        validate_config(merged, Path(__file__).resolve().parents[1] / "config" / "schema.yaml", paths)
    except InputError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"{' + '.join(paths)}: valid")
    return 0


def _merge(base: dict, over: dict) -> dict:
    """Snakemake's deep merge of config files (snakemake.utils.update_config)."""
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


if __name__ == "__main__":
    sys.exit(main())
