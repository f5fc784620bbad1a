"""Config validation and DAG construction (no torch, no data needed)."""
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lead_hsr.config import validate_config
from lead_hsr.errors import InputError

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "config" / "schema.yaml"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def paper_config():
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def merged(base, over):
    """Snakemake's --configfile deep merge, for checking demo.yaml the way Snakemake sees it."""
    out = dict(base)
    for key, value in over.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def test_paper_and_demo_configs_are_valid():
    validate_config(paper_config(), SCHEMA)
    demo = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    validate_config(merged(paper_config(), demo), SCHEMA)


def test_wrong_type_names_key_value_and_allowed():
    cfg = paper_config()
    cfg["geometry"]["resize"] = "big"
    with pytest.raises(InputError) as err:
        validate_config(cfg, SCHEMA)
    assert "geometry.resize: got 'big'; expected type integer" in str(err.value)


def test_unknown_key_is_named_with_the_allowed_ones():
    cfg = paper_config()
    cfg["geometry"]["resise"] = 136
    with pytest.raises(InputError) as err:
        validate_config(cfg, SCHEMA)
    msg = str(err.value)
    assert "config: geometry.resise: got 136; expected no key 'resise' here (allowed keys: crop, resize, resolution)" in msg


def test_missing_dataset_root_is_named():
    cfg = paper_config()
    del cfg["raw"]["celeba"]["root"]
    with pytest.raises(InputError) as err:
        validate_config(cfg, SCHEMA)
    assert "raw.celeba.root: got nothing (the key is missing); expected this required key" in str(err.value)


def test_bad_enum_value_lists_choices():
    cfg = paper_config()
    cfg["prepared"]["mafl"]["preparer"] = "mafll"
    with pytest.raises(InputError) as err:
        validate_config(cfg, SCHEMA)
    assert "prepared.mafl.preparer: got 'mafll'" in str(err.value) and "'mafl'" in str(err.value)


def test_paper_dry_run_is_fast_and_prepares_every_dataset(tmp_path):
    # CPU seconds of the snakemake process (robust to a loaded machine, unlike wall time)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        SNAKEMAKE + ["-n", "--quiet", "rules", "--directory", str(tmp_path), "--snakefile", str(REPO / "Snakefile"),
                     "--configfile", str(REPO / "config" / "config.yaml")],
        capture_output=True, text=True, cwd=REPO,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    elapsed = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert out.returncode == 0, out.stderr
    assert elapsed < 5.0, f"dry run took {elapsed:.1f} CPU seconds"
    stores = paper_config()["prepared"]
    assert "prepare_dataset" in out.stdout
    counts = {line.split()[0]: int(line.split()[1]) for line in out.stdout.splitlines()
              if len(line.split()) == 2 and line.split()[1].isdigit()}
    assert counts["prepare_dataset"] == len(stores)


@pytest.mark.parametrize("configfile", ["config/config.yaml", "config/demo.yaml"])
def test_lint_is_clean(configfile):
    out = subprocess.run(SNAKEMAKE + ["--lint", "--configfile", configfile], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "LEAD_HSR_SKIP_RAW_CHECK": "1"})
    assert "Congratulations" in out.stdout + out.stderr, out.stdout + out.stderr


def test_snakefile_never_imports_torch(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import sys, runpy\n"
        "sys.argv = ['snakemake', '-n', '--quiet', 'rules', '--snakefile', sys.argv[1], '--directory', sys.argv[2]]\n"
        "from snakemake.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('TORCH_IMPORTED' if 'torch' in sys.modules else 'NO_TORCH')\n"
    )
    out = subprocess.run([sys.executable, str(probe), str(REPO / "Snakefile"), str(tmp_path)],
                         capture_output=True, text=True, cwd=REPO)
    assert "NO_TORCH" in out.stdout, out.stdout + out.stderr


# ---------------------------------------------------------------- nested options, cross-key checks, sources

def demo_config():
    return merged(paper_config(), yaml.safe_load((REPO / "config" / "demo.yaml").read_text()))


