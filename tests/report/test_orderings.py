"""Thesis orderings: the spec is checked against the thesis's own numbers; ours are means over cells and seeds,
with intervals and verdicts (lead_hsr.report.noise)."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from lead_hsr.errors import InputError
from lead_hsr.report.noise import VERDICT_RULE
from lead_hsr.report.orderings import build_orderings, summary, to_markdown, write_orderings
from lead_hsr.report.samples import ratio_entry, write_samples
from lead_hsr.report.spec import (load_orderings, load_tables, orderings_of_tables, result_key,
                                  validate_ordering, validate_table)

REPO = Path(__file__).resolve().parents[2]
TABLES_YAML = REPO / "config" / "tables.yaml"

TABLES = {"toy": validate_table("toy", {
    "caption": "Toy regression table",
    "index": ["Method"],
    "columns": [
        {"name": "a", "label": "A", "metric": "iod", "run": {"dataset": "a"}},
        {"name": "b", "label": "B", "metric": "iod", "run": {"dataset": "b"}},
    ],
    "rows": [
        {"label": ["Quoted"], "quoted": True, "thesis": {"a": "1.00", "b": "1.00"}},
        {"label": ["LEAD"], "run": {"method": "lead"}, "thesis": {"a": "2.00", "b": "4.00"}},
        {"label": ["CL"], "run": {"method": "cl"}, "thesis": {"a": "3.00", "b": "4.00"}},
    ],
})}
LEAD_BEATS_CL = {"claim": "LEAD beats CL", "lower_is_better": True,
                 "better": {"table": "toy", "row": ["LEAD"], "columns": ["a", "b"]},
                 "worse": {"table": "toy", "row": ["CL"], "columns": ["a", "b"]}}
CHECK = {"claim": "learned beats random", "lower_is_better": True,
         "better": {"run": {"method": "learned"}, "metric": "iod"},
         "worse": {"run": {"method": "random"}, "metric": "iod"}}


def _results(lead_a, lead_b, cl_a, cl_b, learned=1.0, random=2.0):
    """Metric dicts per result key; a cell given as a list has one run per value (seeds)."""
    key = lambda method, dataset: result_key({"method": method, "dataset": dataset}, "iod")  # noqa: E731
    runs = lambda value: [{"iod": v} for v in (value if isinstance(value, list) else [value])]  # noqa: E731
    return {key("lead", "a"): runs(lead_a), key("lead", "b"): runs(lead_b),
            key("cl", "a"): runs(cl_a), key("cl", "b"): runs(cl_b),
            result_key({"method": "learned"}, "iod"): runs(learned),
            result_key({"method": "random"}, "iod"): runs(random)}


def _samples(results, spread=0.1, n=50):
    """Per-sample entries whose ratio is each single-run cell's value: value + a fixed zero-mean pattern, on the
    same test images for every cell of a dataset (paired)."""
    pattern = np.random.default_rng(0).standard_normal(n)
    pattern = spread * (pattern - pattern.mean())
    samples = {}
    for key, runs in results.items():
        if len(runs) == 1:
            dataset = key.split("/")[0].split("~")[1]  # "dataset~a/method~lead@iod" -> "a"
            samples[key] = [{"iod": ratio_entry(runs[0]["iod"] + pattern, np.ones(n), f"test images of {dataset}")}]
    return samples


def _build(orderings, results, **kwargs):
    return build_orderings(orderings, TABLES, results, _samples(results, **kwargs))


def test_every_ordering_of_the_thesis_holds_on_the_thesis_numbers():
    tables = load_tables(TABLES_YAML)
    orderings = load_orderings(TABLES_YAML, tables)
    assert len(orderings) >= 10
    assert {o["better"]["table"] for o in orderings if "table" in o["better"]} >= {"table_3.1", "table_4.1"}


def test_a_claim_the_thesis_numbers_contradict_is_refused():
    swapped = {**LEAD_BEATS_CL, "better": LEAD_BEATS_CL["worse"], "worse": LEAD_BEATS_CL["better"]}
    with pytest.raises(InputError, match="orderings entry 3.*do not satisfy.*LEAD beats CL"):
        validate_ordering(3, swapped, TABLES, "tables.yaml")


@pytest.mark.parametrize("side, message", [
    ({"table": "toy", "row": ["DVE"], "columns": ["a"]}, "no row"),
    ({"table": "toy", "row": ["Quoted"], "columns": ["a"]}, "quoted"),
    ({"table": "toy", "row": ["LEAD"], "columns": ["c"]}, "columns"),
    ({"table": "nope", "row": ["LEAD"], "columns": ["a"]}, "no table"),
    ({"run": {"method": "x"}}, "exactly 'run' and 'metric'"),
])
def test_a_side_that_names_nothing_is_refused(side, message):
    with pytest.raises(InputError, match=message):
        validate_ordering(1, {**LEAD_BEATS_CL, "worse": side}, TABLES, "tables.yaml")


def test_ours_is_the_mean_over_cells_with_a_paired_bootstrap_interval():
    # LEAD: (1 + 6) / 2 = 3.5 vs CL (3 + 5) / 2 = 4.0; per-image noise (spread 0.1) is shared by both sides
    table = _build([LEAD_BEATS_CL, CHECK], _results(1.0, 6.0, 3.0, 5.0))
    first, check = table.iloc[0], table.iloc[1]
    assert first["thesis"] == "3.00 vs 3.50" and first["ours"] == "3.50 vs 4.00"
    assert first["margin here"] == "+12.5%" and check["margin here"] == "+50.0%"
    assert first["better side"] == "Toy, LEAD: mean of A, B"
    # paired on the same images: the shared noise cancels, the difference is exactly 0.5 on every resample
    assert first["difference [95% interval]"] == "+0.500 [+0.500, +0.500]" and first["verdict"] == "holds"
    assert first["interval from"].startswith("paired bootstrap over test images of a; test images of b (B=1000")
    low, high = (float(x) for x in first["ours, better side [95% interval]"].split("[")[1].rstrip("]").split(","))
    assert low < 3.5 < high  # the side itself varies with the resampled images
    assert check["thesis"] == "-" and check["ours"] == "1.00 vs 2.00" and check["verdict"] == "holds"
    assert summary(table) == ("1 orderings of the thesis: 1 holds, 0 reversed, 0 within noise; "
                              "1 learning checks: 1 holds, 0 reversed, 0 within noise.")


def test_noise_larger_than_the_difference_on_other_samples_is_within_noise():
    results = _results(1.0, 6.0, 3.0, 5.0)
    samples = _samples(results, spread=20.0)
    key = result_key({"method": "cl", "dataset": "a"}, "iod")
    samples[key][0]["iod"]["sample_set"] = "other images"  # not the same images: resampled independently
    samples[key][0]["iod"]["values"] = samples[key][0]["iod"]["values"][::-1].copy()
    row = build_orderings([LEAD_BEATS_CL], TABLES, results, samples).iloc[0]
    assert row["verdict"] == "within noise" and "1 of 2 cells paired" in row["interval from"]
    assert row["ours"] == "3.50 vs 4.00" and row["margin here"] == "+12.5%"


def test_a_reversed_ordering_and_higher_is_better():
    reversed_row = _build([LEAD_BEATS_CL], _results(5.0, 6.0, 3.0, 5.0)).iloc[0]
    assert reversed_row["verdict"] == "reversed" and reversed_row["difference [95% interval]"].startswith("-1.50")
    higher = {**CHECK, "lower_is_better": False}
    row = _build([higher], _results(1, 1, 1, 1, learned=3.0)).iloc[0]
    assert row["verdict"] == "holds" and row["margin here"] == "+50.0%"
    tie = _build([LEAD_BEATS_CL], _results(3.5, 3.5, 3.5, 3.5)).iloc[0]
    assert tie["verdict"] == "within noise"


def test_cells_with_seeds_take_a_paired_t_interval_over_seeds():
    # per seed (mean of a and b): LEAD 3.0, 3.2, 3.4; CL 3.5, 3.8, 4.1 -> differences 0.5, 0.6, 0.7
    results = _results([2.0, 2.2, 2.4], [4.0, 4.2, 4.4], [3.0, 3.4, 3.8], [4.0, 4.2, 4.4])
    row = build_orderings([LEAD_BEATS_CL], TABLES, results, {}).iloc[0]
    assert row["ours"] == "3.20 vs 3.80" and row["interval from"].startswith("t interval over 3 seeds, paired")
    # mean 0.6, sd 0.1, t(0.975, 2) = 4.303: 0.6 -+ 0.248
    assert row["difference [95% interval]"] == "+0.600 [+0.352, +0.848]" and row["verdict"] == "holds"


def test_cells_with_different_seed_counts_are_refused():
    with pytest.raises(InputError, match="LEAD beats CL.*different seed counts"):
        build_orderings([LEAD_BEATS_CL], TABLES, _results([1.0, 3.0], 6.0, 3.0, 4.0), {})


def test_a_single_run_without_per_sample_values_is_refused():
    with pytest.raises(InputError, match="LEAD beats CL.*no per-sample values"):
        build_orderings([LEAD_BEATS_CL], TABLES, _results(1.0, 6.0, 3.0, 5.0), {})


def test_written_files_count_the_verdicts(tmp_path):
    results = _results(1.0, 2.0, 3.0, 4.0)
    samples = _samples(results)
    paths = {}
    for key, runs in results.items():
        path = tmp_path / f"{len(paths)}.json"
        write_samples(path, samples[key][0])
        path.write_text(json.dumps(runs[0]))
        paths[key] = [path]
    write_orderings([LEAD_BEATS_CL, CHECK], TABLES, paths, tmp_path / "orderings", footnote="demo data")
    markdown = (tmp_path / "orderings.md").read_text()
    assert "1 orderings of the thesis: 1 holds, 0 reversed, 0 within noise" in markdown
    assert "- demo data" in markdown and VERDICT_RULE in markdown
    assert "LEAD beats CL" in markdown and (tmp_path / "orderings.csv").read_text().count("\n") == 3
    first = (tmp_path / "orderings.csv").read_bytes()
    write_orderings([LEAD_BEATS_CL, CHECK], TABLES, paths, tmp_path / "orderings", footnote="demo data")
    assert (tmp_path / "orderings.csv").read_bytes() == first  # deterministic


def test_a_missing_result_names_the_ordering(tmp_path):
    with pytest.raises(InputError, match="LEAD beats CL"):
        build_orderings([LEAD_BEATS_CL], TABLES, {}, {})


def test_markdown_has_no_footnote_line_without_one():
    table = _build([CHECK], _results(1, 1, 1, 1))
    assert "- None" not in to_markdown(table) and "learning checks" in to_markdown(table)


def test_orderings_are_documented_in_the_tables_header():
    header = TABLES_YAML.read_text().split("\norderings:")[0]
    assert "lower_is_better" in header and yaml.safe_load(TABLES_YAML.read_text())["orderings"]


def test_a_config_checks_the_orderings_of_its_tables_and_the_learning_checks_only_with_them():
    other = {**LEAD_BEATS_CL, "claim": "other", "worse": {"table": "other", "row": ["X"], "columns": ["a"]}}
    orderings = [LEAD_BEATS_CL, other, CHECK]
    assert orderings_of_tables(orderings, ["toy"]) == [LEAD_BEATS_CL, CHECK]
    assert orderings_of_tables(orderings, ["toy", "other"]) == [LEAD_BEATS_CL, other, CHECK]
    assert orderings_of_tables(orderings, ["unrelated"]) == []  # a learning check never alone


def test_per_sample_values_from_another_run_are_refused():
    results = _results(1.0, 6.0, 3.0, 5.0)
    samples = _samples(results)
    results[result_key({"method": "cl", "dataset": "b"}, "iod")] = [{"iod": 5.5}]  # JSON rerun, samples not
    with pytest.raises(InputError, match="LEAD beats CL.*give 5, its metric JSON 5.5.*different runs"):
        build_orderings([LEAD_BEATS_CL], TABLES, results, samples)
