"""Thesis orderings: the spec is checked against the thesis's own numbers; ours are means over cells and seeds."""

import json
from pathlib import Path

import pytest
import yaml

from lead_hsr.errors import InputError
from lead_hsr.report.orderings import build_orderings, summary, to_markdown, write_orderings
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
    key = lambda method, dataset: result_key({"method": method, "dataset": dataset}, "iod")  # noqa: E731
    return {key("lead", "a"): [{"iod": v} for v in lead_a], key("lead", "b"): [{"iod": lead_b}],
            key("cl", "a"): [{"iod": cl_a}], key("cl", "b"): [{"iod": cl_b}],
            result_key({"method": "learned"}, "iod"): [{"iod": learned}],
            result_key({"method": "random"}, "iod"): [{"iod": random}]}


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


def test_ours_is_the_mean_over_cells_of_the_mean_over_seeds():
    # LEAD: a = mean(1, 3) = 2, b = 6 -> 4.0; CL: (3 + 4) / 2 = 3.5 -> the thesis's ordering does not hold here
    table = build_orderings([LEAD_BEATS_CL, CHECK], TABLES, _results([1.0, 3.0], 6.0, 3.0, 4.0))
    first, check = table.iloc[0], table.iloc[1]
    assert first["thesis"] == "3.00 vs 3.50" and first["ours"] == "4.00 vs 3.50" and first["holds here"] == "no"
    assert first["margin here"] == "-14.3%" and check["margin here"] == "+50.0%"
    assert first["better side"] == "Toy, LEAD: mean of A, B"
    assert check["thesis"] == "-" and check["ours"] == "1.00 vs 2.00" and check["holds here"] == "yes"
    assert summary(table) == "0 of 1 orderings of the thesis hold in this run; 1 of 1 learning checks hold."


def test_a_tie_does_not_hold_and_higher_is_better_flips_the_test():
    tie = build_orderings([LEAD_BEATS_CL], TABLES, _results([3.5], 3.5, 3.5, 3.5))
    assert tie.iloc[0]["holds here"] == "no"
    higher = {**CHECK, "lower_is_better": False}
    row = build_orderings([higher], TABLES, _results([1], 1, 1, 1, learned=3.0)).iloc[0]
    assert row["holds here"] == "yes" and row["margin here"] == "+50.0%"


def test_written_files_say_which_hold(tmp_path):
    paths = {}
    for key, runs in _results([1.0], 2.0, 3.0, 4.0).items():
        path = tmp_path / f"{len(paths)}.json"
        path.write_text(json.dumps(runs[0]))
        paths[key] = [path]
    write_orderings([LEAD_BEATS_CL, CHECK], TABLES, paths, tmp_path / "orderings", footnote="demo data")
    markdown = (tmp_path / "orderings.md").read_text()
    assert "1 of 1 orderings of the thesis hold in this run" in markdown and "- demo data" in markdown
    assert "LEAD beats CL" in markdown and (tmp_path / "orderings.csv").read_text().count("\n") == 3


def test_a_missing_result_names_the_ordering(tmp_path):
    with pytest.raises(InputError, match="LEAD beats CL"):
        build_orderings([LEAD_BEATS_CL], TABLES, {})


def test_markdown_has_no_footnote_line_without_one():
    table = build_orderings([CHECK], TABLES, _results([1], 1, 1, 1))
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