def violations(cfg, *files, overrides=None) -> str:
    with pytest.raises(InputError) as err:
        validate_config(cfg, SCHEMA, files, overrides)
    return str(err.value)


@pytest.mark.parametrize("path, value, expected", [
    (("lead", "stage1", "common", "bacth"), 64, "expected no key 'bacth' here (allowed keys: arch, batch,"),
    (("lead", "stage1", "byol", "lr"), "fast", "got 'fast'; expected type number"),
    (("lead", "stage2", "lead", "teacher_norm"), "l2", "expected one of ['none', 'layer', 'vector', 'layer+vector']"),
    (("lead", "regression", "regressor", "filter_init_sd"), 0.01, "no key 'filter_init_sd' here"),
    (("lead", "regression", "fewshot_regressor", "loss"), "l1", "expected one of ['smooth_l1', 'l2']"),
    (("lead", "scale", "regression", "step"), 10, "no key 'step' here"),
    (("hsr", "train", "batch"), 0, "got 0; expected >= 1"),
    (("hsr", "hsr", "head_hiden"), 64, "no key 'head_hiden' here"),
    (("hsr", "extractors", "vit_dino", "extractor_weights"), "imagenet", "a string matching"),
    (("hsr", "metrics", "fid", "extractor"), "inceptionv3", "one of ['nvlabs-inception', 'nvlabs-vgg16', 'inception', 'vgg16', 'random-cnn']"),
    (("hsr", "als", "classifier", "epoch"), 3, "no key 'epoch' here"),
    (("hsr", "als", "metric", "standardise"), "yes", "expected type boolean"),
    (("hsr", "datasets", "cub", "train", "lr"), -1, "expected > 0"),
    (("prepared", "ffhq_1k", "options", "subset"), "1K", "one of ['1k', '2k', '10k', '70k', '140k'] or type integer >= 1"),
    (("prepared", "mafl", "options", "subset"), "1k", "no options (this preparer takes none"),
    (("prepared", "mafl", "expected_counts", "training"), 10, "got the key 'training'; expected a key among ['train', 'val', 'test']"),
    (("lead", "figures", "device"), "gpu", "expected one of ['auto', 'cpu', 'cuda']"),
])
def test_nested_option_mistakes_are_caught(path, value, expected):
    cfg = paper_config()
    node = cfg
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    message = violations(cfg)
    assert ".".join(path) in message or ".".join(path[:-1]) in message, message
    assert expected in message, message


@pytest.mark.parametrize("edit, expected", [
    (lambda c: c["geometry"].update(crop=65), "geometry.crop: got 65 with resize 136 (crop size 6)"),
    (lambda c: c["geometry"].update(crop=66), "expected resize - 2 * crop >= 8"),
    (lambda c: c["geometry"].update(resolution=128), "hsr.train.preset: got 'paper256' (a 256 px generator) with "
                                                      "geometry.resolution 128"),
    (lambda c: c["lead"].update(ssl_store="celeba"), "lead.ssl_store: got 'celeba'; expected a store of `prepared`"),
    (lambda c: c["lead"]["figures"]["clusters"].update(source="LEED"), "lead.figures.clusters.source: got 'LEED'"),
    (lambda c: c["lead"]["datasets"].pop("aflw_r"),
     "lead.figures.regression.datasets.2: got 'aflw_r'; expected a dataset of lead.datasets (300w, aflw_m, mafl)"),
    (lambda c: c["hsr"].update(start_kimg=30000), "hsr.start_kimg: got 30000 with hsr.train.total_kimg 25000"),
    (lambda c: c["hsr"]["figures"].update(als_run="dataset~ffhq5k/aug~ada/plr~on"), "hsr.figures.als_run: got"),
    (lambda c: c["raw"].pop("w300"), "raw.w300.root: got nothing (store 'w300', preparer 'w300', reads it)"),
])
def test_cross_key_constraints(edit, expected):
    cfg = paper_config()
    edit(cfg)
    assert expected in violations(cfg)


