"""A missing raw dataset fails when the DAG is built (`snakemake -n` included), before any job is submitted,
naming the config key, the config file, the expected layout and the official source; the files that define each
layout (lead_hsr.data.layouts) are exactly what the readers need."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tiny_synthetic import TINY_SPEC

from lead_hsr.config import key_source
from lead_hsr.data import synthetic
from lead_hsr.data.layouts import OFFICIAL_SOURCES, PREPARER_LAYOUTS, SKIP_RAW_CHECK_ENV, RawRoots, missing_layout
from lead_hsr.data.prepare_all import prepare
from lead_hsr.data.registry import PREPARER_INPUTS, RAW_DATASETS
from lead_hsr.errors import InputError

REPO = Path(__file__).resolve().parents[2]
TINY = TINY_SPEC
GEOMETRY = {"resize": 40, "crop": 4, "resolution": 16}


@pytest.fixture(scope="module")
def raw_tree(tmp_path_factory) -> Path:
    """Every raw dataset, tiny, in its official layout (the synthetic writers)."""
    base = tmp_path_factory.mktemp("raw")
    synthetic.write_all({name: {**entry, "root": base / name, "seed": 0} for name, entry in TINY.items()})
    return base


def dry_run(workdir, *configfiles, check=True):
    env = dict(os.environ)
    if check:
        env.pop("LEAD_HSR_SKIP_RAW_CHECK", None)  # the test suite plans paper DAGs without data; not here
    command = [sys.executable, "-m", "snakemake", "-n", "--quiet", "rules", "--directory", str(workdir),
               "--snakefile", str(REPO / "Snakefile"), "--configfile", str(REPO / "config" / "config.yaml"),
               *map(str, configfiles)]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)


def roots_overlay(path: Path, roots: dict) -> Path:
    path.write_text(yaml.safe_dump({"raw": {name: {"root": str(root)} for name, root in roots.items()}}))
    return path


def test_layouts_cover_every_preparer_and_raw_dataset():
    assert set(PREPARER_LAYOUTS) == set(PREPARER_INPUTS)
    assert {d for datasets in PREPARER_LAYOUTS.values() for d in datasets} == set(RAW_DATASETS)
    assert set(RAW_DATASETS) <= set(OFFICIAL_SOURCES)


def test_the_official_layouts_satisfy_the_check(raw_tree):
    for preparer, datasets in PREPARER_LAYOUTS.items():
        for dataset in datasets:
            assert missing_layout(preparer, dataset, raw_tree / dataset) == [], (preparer, dataset)


def test_every_layout_entry_is_needed_by_its_reader(raw_tree):
    """Remove one entry at a time: the DAG check names it, and the preparer itself cannot run without it."""
    for preparer, datasets in PREPARER_LAYOUTS.items():
        roots = {dataset: raw_tree / dataset for dataset in PREPARER_INPUTS[preparer]}
        for dataset, required in datasets.items():
            for entry in required:
                present = next(raw_tree / dataset / p for p in entry.paths if (raw_tree / dataset / p).exists())
                hidden = present.with_name(present.name + ".hidden")
                present.rename(hidden)
                try:
                    assert missing_layout(preparer, dataset, raw_tree / dataset) == [entry]
                    with pytest.raises(InputError):
                        prepare(preparer, roots, raw_tree.parent / "out" / preparer, GEOMETRY)
                finally:
                    hidden.rename(present)
                    shutil.rmtree(raw_tree.parent / "out", ignore_errors=True)


def test_paper_dry_run_fails_at_dag_build_naming_key_file_layout_and_source(tmp_path):
    out = dry_run(tmp_path)  # config/config.yaml: /data/... does not exist here
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert "Job stats" not in text and "prepare_dataset" in text  # nothing planned, let alone submitted
    assert "/data/celeba: raw dataset 'celeba' (config key `raw.celeba.root`, set in config/config.yaml)" in text
    assert "list_landmarks_align_celeba.txt" in text and OFFICIAL_SOURCES["celeba"] in text
    assert "Other prepared stores of this config lack raw data too:" in text and "ffhq_70k" in text


def test_the_message_names_the_config_file_that_sets_the_root_and_what_is_missing(tmp_path, raw_tree):
    celeba = tmp_path / "celeba"
    shutil.copytree(raw_tree / "celeba", celeba)
    (celeba / "list_landmarks_align_celeba.txt").unlink()
    overlay = roots_overlay(tmp_path / "my.yaml", {**{d: raw_tree / d for d in RAW_DATASETS}, "celeba": celeba})
    out = dry_run(tmp_path, overlay)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert f"config key `raw.celeba.root`, set in {overlay})" in text
    assert "lacks list_landmarks_align_celeba.txt (in the root or in Anno/, Eval/, Img/)" in text
    assert "raw dataset 'ffhq'" not in text  # only what is really missing


def test_paper_dry_run_with_every_raw_root_in_place_plans_every_store(tmp_path, raw_tree):
    overlay = roots_overlay(tmp_path / "roots.yaml", {d: raw_tree / d for d in RAW_DATASETS})
    out = dry_run(tmp_path, overlay)
    assert out.returncode == 0, out.stderr[-3000:]
    counts = {row[0]: int(row[1]) for row in map(str.split, out.stdout.splitlines())
              if len(row) == 2 and row[1].isdigit()}
    assert counts["prepare_dataset"] == len(yaml.safe_load((REPO / "config" / "config.yaml").read_text())["prepared"])


def test_demo_synthetic_roots_are_produced_by_the_dag_not_checked(tmp_path):
    out = dry_run(tmp_path, REPO / "config" / "demo.yaml")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "generate_synthetic" in out.stdout


def raw_roots(tmp_path, preparers, synthetic=()):
    """RawRoots over `tmp_path`: stores under prepared/, raw datasets under raw/, set in my.yaml."""
    return RawRoots(preparers, lambda s: str(tmp_path / "prepared" / s), lambda d: str(tmp_path / "raw" / d),
                    set(synthetic), lambda d: "my.yaml")


def test_raw_roots_name_what_each_store_lacks_and_the_other_stores(tmp_path, raw_tree, monkeypatch):
    monkeypatch.delenv(SKIP_RAW_CHECK_ENV, raising=False)
    (tmp_path / "raw").mkdir()
    shutil.copytree(raw_tree / "aflw_m", tmp_path / "raw" / "aflw_m")
    roots = raw_roots(tmp_path, {"mafl": "mafl", "aflw_m": "aflw_m", "w300": "w300", "mine": "image_folder"})
    assert roots.problems("aflw_m") == [] and roots.problems("mine") == []   # own data: inputs, not raw roots
    assert len(roots.problems("mafl")) == 2   # celeba and mafl
    with pytest.raises(InputError) as error:
        roots.check("mafl")
    assert str(error.value).splitlines() == [
        f"{tmp_path}/raw/celeba: raw dataset 'celeba' (config key `raw.celeba.root`, set in my.yaml) does not exist. "
        "The prepared store 'mafl' (preparer mafl) needs this layout under that root: list_landmarks_align_celeba.txt "
        "(in the root or in Anno/, Eval/, Img/), img_align_celeba/ (in the root or in Anno/, Eval/, Img/). Fix: get "
        f"{OFFICIAL_SOURCES['celeba']}; set `raw.celeba.root` in my.yaml to the directory holding it.",
        f"{tmp_path}/raw/mafl: raw dataset 'mafl' (config key `raw.mafl.root`, set in my.yaml) does not exist. "
        "The prepared store 'mafl' (preparer mafl) needs this layout under that root: training.txt, testing.txt. "
        f"Fix: get {OFFICIAL_SOURCES['mafl']}; set `raw.mafl.root` in my.yaml to the directory holding it.",
        "Other prepared stores of this config lack raw data too: w300."]
    roots.check("aflw_m")   # its layout is there


def test_raw_roots_skip_synthetic_roots_prepared_stores_and_the_test_suites_plans(tmp_path, monkeypatch):
    monkeypatch.delenv(SKIP_RAW_CHECK_ENV, raising=False)
    raw_roots(tmp_path, {"mafl": "mafl"}, synthetic=("celeba", "mafl")).check("mafl")   # outputs of the DAG
    roots = raw_roots(tmp_path, {"mafl": "mafl", "w300": "w300"})
    with pytest.raises(InputError, match="Other prepared stores of this config lack raw data too: w300.$"):
        roots.check("mafl")
    (tmp_path / "prepared" / "w300").mkdir(parents=True)   # an existing store needs no raw data
    with pytest.raises(InputError) as error:
        roots.check("mafl")
    assert "Other prepared stores" not in str(error.value)
    roots.check("w300")
    monkeypatch.setenv(SKIP_RAW_CHECK_ENV, "1")
    roots.check("mafl")


def test_paper_dry_run_with_a_store_of_your_own_names_the_missing_raw_data(tmp_path):
    """Own-data stores read no raw root: the check of the paper stores still names what they lack."""
    (tmp_path / "images").mkdir()
    overlay = tmp_path / "own.yaml"
    overlay.write_text(yaml.safe_dump({"prepared": {"mine": {"preparer": "image_folder_gan",
                                                              "images": str(tmp_path / "images")}}}))
    out = dry_run(tmp_path, overlay)
    text = out.stdout + out.stderr
    assert out.returncode != 0 and "KeyError" not in text
    assert "Other prepared stores of this config lack raw data too:" in text and "raw dataset 'celeba'" in text


def test_key_source_follows_snakemakes_precedence(tmp_path):
    default, first, second = tmp_path / "config.yaml", tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("raw: {celeba: {root: /a}}\n")
    second.write_text("seed: 1\n")
    keys = ("raw", "celeba", "root")
    assert key_source(keys, default, [first, second]) == str(first)  # the last file that sets it
    assert key_source(keys, default, [second]) == str(default)
    assert key_source(keys, default, [first], {"raw": {"celeba": {"root": "/c"}}}) == "--config (command line)"
