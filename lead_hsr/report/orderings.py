"""Which of the thesis's orderings hold in this run, with the numbers on both sides.

Values of a small run (the demo, your own data) are not comparable with the thesis's; its orderings are what a
reader wants to check ("LEAD's stage 2 matches better than its stage-1 hypercolumns", "HSR lowers PPL"). The
orderings are data, the `orderings:` list of config/tables.yaml (format in its header, validated by
`lead_hsr.report.spec.load_orderings`, which also checks that the thesis's own numbers satisfy each one). A side
is a table cell, or the mean of several cells of one row (e.g. the four regression datasets), or a run outside
the thesis's tables (a learning check such as a random-init network).

    orderings = load_orderings("config/tables.yaml", tables)
    write_orderings(orderings, tables, {result_key(run, metric): [json, ...]}, "results/tables/orderings")
"""

from __future__ import annotations

import pandas as pd

from lead_hsr.atomic import atomic_write_text
from lead_hsr.report.spec import default_title, ordering_holds, ordering_side_cells, result_key, thesis_side_value
from lead_hsr.report.tables import metric_values, aggregate, read_results

NOT_IN_THESIS = "learning check (no thesis number)"


def side_source(side: dict, tables: dict[str, dict]) -> str:
    if "run" in side:
        return NOT_IN_THESIS
    spec = tables[side["table"]]
    labels = {column["name"]: column["label"] for column in spec["columns"]}
    columns = ", ".join(labels[name] for name in side["columns"])
    mean = "mean of " if len(side["columns"]) > 1 else ""
    return f"{default_title(side['table'])}, {' '.join(map(str, side['row']))}: {mean}{columns}"


def _ours(side: dict, tables: dict[str, dict], results: dict[str, list[dict]], where: str) -> float:
    """Our value of one side: the mean over its cells of each cell's mean over seeds."""
    means = []
    for run, metric, _, _ in ordering_side_cells(side, tables):
        key = result_key(run, metric)
        means.append(aggregate(metric_values(results.get(key, []), metric, key, where))[0])
    return sum(means) / len(means)


def _pair(better: float | None, worse: float | None) -> str:
    return "-" if better is None or worse is None else f"{better:.2f} vs {worse:.2f}"


def margin(better: float, worse: float, lower_is_better: bool) -> str:
    """How far the better side is ahead, relative to the worse side: positive when the ordering holds. A margin
    of a few percent on a small run (the demo's sample counts) is within its noise."""
    if worse == 0:
        return "-"
    ahead = (worse - better) if lower_is_better else (better - worse)
    return f"{100 * ahead / abs(worse):+.1f}%"


def build_orderings(orderings: list[dict], tables: dict[str, dict], results: dict[str, list[dict]]) -> pd.DataFrame:
    """One row per ordering: the claim, where its sides come from, the thesis's and our numbers, and whether it
    holds here ('yes' / 'no'; a tie is 'no')."""
    rows = []
    for number, ordering in enumerate(orderings, start=1):
        where = f"orderings entry {number} ({ordering['claim']})"
        better, worse = (_ours(ordering[side], tables, results, where) for side in ("better", "worse"))
        thesis = [thesis_side_value(ordering[side], tables) for side in ("better", "worse")]
        rows.append({
            "claim": ordering["claim"],
            "better side": side_source(ordering["better"], tables),
            "worse side": side_source(ordering["worse"], tables),
            "direction": "lower is better" if ordering["lower_is_better"] else "higher is better",
            "thesis": _pair(*thesis),
            "ours": _pair(better, worse),
            "margin here": margin(better, worse, ordering["lower_is_better"]),
            "holds here": "yes" if ordering_holds(better, worse, ordering["lower_is_better"]) else "no",
        })
    return pd.DataFrame(rows)


def summary(table: pd.DataFrame) -> str:
    from_thesis = table[table["thesis"] != "-"]
    checks = table[table["thesis"] == "-"]
    parts = [f"{(from_thesis['holds here'] == 'yes').sum()} of {len(from_thesis)} orderings of the thesis hold in "
             "this run"]
    if len(checks):
        parts.append(f"{(checks['holds here'] == 'yes').sum()} of {len(checks)} learning checks hold")
    return "; ".join(parts) + "."


def to_markdown(table: pd.DataFrame, footnote: str | None = None) -> str:
    lines = ["**Thesis orderings: which hold in this run**", "", summary(table), "",
             table.to_markdown(index=False, disable_numparse=True), "",
             "- Each row compares two results; 'better side' is the one the thesis (or the check) finds better. "
             "Values are means over the listed cells and over seeds.",
             "- 'margin here': how far the better side is ahead, relative to the worse side (negative: the "
             "ordering does not hold); margins of a few percent on a small run are within its noise.",
             "- An ordering that does not hold here is a finding about this run's budget and data, not a rounding "
             "issue: the numbers on both sides are shown."]
    if footnote:
        lines.append(f"- {footnote}")
    return "\n".join(lines) + "\n"


def write_orderings(orderings: list[dict], tables: dict[str, dict], paths_by_result: dict[str, list],
                    out_stem, footnote: str | None = None) -> None:
    """Read the results, write `<out_stem>.csv` and `.md` atomically."""
    table = build_orderings(orderings, tables, read_results(paths_by_result))
    atomic_write_text(table.to_csv(index=False), f"{out_stem}.csv")
    atomic_write_text(to_markdown(table, footnote), f"{out_stem}.md")