def test_batch_and_fewshot_counts_against_known_dataset_sizes():
    cfg = demo_config()
    cfg["lead"]["stage1"]["byol"]["batch"] = 2000
    cfg["hsr"]["datasets"]["ffhq1k"]["train"] = {"batch": 128}
    cfg["lead"]["fewshot"]["counts"] = [1, 500]
    message = violations(cfg)
    assert "lead.stage1.byol.batch: got 2000 (store 'celeba_ssl' has 1400 training images); expected a batch <= 1400" \
        in message
    assert "hsr.datasets.ffhq1k.train.batch: got 128 (store 'ffhq_1k' has 100 images)" in message
    assert "lead.fewshot.counts: got 500 annotated images (dataset '300w', store 'w300', has 400" in message


def test_messages_name_the_file_the_value_came_from(tmp_path):
    main = REPO / "config" / "config.yaml"
    user = tmp_path / "mine.yaml"
    user.write_text("lead:\n  stage1:\n    common: {batch: big}\ngeometry: {crop: 70}\n")
    cfg = merged(paper_config(), yaml.safe_load(user.read_text()))
    cfg["hsr"]["train"]["lr"] = "x"  # as if given with --config
    message = violations(cfg, main, user, overrides={"hsr": {"train": {"lr": "x"}}})
    assert f"{user}: lead.stage1.common.batch: got 'big'; expected type integer" in message
    assert f"--config (command line): hsr.train.lr: got 'x'; expected type number" in message
    # the cross-key error shows up once the schema errors are fixed; it also names the user's file
    cfg["lead"]["stage1"]["common"]["batch"], cfg["hsr"]["train"]["lr"] = 256, 0.002
    assert f"{user}: geometry.crop: got 70 with resize 136" in violations(cfg, main, user)
    cfg = paper_config()
    cfg["seed"] = -1
    assert f"{main}: seed: got -1; expected >= 0" in violations(cfg, main, user)


def test_malformed_yaml_names_file_line_and_column(tmp_path):
    from lead_hsr.config import load_yaml
    bad = tmp_path / "bad.yaml"
    bad.write_text("geometry:\n  resize: 88\n  crop: [12\nseed: 0\n")
    with pytest.raises(InputError, match=rf"{bad}:4:5: invalid YAML"):
        load_yaml(bad)
    bad.write_text("lead:\n\tstage1: {}\n")
    with pytest.raises(InputError, match=rf"{bad}:2:1: invalid YAML .*tabs"):
        load_yaml(bad)


def test_snakemake_dry_run_fails_at_parse_time_with_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("lead:\n  regression:\n    regressor: {filter_init_sd: 0.01}\n")
    out = subprocess.run(SNAKEMAKE + ["-n", "--quiet", "rules", "--directory", str(tmp_path), "--snakefile",
                                      str(REPO / "Snakefile"), "--configfile", str(bad)],
                         capture_output=True, text=True, cwd=REPO)
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert f"{bad}: lead.regression.regressor.filter_init_sd: got 0.01; expected no key" in text, text


# ---------------------------------------------------------------- one source of truth: schema vs the code

def schema_block(name):
    from lead_hsr.config import load_schema
    return load_schema(SCHEMA)["$defs"][name]


# keys each option block leaves to the DAG (rules/common.smk sets them from the run path / global config)
SET_BY_DAG = {
    "stage1_options": {"objective", "crop", "seed"},
    "stage2_options": {"objective", "dim", "crop", "seed"},
    "gan_train_options": {"ada", "seed", "weights_cache", "xflip", "hsr", "init_from", "export_snapshots_kimg",
                          "prefix", "continue_from"},
    "hsr_options": {"levels", "extractor"},
    "regressor_options": set(),
    "attribute_classifier_options": set(),
}


