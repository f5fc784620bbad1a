"""Table aggregation: seeds -> mean ± population std, quoted rows, the three output formats."""

import json
import statistics

import pandas as pd
import pytest

from lead_hsr.errors import InputError
from lead_hsr.report.spec import run_key, table_runs, validate_table
from lead_hsr.report.tables import aggregate, build_table, format_ours, read_results, write_table

SPEC = validate_table("toy", {
    "caption": "Toy regression table",
    "index": ["Method", "Feat. dim."],
    "columns": [
        {"name": "mafl", "label": "MAFL", "metric": "iod", "run": {"dataset": "mafl"}},
        {"name": "aflw_m", "label": "AFLW_M", "metric": "iod", "run": {"dataset": "aflw_m"}},
    ],
    "notes": ["a reading choice"],
    "rows": [
        {"label": ["DVE [104]", "64"], "quoted": True, "thesis": {"mafl": "2.86", "aflw_m": "7.53"}},
        {"label": ["LEAD (ours)", "64"], "run": {"method": "lead", "dim": 64},
         "thesis": {"mafl": "2.93", "aflw_m": "6.61 ± 0.12"}},
    ],
})
LEAD_MAFL = run_key({"method": "lead", "dim": 64, "dataset": "mafl"})
LEAD_AFLW = run_key({"method": "lead", "dim": 64, "dataset": "aflw_m"})


def _results():
    return {LEAD_MAFL: [{"iod": 1.0}, {"iod": 2.0}, {"iod": 4.0}],
            LEAD_AFLW: [{"iod": 6.5, "note": "stand-in extractor: random ViT"}]}


def test_run_keys_are_sorted_path_like_and_merge_column_wildcards():
    assert LEAD_MAFL == "dataset~mafl/dim~64/method~lead"
    assert run_key({"b": 1, "a": "x"}) == run_key({"a": "x", "b": 1}) == "a~x/b~1"
    assert [run_key(run) for run in table_runs(SPEC)] == [LEAD_MAFL, LEAD_AFLW]  # quoted rows need no run


def test_mean_and_population_std_over_seeds():
    values = [1.0, 2.0, 4.0]
    mean, std, count = aggregate(values)
    assert mean == pytest.approx(statistics.fmean(values)) and count == 3
    assert std == pytest.approx(statistics.pstdev(values))  # population (ddof=0), not sample std
    assert std != pytest.approx(statistics.stdev(values))
    assert format_ours(values, 2) == "2.33 ± 1.25"
    assert format_ours([6.5], 2) == "6.50"  # a single run shows no ±


def test_build_table_ours_beside_thesis():
    table = build_table(SPEC, _results(), title="Table X", footnote="demo: synthetic data")
    assert table.loc[("LEAD (ours)", "64"), ("MAFL", "ours")] == "2.33 ± 1.25"
    assert table.loc[("LEAD (ours)", "64"), ("MAFL", "thesis")] == "2.93"
    assert table.loc[("LEAD (ours)", "64"), ("AFLW_M", "ours")] == "6.50"
    assert table.loc[("LEAD (ours)", "64"), ("AFLW_M", "thesis")] == "6.61 ± 0.12"
    assert table.loc[("DVE [104]", "64"), ("MAFL", "ours")] == ""  # quoted: thesis number only
    assert table.loc[("DVE [104]", "64"), ("MAFL", "thesis")] == "2.86"
    footnote = table.attrs["footnote"]
    assert footnote.startswith("demo: synthetic data")
    assert "stand-in extractor: random ViT" in footnote and "1/3 seeds" in footnote and "quoted" in footnote


def test_missing_run_or_metric_is_an_error():
    results = _results()
    del results[LEAD_AFLW]
    with pytest.raises(InputError, match="no result files for run dataset~aflw_m/dim~64/method~lead"):
        build_table(SPEC, results)
    results = _results()
    results[LEAD_AFLW] = [{"fid": 3.0}]
    with pytest.raises(InputError, match=r"no number for metric 'iod'.*\['fid'\]"):
        build_table(SPEC, results)


def test_read_results_and_bad_json(tmp_path):
    good, bad = tmp_path / "seed0.json", tmp_path / "seed1.json"
    good.write_text(json.dumps({"iod": 3.5}))
    bad.write_text('{"iod": 3.5,\n  oops}')
    assert read_results({LEAD_MAFL: [good]}) == {LEAD_MAFL: [{"iod": 3.5}]}
    with pytest.raises(InputError, match=r"seed1.json:2: not valid JSON"):
        read_results({LEAD_MAFL: [good, bad]})
    with pytest.raises(InputError, match="not found"):
        read_results({LEAD_MAFL: [tmp_path / "absent.json"]})


