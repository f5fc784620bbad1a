"""config/tables.yaml holds every thesis table with the thesis's exact numbers."""

from collections import defaultdict
from pathlib import Path

import pytest

from lead_hsr.report.spec import cell_run, load_tables, parse_thesis_value, run_key, table_runs

TABLES_YAML = Path(__file__).resolve().parents[2] / "config" / "tables.yaml"
# rows per table as printed in the thesis (Table 4.5's two halves stacked)
THESIS_ROW_COUNTS = {"table_3.1": 9, "table_3.2": 15, "table_3.3": 5, "table_3.4": 7, "table_3.5": 9,
                     "table_3.6": 4, "table_3.7": 4, "table_4.1": 6, "table_4.2": 5, "table_4.3": 4,
                     "table_4.4": 4, "table_4.5": 12, "fig_4.10": 2}


@pytest.fixture(scope="module")
def tables():
    return load_tables(TABLES_YAML)


def _cell(tables, table_id, label, column):
    rows = [row for row in tables[table_id]["rows"] if [str(v) for v in row["label"]] == label]
    assert len(rows) == 1, (table_id, label)
    return rows[0]["thesis"][column]


def test_every_thesis_table_is_present_with_its_rows(tables):
    assert set(tables) == set(THESIS_ROW_COUNTS)
    assert {table_id: len(spec["rows"]) for table_id, spec in tables.items()} == THESIS_ROW_COUNTS


@pytest.mark.parametrize("table_id, label, column, printed", [
    ("table_3.1", ["DVE [104]", "64"], "different", "2.38"),
    ("table_3.1", ["LEAD (ours)", "3840"], "same", "0.49"),
    ("table_3.2", ["Supervised", "TCDCN [132]", "✗"], "w300", "5.54"),
    ("table_3.2", ["Global Objective based", "LEAD (ours)", "✓"], "aflw_r", "5.65"),
    ("table_3.2", ["Dense objective based", "Dense3D [105]", "✓"], "aflw_m", "10.99"),
    ("table_3.3", ["64", "X"], "different", "2.79"),
    ("table_3.4", ["CL [22]", "256"], "w300", "4.99"),
    ("table_3.5", ["LEAD (ours)", "128"], "n50", "8.89 ± 0.2"),
    ("table_3.5", ["CL [22]", "3840"], "n1", "42.69 ± 5.10"),
    ("table_3.5", ["LEAD (ours)", "64"], "n1", "21.8 ± 2.54"),
    ("table_3.6", ["CL", "LEAD"], "d256", "6.69"),
    ("table_3.7", ["3840"], "flops", "2.21"),
    ("table_4.1", ["+ ResNet50 DINO [12]"], "ppl", "55.6"),
    ("table_4.2", ["+ Low-level (r/8, r/4)"], "fid", "53.66"),
    ("table_4.3", ["LSUN-Church", "+ HSR"], "ppl", "678.55"),
    ("table_4.3", ["FFHQ-140k", "SG2"], "recall", "0.45"),
    ("table_4.4", ["✗", "✓"], "ppl", "58.60"),
    ("table_4.5", ["AnimalFace Cat", "StyleGAN2-ADA"], "fid", "39.50"),
    ("table_4.5", ["CUB", "+ HSR"], "ppl", "237.81"),
    ("fig_4.10", ["+HSR"], "mean", "1.32"),
    ("fig_4.10", ["SG2-ADA"], "bangs", "1.95"),
])
def test_spot_checked_thesis_numbers(tables, table_id, label, column, printed):
    assert _cell(tables, table_id, label, column) == printed


def test_missing_cells_and_stds_parse(tables):
    assert _cell(tables, "table_3.2", ["Supervised", "RAR [119]", "✗"], "mafl") == "-"
    assert parse_thesis_value("-") is None
    assert parse_thesis_value("8.89 ± 0.2") == (8.89, 0.2)
    assert parse_thesis_value("55.6") == (55.6, None)


def test_quoted_rows_are_the_publications_we_do_not_reproduce(tables):
    quoted = {row["label"][0] for spec in tables.values() for row in spec["rows"] if row.get("quoted")}
    quoted |= {row["label"][1] for row in tables["table_3.2"]["rows"] if row.get("quoted")}
    assert "DVE [104]" in quoted and "TCDCN [132]" in quoted and "DVE Hourglass [104]" in quoted
    reproduced = {str(row["label"][0]) for spec in tables.values() for row in spec["rows"] if not row.get("quoted")}
    assert {"CL [22]", "LEAD (ours)", "BYOL + NMF", "StyleGAN2-ADA"} <= reproduced


def test_shared_runs_have_the_same_thesis_numbers(tables):
    """A (run, metric) used by several tables must carry one thesis number: catches copy errors and wrong keys."""
    printed = defaultdict(set)
    for table_id, spec in tables.items():
        for row in spec["rows"]:
            if row.get("quoted"):
                continue
            for column in spec["columns"]:
                printed[(run_key(cell_run(row, column)), column["metric"])].add(row["thesis"][column["name"]])
    conflicts = {key: values for key, values in printed.items() if len(values) > 1}
    assert conflicts == {}
    # the sharing is real: the AnimalFace-Dog baseline appears in Tables 4.1, 4.2, 4.4 and 4.5
    dog = run_key({"dataset": "animalface_dog", "aug": "ada", "plr": "on", "hsr": "none", "hsr_levels": "none"})
    using = [t for t, spec in tables.items() if dog in {run_key(r) for r in table_runs(spec)}]
    assert using == ["table_4.1", "table_4.2", "table_4.4", "table_4.5"]


def test_landmark_runs_name_every_wildcard(tables):
    """Every landmark run names task/stage1/stage2/dim (+dataset/annotations for regression): no ambiguous keys."""
    for table_id in ("table_3.1", "table_3.2", "table_3.3", "table_3.4", "table_3.5", "table_3.6", "table_3.7"):
        for run in table_runs(tables[table_id]):
            required = {"task", "stage1", "stage2", "dim"}
            if run["task"] == "regression":
                required |= {"dataset", "annotations"}
            assert required <= set(run), (table_id, run)
            assert ("proj" in run) == (run["stage2"] == "lead"), (table_id, run)