def code_options():
    from dataclasses import fields

    from lead_hsr.gan import training
    from lead_hsr.gan.hsr import HSRSpec
    from lead_hsr.lead import regressor, stage1, stage2
    from lead_hsr.metrics.attributes import AttributeTrainOptions
    return {
        "stage1_options": (set(stage1.DEFAULTS), dict(stage1.DEFAULTS)),
        "stage2_options": (set(stage2.DEFAULTS), dict(stage2.DEFAULTS)),
        "gan_train_options": (set(training.DEFAULT_OPTIONS), dict(training.DEFAULT_OPTIONS)),
        "hsr_options": (set(HSRSpec.__dataclass_fields__) | training.EXTRACTOR_KEYS, {}),
        "regressor_options": ({f.name for f in fields(regressor.RegressorOptions)},
                              {f.name: f.default for f in fields(regressor.RegressorOptions)}),
        "attribute_classifier_options": ({f.name for f in fields(AttributeTrainOptions)},
                                         {f.name: f.default for f in fields(AttributeTrainOptions)}),
    }


@pytest.mark.parametrize("block", sorted(SET_BY_DAG))
def test_schema_option_blocks_match_the_code(block):
    import jsonschema
    keys, defaults = code_options()[block]
    schema = schema_block(block)
    assert set(schema["properties"]) == keys - SET_BY_DAG[block], (
        f"$defs.{block} drifted from the code: only in the code {sorted(keys - SET_BY_DAG[block] - set(schema['properties']))}, "
        f"only in the schema {sorted(set(schema['properties']) - keys)}")
    full = jsonschema.Draft202012Validator({**schema, "$defs": yaml.safe_load(SCHEMA.read_text())["$defs"]})
    given = {k: (list(v) if isinstance(v, tuple) else v) for k, v in defaults.items()
             if k in schema["properties"] and not (block == "regressor_options" and k == "tps_strength")}
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in full.iter_errors(given)]
    assert not errors, f"the code's defaults violate $defs.{block}: {errors}"


def test_schema_enums_match_the_code():
    from lead_hsr.config import PRESET_RESOLUTIONS
    from lead_hsr.data.readers.gan_ffhq import FFHQ_SUBSETS
    from lead_hsr.gan import extractors, hsr, networks
    from lead_hsr.lead import backbones, hypercolumns, regressor
    from lead_hsr.train import device
    defs = yaml.safe_load(SCHEMA.read_text())["$defs"]
    assert PRESET_RESOLUTIONS == {name: p["resolution"] for name, p in networks.PRESETS.items()}
    assert defs["gan_train_options"]["properties"]["preset"]["enum"] == list(networks.PRESETS)
    assert set(defs["stage1_options"]["properties"]["arch"]["enum"]) == set(backbones.STAGE_DIMS)
    assert defs["stage2_options"]["properties"]["teacher_norm"]["enum"] == list(hypercolumns.NORMALIZATIONS)
    assert defs["regressor_options"]["properties"]["loss"]["enum"] == list(regressor.LOSSES)
    assert defs["device"]["enum"] == list(device.DEVICE_CHOICES)
    assert set(defs["precision"]["enum"]) == set(device.AUTOCAST_DTYPES)
    assert defs["hsr_options"]["properties"]["head_activation"]["enum"] == list(hsr.HEAD_ACTIVATIONS)
    assert set(defs["hsr_options"]["properties"]["extractor_normalize"]["enum"]) == set(extractors.NORMALIZATIONS)
    assert defs["preparer_options"]["ffhq"]["properties"]["subset"]["anyOf"][0]["enum"] == list(FFHQ_SUBSETS)
    extractor_names = yaml.safe_load(SCHEMA.read_text())["properties"]["hsr"]["properties"]["extractors"]
    assert set(extractor_names["propertyNames"]["enum"]) == set(extractors.EXTRACTORS)


def test_schema_metric_networks_match_the_code():
    from lead_hsr import weights
    from lead_hsr.metrics import ppl
    metrics = yaml.safe_load(SCHEMA.read_text())["properties"]["hsr"]["properties"]["metrics"]["properties"]
    for metric in ("fid", "pr"):  # every registered metric network, and the weight-free stand-in CNN
        assert set(metrics[metric]["properties"]["extractor"]["enum"]) == {*weights.METRIC_EXTRACTOR_WEIGHTS,
                                                                         "random-cnn"}
    assert set(metrics["ppl"]["properties"]["distance"]["enum"]) == set(ppl.PPL_DISTANCES)
    assert set(ppl.PPL_DISTANCES) == set(weights.PPL_DISTANCE_WEIGHTS)