def test_three_formats_hold_both_numbers(tmp_path):
    table = build_table(SPEC, _results(), title="Table X", footnote="demo: synthetic data")
    csv, md, tex = write_table(table, tmp_path / "tables" / "table_x")
    assert [p.name for p in (csv, md, tex)] == ["table_x.csv", "table_x.md", "table_x.tex"]
    assert sorted(p.name for p in csv.parent.iterdir()) == ["table_x.csv", "table_x.md", "table_x.tex"]  # no temps

    parsed = pd.read_csv(csv, header=[0, 1], index_col=[0, 1], keep_default_na=False, dtype=str)
    assert parsed.loc[("LEAD (ours)", "64"), ("MAFL", "ours")] == "2.33 ± 1.25"
    assert parsed.loc[("DVE [104]", "64"), ("AFLW_M", "thesis")] == "7.53"
    assert parsed.loc[("DVE [104]", "64"), ("AFLW_M", "ours")] == ""

    markdown = md.read_text()
    assert markdown.startswith("**Table X: Toy regression table**")
    lead_line = next(line for line in markdown.splitlines() if line.startswith("| LEAD (ours)"))
    assert [cell.strip() for cell in lead_line.strip("|").split("|")] == [
        "LEAD (ours)", "64", "2.33 ± 1.25", "2.93", "6.50", "6.61 ± 0.12"]
    assert "- a reading choice" in markdown and "demo: synthetic data" in markdown

    latex = tex.read_text()
    assert latex.startswith("\\begin{table}") and latex.rstrip().endswith("\\end{table}")
    assert "\\caption{Table X: Toy regression table}" in latex
    assert "LEAD (ours) & 64 & 2.33 $\\pm$ 1.25 & 2.93 & 6.50 & 6.61 $\\pm$ 0.12 \\\\" in latex
    assert "AFLW\\_M" in latex and "\\multicolumn{2}{c}{MAFL}" in latex


def test_spec_validation_names_the_problem():
    spec = {**SPEC, "rows": [{"label": ["LEAD", "64"], "run": {"plr": True}, "thesis": {"mafl": "1", "aflw_m": "2"}}]}
    with pytest.raises(InputError, match=r"toy row 1: wildcard plr=True .*quote YAML words"):
        validate_table("toy", spec)
    spec = {**SPEC, "rows": [{"label": ["LEAD", "64"], "quoted": True, "thesis": {"mafl": "1"}}]}
    with pytest.raises(InputError, match=r"exactly the columns \['mafl', 'aflw_m'\]"):
        validate_table("toy", spec)
    spec = {**SPEC, "rows": [{"label": ["LEAD"], "quoted": True, "thesis": {"mafl": "1", "aflw_m": "2"}}]}
    with pytest.raises(InputError, match="list of 2 values"):
        validate_table("toy", spec)
    spec = {**SPEC, "rows": [{"label": ["a", "b"], "quoted": True, "thesis": {"mafl": "n/a", "aflw_m": "2"}}]}
    with pytest.raises(InputError, match="not a number"):
        validate_table("toy", spec)


def test_report_table_end_to_end(tmp_path):
    from lead_hsr.report.spec import default_title
    from lead_hsr.report.tables import report_table

    assert default_title("table_3.1") == "Table 3.1" and default_title("fig_4.10") == "Figure 4.10"
    tables_yaml = tmp_path / "tables.yaml"
    tables_yaml.write_text(json.dumps({"tables": {"table_9.9": SPEC}}))  # JSON is YAML
    paths = {}
    for key, seeds in _results().items():
        paths[key] = []
        for seed, metrics in enumerate(seeds):
            path = tmp_path / "runs" / key / f"seed~{seed}" / "metrics.json"
            path.parent.mkdir(parents=True)
            path.write_text(json.dumps(metrics))
            paths[key].append(path)
    csv, md, tex = report_table(tables_yaml, "table_9.9", paths, tmp_path / "out" / "table_9.9", footnote="demo")
    assert md.read_text().startswith("**Table 9.9: Toy regression table**")
    assert "2.33 ± 1.25" in csv.read_text(encoding="utf-8")
    with pytest.raises(InputError, match="no table 'table_1.1'"):
        report_table(tables_yaml, "table_1.1", paths, tmp_path / "out" / "x")
