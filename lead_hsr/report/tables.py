"""Generic table aggregation: per-run metric JSONs -> one table with our numbers beside the thesis's.

    specs = load_tables("config/tables.yaml")                     # lead_hsr.report.spec
    results = read_results({run_key(run): [seed0.json, seed1.json, ...] for run in table_runs(spec)})
    table = build_table(specs["table_3.1"], results, title="Table 3.1", footnote="demo: synthetic data")
    write_table(table, "results/tables/table_3.1")                # .csv, .md, .tex, each written atomically

or, in one call from a workflow script, `report_table(tables_yaml, table_id, paths_by_run, out_stem, footnote)`.

A run's JSON maps metric names to numbers; an optional string entry "note" (e.g. "stand-in extractor:
random ViT") is collected into the table's footnote. Several JSONs for one run (seeds) give mean ± population
standard deviation (numpy std with ddof=0, as the thesis's Table 3.5 reports over seeds).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from lead_hsr.atomic import atomic_write_text
from lead_hsr.errors import InputError
from lead_hsr.report.spec import MISSING, OWN_TABLE_PREFIX, cell_run, default_title, load_tables, run_key

OURS, THESIS = "ours", "thesis"
NOTE_KEY = "note"  # optional free-text entry of a run's metric JSON
DEFAULT_DECIMALS = 2
_LATEX_SYMBOLS = {"±": r"$\pm$", "✓": r"$\checkmark$", "✗": r"$\times$", "↓": r"$\downarrow$", "↑": r"$\uparrow$"}


# ---------------------------------------------------------------- reading and aggregating results


def read_results(paths_by_run: dict[str, list]) -> dict[str, list[dict]]:
    """run key -> list of metric dicts, one per JSON file (one file per seed)."""
    results = {}
    for key, paths in paths_by_run.items():
        results[key] = [_read_metrics(Path(path)) for path in paths]
    return results


def _read_metrics(path: Path) -> dict:
    if not path.is_file():
        raise InputError(f"{path}: run metrics file not found. Fix: rebuild the run (snakemake {path}).")
    try:
        metrics = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise InputError(f"{path}:{error.lineno}: not valid JSON ({error.msg}); expected "
                         '{"metric": number, ...}. Fix: delete the file and rebuild the run.') from error
    if not isinstance(metrics, dict):
        raise InputError(f"{path}: expected a JSON object of metric name -> number, got {type(metrics).__name__}. "
                         "Fix: delete the file and rebuild the run.")
    return metrics


def aggregate(values: list[float]) -> tuple[float, float, int]:
    """(mean, population std, count) over seeds."""
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std(ddof=0)), len(array)


def metric_values(runs: list[dict], metric: str, key: str, where: str) -> list[float]:
    if not runs:
        raise InputError(f"{where}: no result files for run {key}. Fix: list the run's metric JSONs in the rule.")
    values = []
    for metrics in runs:
        value = metrics.get(metric)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"{where}: run {key} has no number for metric {metric!r} (got {value!r}; its metrics "
                             f"are {sorted(metrics)}). Fix: check the metric name in config/tables.yaml or rerun "
                             "the evaluation.")
        values.append(float(value))
    return values


def format_ours(values: list[float], decimals: int) -> str:
    """'2.41' for one value, '2.41 ± 0.13' (population std) for several."""
    mean, std, count = aggregate(values)
    if math.isnan(mean):
        return "nan"
    return f"{mean:.{decimals}f}" if count == 1 else f"{mean:.{decimals}f} ± {std:.{decimals}f}"


# ---------------------------------------------------------------- building


def build_table(spec: dict, results: dict[str, list[dict]], title: str | None = None,
                footnote: str | None = None) -> pd.DataFrame:
    """Our numbers ("ours") beside the thesis's ("thesis") for every row and column of a table spec.

    Rows are indexed by the spec's `index` fields; columns are (column label, "ours" | "thesis").
    Quoted rows have an empty "ours" cell. Caption, notes and footnote travel in `DataFrame.attrs`.
    """
    columns = pd.MultiIndex.from_tuples([(c["label"], part) for c in spec["columns"] for part in (OURS, THESIS)])
    index = pd.MultiIndex.from_tuples([tuple(str(v) for v in row["label"]) for row in spec["rows"]],
                                      names=spec["index"])
    cells, seed_counts, run_notes = [], set(), []
    for number, row in enumerate(spec["rows"], start=1):
        line = []
        for column in spec["columns"]:
            ours = ""
            if not row.get("quoted"):
                key = run_key(cell_run(row, column))
                runs = results.get(key, [])
                where = f"{title or 'table'} row {number} ({' '.join(map(str, row['label']))}), {column['label']}"
                values = metric_values(runs, column["metric"], key, where)
                ours = format_ours(values, column.get("decimals", spec.get("decimals", DEFAULT_DECIMALS)))
                seed_counts.add(len(values))
                run_notes += [m[NOTE_KEY] for m in runs if isinstance(m.get(NOTE_KEY), str)]
            line += [ours, row["thesis"][column["name"]]]
        cells.append(line)
    table = pd.DataFrame(cells, index=index, columns=columns)
    if spec.get("own"):  # your own data: no thesis numbers to show beside ours
        table = table.drop(columns=THESIS, level=1)
    table.attrs = {"title": title, "caption": spec["caption"], "notes": list(spec.get("notes", [])),
                   "footnote": _footnote(spec, seed_counts, run_notes, footnote)}
    return table


def _footnote(spec: dict, seed_counts: set[int], run_notes: list[str], extra: str | None) -> str:
    parts = [extra] if extra else []
    if seed_counts:
        counts = "/".join(str(n) for n in sorted(seed_counts))
        parts.append("ours: single run" if seed_counts == {1} else
                     f"ours: mean ± population std over {counts} seeds")
    if any(row.get("quoted") for row in spec["rows"]):
        parts.append("rows without 'ours' are quoted from their publications, not reproduced")
    parts += list(dict.fromkeys(run_notes))  # distinct, in order
    if not spec.get("own"):
        parts.append(f"'{MISSING}': no number in the thesis")
    return "; ".join(parts) + "."


# ---------------------------------------------------------------- writing


def _heading(table: pd.DataFrame) -> str:
    title = table.attrs.get("title")
    return f"{title}: {table.attrs['caption']}" if title else table.attrs["caption"]


def _notes(table: pd.DataFrame) -> list[str]:
    return list(table.attrs.get("notes", [])) + [table.attrs["footnote"]]


def to_markdown(table: pd.DataFrame) -> str:
    flat = table.copy()
    flat.columns = [f"{label} ({part})" for label, part in table.columns]
    body = flat.reset_index().to_markdown(index=False, disable_numparse=True)
    notes = "\n".join(f"- {note}" for note in _notes(table))
    return f"**{_heading(table)}**\n\n{body}\n\n{notes}\n"


def latex_escape(text: str) -> str:
    """Escape LaTeX specials and map the tables' unicode symbols to math-mode commands."""
    special = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
               "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
    escaped = "".join(special.get(char, char) for char in text)
    for symbol, command in _LATEX_SYMBOLS.items():
        escaped = escaped.replace(symbol, command)
    return escaped