def test_preparer_enum_matches_the_preparers():
    from lead_hsr.data.prepare_all import preparers
    from lead_hsr.data.registry import OWN_DATA_PREPARERS
    store = yaml.safe_load(SCHEMA.read_text())["properties"]["prepared"]["additionalProperties"]
    assert set(store["properties"]["preparer"]["enum"]) == set(preparers())
    own_keys = {key for keys in OWN_DATA_PREPARERS.values() for key in keys}
    assert own_keys <= set(store["properties"]), "every own-data key of lead_hsr.data.registry is in the schema"


TEN_MISTAKES = """\
geometry: {crop: 70}
lead:
  stage1:
    common: {bacth: 64}
  stage2:
    lead: {teacher_norm: l2}
  regression:
    regressor: {filter_init_sd: 0.01}
  figures:
    clusters: {source: LEED}
prepared:
  ffhq_1k: {options: {subset: 1K}}
  mafl: {expected_counts: {training: 19000}}
hsr:
  train: {lr: 0.002x}
  als:
    classifier: {epoch: 3}
  metrics:
    fid: {extractor: inception, num_gen: 50k}
"""


def test_ten_typical_mistakes_all_reported_by_one_dry_run(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TEN_MISTAKES)
    out = subprocess.run(SNAKEMAKE + ["-n", "--quiet", "rules", "--directory", str(tmp_path), "--snakefile",
                                      str(REPO / "Snakefile"), "--configfile", str(bad)],
                         capture_output=True, text=True, cwd=REPO)
    lines = [line.strip() for line in (out.stdout + out.stderr).splitlines() if line.strip().startswith(f"{bad}: ")]
    assert out.returncode != 0 and len(lines) == 10, out.stdout + out.stderr
    keys = {line.split(": ")[1] for line in lines}
    assert keys == {"geometry.crop", "lead.stage1.common.bacth", "lead.stage2.lead.teacher_norm",
                    "lead.regression.regressor.filter_init_sd", "lead.figures.clusters.source",
                    "prepared.ffhq_1k.options.subset", "prepared.mafl.expected_counts.training", "hsr.train.lr",
                    "hsr.als.classifier.epoch", "hsr.metrics.fid.num_gen"}
    assert all("got " in line and "; expected " in line for line in lines)


def test_config_checker_cli(tmp_path):
    from lead_hsr.config import main
    assert main([str(REPO / "config" / "config.yaml"), str(REPO / "config" / "demo.yaml")]) == 0
    broken = tmp_path / "broken.yaml"
    broken.write_text("geometry:\n  crop: [12\nseed: 0\n")
    assert main([str(REPO / "config" / "config.yaml"), str(broken)]) == 1


def test_resources_names_are_the_rules_that_read_them():
    import re
    used = set()
    for path in (REPO / "rules").glob("*.smk"):
        used |= set(re.findall(r'gpu_(?:resources|threads)\("([a-z_0-9]+)"\)', path.read_text()))
    allowed = yaml.safe_load(SCHEMA.read_text())["properties"]["resources"]["propertyNames"]["enum"]
    assert used and set(allowed) == used
    cfg = paper_config()
    cfg["resources"]["train_stage"] = {"gpu": 1}
    assert "resources.train_stage: got the key 'train_stage'; expected a key among" in violations(cfg)


def test_a_cross_key_conflict_names_the_file_that_made_it(tmp_path):
    """hsr.train.preset is in config.yaml, but the user's file changed geometry.resolution: name the user's file."""
    main, user = REPO / "config" / "config.yaml", tmp_path / "mine.yaml"
    user.write_text("geometry: {resolution: 128}\n")
    cfg = merged(paper_config(), yaml.safe_load(user.read_text()))
    assert f"{user}: hsr.train.preset: got 'paper256' (a 256 px generator) with geometry.resolution 128" \
        in violations(cfg, main, user)
