"""Which of the thesis's orderings hold in this run, with the numbers on both sides and their noise.

Values of a small run (the demo, your own data) are not comparable with the thesis's; its orderings are what a
reader wants to check ("LEAD's stage 2 matches better than its stage-1 hypercolumns", "HSR lowers PPL"). The
orderings are data, the `orderings:` list of config/tables.yaml (format in its header, validated by
`lead_hsr.report.spec.load_orderings`, which also checks that the thesis's own numbers satisfy each one). A side
is a table cell, or the mean of several cells of one row (e.g. the four regression datasets), or a run outside
the thesis's tables (a learning check such as a random-init network). Each side gets an interval and each
ordering a verdict, "holds", "reversed" or "within noise" (`lead_hsr.report.noise`: a t interval over seeds, or a
bootstrap over the per-sample values each metric job writes beside its JSON, `lead_hsr.report.samples`).

    orderings = load_orderings("config/tables.yaml", tables)
    write_orderings(orderings, tables, {result_key(run, metric): [json, ...]}, "results/tables/orderings")
"""

from __future__ import annotations

import math

import pandas as pd

from lead_hsr.atomic import atomic_write_text
from lead_hsr.errors import InputError
from lead_hsr.report.noise import (BOOTSTRAP_SEED, INTERVAL_LEVEL, RESAMPLES, VERDICT_RULE, VERDICTS, BootstrapCell,
                                   Comparison, Estimate, ahead, cell_from_entry, compare_bootstrap, compare_seeds)
from lead_hsr.report.samples import entry_value, read_samples
from lead_hsr.report.spec import default_title, ordering_side_cells, result_key, thesis_side_value
from lead_hsr.report.tables import metric_values, read_results

NOT_IN_THESIS = "learning check (no thesis number)"
LEVEL_TEXT = f"{INTERVAL_LEVEL:.0%} interval"


def side_source(side: dict, tables: dict[str, dict]) -> str:
    if "run" in side:
        return NOT_IN_THESIS
    spec = tables[side["table"]]
    labels = {column["name"]: column["label"] for column in spec["columns"]}
    columns = ", ".join(labels[name] for name in side["columns"])
    mean = "mean of " if len(side["columns"]) > 1 else ""
    return f"{default_title(side['table'])}, {' '.join(map(str, side['row']))}: {mean}{columns}"


def _cell_runs(side: dict, tables: dict[str, dict], results: dict[str, list[dict]],
               samples: dict[str, list[dict]], where: str) -> list[tuple[list[float], list[dict], str]]:
    """Each cell of one side: its values over seeds, its per-seed per-sample entries, its metric."""
    cells = []
    for run, metric, _, _ in ordering_side_cells(side, tables):
        key = result_key(run, metric)
        cells.append((metric_values(results.get(key, []), metric, key, where), samples.get(key, []), metric))
    return cells


def _bootstrap_cell(values: list[float], entries: list[dict], metric: str, where: str) -> BootstrapCell:
    fix = ("Fix: rerun the cell's metric job, which writes `<metrics>.samples.npz` beside its JSON (FID's "
           "replicates only when the config's orderings compare that run: rerun it with this config).")
    if not entries or metric not in entries[0]:
        raise InputError(f"{where}: no per-sample values of {metric!r} for a single-run cell (its samples file has "
                         f"{sorted(entries[0]) if entries else 'nothing'}). {fix}")
    entry = entries[0][metric]
    if "values" in entry and not math.isclose(entry_value(entry), values[0], rel_tol=1e-6, abs_tol=1e-9):
        raise InputError(f"{where}: the per-sample values of {metric!r} give {entry_value(entry):g}, its metric "
                         f"JSON {values[0]:g}: the two files come from different runs. {fix}")
    if "replicates" in entry and len(entry["replicates"]) != RESAMPLES:
        raise InputError(f"{where}: {len(entry['replicates'])} bootstrap replicates of {metric!r}, expected "
                         f"{RESAMPLES} (lead_hsr.report.noise.RESAMPLES changed since the run). {fix}")
    return cell_from_entry(entry, values[0])


def compare(ordering: dict, tables: dict[str, dict], results: dict[str, list[dict]],
            samples: dict[str, list[dict]], where: str) -> Comparison:
    """Both sides' values and intervals and the verdict (lead_hsr.report.noise): a t interval over seeds when
    every cell has the same S >= 2 seeds, a bootstrap over the evaluation samples when every cell is one run."""
    sides = [_cell_runs(ordering[side], tables, results, samples, where) for side in ("better", "worse")]
    seed_counts = {len(values) for cells in sides for values, _, _ in cells}
    lower = ordering["lower_is_better"]
    if seed_counts == {1}:
        better, worse = ([_bootstrap_cell(*cell, where) for cell in cells] for cells in sides)
        return compare_bootstrap(better, worse, lower)
    if len(seed_counts) == 1:
        better, worse = ([values for values, _, _ in cells] for cells in sides)
        return compare_seeds(better, worse, lower)
    raise InputError(f"{where}: its cells have different seed counts {sorted(seed_counts)}; an interval needs "
                     "either one run per cell (bootstrap over samples) or the same seeds on every cell. Fix: "
                     "compare cells with the same seeds in config/tables.yaml `orderings:`.")


def _pair(better: float | None, worse: float | None) -> str:
    return "-" if better is None or worse is None else f"{better:.2f} vs {worse:.2f}"