def to_latex(table: pd.DataFrame) -> str:
    escaped = table.copy()
    escaped.columns = pd.MultiIndex.from_tuples([(latex_escape(a), latex_escape(b)) for a, b in table.columns])
    escaped.index = pd.MultiIndex.from_tuples([tuple(latex_escape(v) for v in key) for key in table.index],
                                              names=[latex_escape(name) for name in table.index.names])
    escaped = escaped.map(latex_escape)
    tabular = escaped.to_latex(escape=False, multicolumn=True, multicolumn_format="c", multirow=False)
    label = (table.attrs.get("title") or "table").lower().replace(" ", "_")
    notes = " ".join(latex_escape(note) for note in _notes(table))
    return ("\\begin{table}[t]\n\\centering\n"
            f"\\caption{{{latex_escape(_heading(table))}}}\n\\label{{tab:{label}}}\n"
            f"{tabular}\\par\\smallskip{{\\footnotesize {notes}}}\n\\end{{table}}\n")


def write_table(table: pd.DataFrame, out_stem: str | Path) -> list[Path]:
    """Write `<out_stem>.csv`, `.md` and `.tex` atomically; returns the three paths."""
    out_stem = Path(out_stem)
    paths = [out_stem.with_name(out_stem.name + suffix) for suffix in (".csv", ".md", ".tex")]
    atomic_write_text(table.to_csv(), paths[0])
    atomic_write_text(to_markdown(table), paths[1])
    atomic_write_text(to_latex(table), paths[2])
    return paths


def report_table(tables_yaml: str | Path, table_id: str, paths_by_run: dict[str, list], out_stem: str | Path,
                 footnote: str | None = None) -> list[Path]:
    """Load the spec of `table_id`, read its runs' metric JSONs (run key -> files, one per seed), write the
    three formats. The entry point of the aggregation rule."""
    specs = load_tables(tables_yaml, own=str(table_id).startswith(OWN_TABLE_PREFIX))
    if table_id not in specs:
        raise InputError(f"{tables_yaml}: no table {table_id!r}; it has {sorted(specs)}. Fix: check the rule's "
                         "table wildcard.")
    table = build_table(specs[table_id], read_results(paths_by_run), title=default_title(table_id),
                        footnote=footnote)
    return write_table(table, out_stem)