def _with_interval(estimate: Estimate, sign: str = "") -> str:
    """'17.60 [16.69, 18.51]'; three decimals below 1 (the demo's PPL differences), so a bound just above 0 does
    not print as 0.00."""
    numbers = (estimate.value, estimate.low, estimate.high)
    digits = 2 if max(abs(x) for x in numbers) >= 1 else 3
    value, low, high = (f"{x:{sign}.{digits}f}" for x in numbers)
    return f"{value} [{low}, {high}]"


def margin(better: float, worse: float, lower_is_better: bool) -> str:
    """How far the better side is ahead, relative to the worse side: positive when the ordering holds."""
    if worse == 0:
        return "-"
    return f"{100 * ahead(better, worse, lower_is_better) / abs(worse):+.1f}%"


def build_orderings(orderings: list[dict], tables: dict[str, dict], results: dict[str, list[dict]],
                    samples: dict[str, list[dict]]) -> pd.DataFrame:
    """One row per ordering: the claim, where its sides come from, the thesis's numbers, ours with their
    intervals, the difference's interval, how the intervals were obtained, and the verdict (VERDICT_RULE)."""
    rows = []
    for number, ordering in enumerate(orderings, start=1):
        where = f"orderings entry {number} ({ordering['claim']})"
        result = compare(ordering, tables, results, samples, where)
        thesis = [thesis_side_value(ordering[side], tables) for side in ("better", "worse")]
        rows.append({
            "claim": ordering["claim"],
            "better side": side_source(ordering["better"], tables),
            "worse side": side_source(ordering["worse"], tables),
            "direction": "lower is better" if ordering["lower_is_better"] else "higher is better",
            "thesis": _pair(*thesis),
            "ours": _pair(result.better.value, result.worse.value),
            f"ours, better side [{LEVEL_TEXT}]": _with_interval(result.better),
            f"ours, worse side [{LEVEL_TEXT}]": _with_interval(result.worse),
            f"difference [{LEVEL_TEXT}]": _with_interval(result.difference, "+"),
            "margin here": margin(result.better.value, result.worse.value, ordering["lower_is_better"]),
            "interval from": result.method,
            "verdict": result.verdict,
        })
    return pd.DataFrame(rows)


def _counts(rows: pd.DataFrame) -> str:
    return ", ".join(f"{(rows['verdict'] == name).sum()} {name}" for name in VERDICTS)


def summary(table: pd.DataFrame) -> str:
    """The verdicts counted, for the thesis's orderings and the learning checks separately."""
    from_thesis = table[table["thesis"] != "-"]
    checks = table[table["thesis"] == "-"]
    parts = [f"{len(from_thesis)} orderings of the thesis: {_counts(from_thesis)}"]
    if len(checks):
        parts.append(f"{len(checks)} learning checks: {_counts(checks)}")
    return "; ".join(parts) + "."


def to_markdown(table: pd.DataFrame, footnote: str | None = None) -> str:
    lines = ["**Thesis orderings: which hold in this run, and which are within its noise**", "", summary(table), "",
             table.to_markdown(index=False, disable_numparse=True), "",
             "- Each row compares two results; 'better side' is the one the thesis (or the check) finds better. "
             "Values are means over the listed cells (and over seeds).",
             f"- 'difference': how far the better side is ahead (worse - better when lower is better; positive: "
             f"the ordering holds), with its {LEVEL_TEXT}; 'margin here': the same, relative to the worse side.",
             f"- {VERDICT_RULE}.",
             f"- 'interval from': a t interval over seeds (paired by seed) where the cells have several seeds; "
             f"else a bootstrap ({RESAMPLES} resamples, seed {BOOTSTRAP_SEED}, percentile intervals) over the "
             "evaluation samples (test images, matching pairs, generated images, PPL paths, ALS pairs), with the "
             "same resample indices on both sides where they were evaluated on the same samples (paired). FID is "
             "recomputed on each resample of the generated images inside its metric job (the real set held fixed); "
             "recall resamples the real images with the generated manifold held fixed; PPL keeps the 1st-99th "
             "percentile filter of the full sample. A resample repeats images, which raises FID (its small-sample "
             "bias): FID's replicates are re-centred on its value (bias-corrected), keeping their spread.",
             "- A bootstrap over evaluation samples measures the noise of evaluating these trained networks, not "
             "the noise of training them: a single-run 'holds' or 'reversed' can change with another training "
             "seed. Only intervals 'over seeds' include training noise.",
             "- 'within noise' says this run cannot tell the two sides apart; it is not evidence against the "
             "thesis. A 'reversed' ordering is a finding about this run's budget and data."]
    if footnote:
        lines.append(f"- {footnote}")
    return "\n".join(lines) + "\n"


def read_all_samples(paths_by_result: dict[str, list]) -> dict[str, list[dict]]:
    """result key -> the per-sample entries beside each of its metric JSONs (lead_hsr.report.samples); read only
    for single-run cells (cells with several seeds take their interval from the seeds)."""
    return {key: [read_samples(path) for path in paths] if len(paths) == 1 else []
            for key, paths in paths_by_result.items()}


def write_orderings(orderings: list[dict], tables: dict[str, dict], paths_by_result: dict[str, list],
                    out_stem, footnote: str | None = None) -> None:
    """Read the results and their per-sample values, write `<out_stem>.csv` and `.md` atomically."""
    table = build_orderings(orderings, tables, read_results(paths_by_result), read_all_samples(paths_by_result))
    atomic_write_text(table.to_csv(index=False), f"{out_stem}.csv")
    atomic_write_text(to_markdown(table, footnote), f"{out_stem}.md")
