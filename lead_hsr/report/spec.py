"""Table specifications (`config/tables.yaml`): loading, validation, run keys.

Deliberately light (yaml only, no pandas/torch): the Snakefile calls `load_tables`, `table_runs` and
`run_key` at parse time to know which run results each table needs. The format is documented at the top of
`config/tables.yaml`.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from lead_hsr.errors import InputError

MISSING = "-"  # how the thesis (and our tables) print a cell without a number
RUN_KEY_SEPARATOR = "/"  # run keys are path-like, `dim~64/stage1~byol/...`, but not result paths (DESIGN §8)


def run_key(run: dict) -> str:
    """Canonical, path-like key of a run: `name~value` pairs sorted by wildcard name, joined by '/'."""
    return RUN_KEY_SEPARATOR.join(f"{name}~{run[name]}" for name in sorted(run))


def default_title(table_id: str) -> str:
    """'table_3.1' -> 'Table 3.1', 'fig_4.10' -> 'Figure 4.10' (the thesis's names)."""
    kind, _, number = table_id.partition("_")
    return f"{ {'table': 'Table', 'fig': 'Figure'}.get(kind, kind.capitalize()) } {number}".strip()


def cell_run(row: dict, column: dict) -> dict:
    """The run a cell comes from: the row's wildcards updated with the column's."""
    return {**row.get("run", {}), **column.get("run", {})}


def table_runs(spec: dict) -> list[dict]:
    """Every distinct run a table needs (quoted rows need none), in first-use order."""
    runs: dict[str, dict] = {}
    for row in spec["rows"]:
        if row.get("quoted"):
            continue
        for column in spec["columns"]:
            run = cell_run(row, column)
            runs.setdefault(run_key(run), run)
    return list(runs.values())


def parse_thesis_value(text: str) -> tuple[float, float | None] | None:
    """'2.39' -> (2.39, None); '14.23 ± 1.45' -> (14.23, 1.45); '-' -> None."""
    text = str(text).strip()
    if text == MISSING:
        return None
    mean, _, std = text.partition("±")
    return float(mean), (float(std) if std.strip() else None)


# ---------------------------------------------------------------- validation


def _fail(where: str, problem: str) -> InputError:
    return InputError(f"{where}: {problem}. Fix: edit the table spec (format documented at the top of "
                      "config/tables.yaml).")


def _check_run(run, where: str) -> None:
    if not isinstance(run, dict) or not run:
        raise _fail(where, f"'run' must be a non-empty mapping of wildcard values, got {run!r}")
    for name, value in run.items():
        # bool catches YAML 1.1 surprises such as `plr: on` (parsed as True): quote such values
        if isinstance(value, bool) or not isinstance(value, (str, int)) or "/" in str(value):
            raise _fail(where, f"wildcard {name}={value!r} must be a string or integer without '/' "
                               "(quote YAML words like on/off/yes/no)")


def _check_thesis(row: dict, names: list[str], where: str) -> None:
    thesis = row.get("thesis")
    if not isinstance(thesis, dict) or set(thesis) != set(names):
        got = sorted(thesis) if isinstance(thesis, dict) else thesis
        raise _fail(where, f"'thesis' must give a value for exactly the columns {names}, got {got}")
    for name, text in thesis.items():
        if not isinstance(text, str):
            raise _fail(where, f"thesis value of {name!r} must be a quoted string as printed, got {text!r}")
        try:
            parse_thesis_value(text)
        except ValueError:
            raise _fail(where, f"thesis value {text!r} of {name!r} is not a number, 'mean ± std' or '-'") from None


def validate_table(table_id: str, spec: dict, source: str = "config/tables.yaml") -> dict:
    """Check one table spec; returns it unchanged. Errors name the file, table and row."""
    where = f"{source}: {table_id}"
    for key in ("caption", "index", "columns", "rows"):
        if key not in spec:
            raise _fail(where, f"missing key {key!r}")
    names = [column.get("name") for column in spec["columns"]]
    if len(set(names)) != len(names) or None in names:
        raise _fail(where, f"column names must be present and unique, got {names}")
    for number, column in enumerate(spec["columns"], start=1):
        if not column.get("metric") or not column.get("label"):
            raise _fail(f"{where} column {number}", "needs 'metric' and 'label'")
        if "run" in column:
            _check_run(column["run"], f"{where} column {number}")
    for number, row in enumerate(spec["rows"], start=1):
        row_where = f"{where} row {number}"
        label = row.get("label")
        if not isinstance(label, list) or len(label) != len(spec["index"]):
            raise _fail(row_where, f"'label' must be a list of {len(spec['index'])} values ({spec['index']}), "
                                   f"got {label!r}")
        if row.get("quoted"):
            if "run" in row:
                raise _fail(row_where, "a quoted row has no run")
        else:
            _check_run(row.get("run"), row_where)
        _check_thesis(row, names, row_where)
    return spec


OWN_TABLE_PREFIX = "own_"  # ids of tables of your own data (config report.own_tables)


def _read_document(path: Path) -> dict:
    if not path.is_file():
        raise InputError(f"{path}: table specification file not found. Fix: restore config/tables.yaml.")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise InputError(f"{path}: not valid YAML ({error}). Fix: correct the syntax.") from error
    if not isinstance(document, dict) or not isinstance(document.get("tables"), dict):
        raise InputError(f"{path}: expected a top-level mapping 'tables: {{<id>: <spec>}}'. Fix: see its header.")
    return document


def load_tables(path: str | Path, own: bool = False) -> dict[str, dict]:
    """All table specs of a tables.yaml, validated: table id -> spec.

    `own=True` (config `report.own_tables`): ids must start with `own_`, and rows may leave out `thesis`
    (no published number: every cell '-')."""
    path = Path(path)
    document = _read_document(path)
    if own:
        for table_id, spec in document["tables"].items():
            if not str(table_id).startswith(OWN_TABLE_PREFIX):
                raise InputError(f"{path}: table id {table_id!r}; own tables need ids starting with "
                                 f"{OWN_TABLE_PREFIX!r} (not to collide with the thesis's). Fix: rename it.")
            spec["own"] = True  # lead_hsr.report.tables shows no thesis columns
            names = [column.get("name") for column in spec.get("columns", [])]
            for row in spec.get("rows", []):
                row.setdefault("thesis", {name: MISSING for name in names})
    return {table_id: validate_table(table_id, spec, str(path)) for table_id, spec in document["tables"].items()}


# ---------------------------------------------------------------- orderings: the thesis's claims, checked on a run


def result_key(run: dict, metric: str) -> str:
    """One run's metric: the run key and the metric name (ALS metrics live in another file than FID's)."""
    return f"{run_key(run)}@{metric}"


def _row(spec: dict, label: list) -> dict | None:
    """The row of a table spec with this label (values compared as text: YAML may read 64 as a number)."""
    wanted = [str(v) for v in label]
    return next((row for row in spec["rows"] if [str(v) for v in row["label"]] == wanted), None)


def ordering_side_cells(side: dict, tables: dict[str, dict]) -> list[tuple[dict, str, str | None, str | None]]:
    """The cells one side of an ordering averages: (run, metric, table id or None, thesis text or None)."""
    if "run" in side:
        return [(side["run"], side["metric"], None, None)]
    spec = tables[side["table"]]
    row = _row(spec, side["row"])
    columns = {column["name"]: column for column in spec["columns"]}
    return [(cell_run(row, columns[name]), columns[name]["metric"], side["table"], row["thesis"][name])
            for name in side["columns"]]


def thesis_side_value(side: dict, tables: dict[str, dict]) -> float | None:
    """Mean of the thesis's numbers on one side; None when the thesis prints none (or the side is a plain run)."""
    values = [parse_thesis_value(text) for *_, text in ordering_side_cells(side, tables) if text is not None]
    if not values or any(value is None for value in values):
        return None
    return sum(mean for mean, _ in values) / len(values)


def _check_side(side, tables: dict[str, dict], where: str) -> None:
    if not isinstance(side, dict):
        raise _fail(where, f"expected a mapping {{table, row, columns}} or {{run, metric}}, got {side!r}")
    if "run" in side:
        _check_run(side["run"], where)
        if set(side) != {"run", "metric"} or not isinstance(side["metric"], str):
            raise _fail(where, f"a run side has exactly 'run' and 'metric' (a metric name), got {sorted(side)}")
        return
    if set(side) != {"table", "row", "columns"}:
        raise _fail(where, f"a table side has exactly 'table', 'row' and 'columns', got {sorted(side)}")
    spec = tables.get(side["table"])
    if spec is None:
        raise _fail(where, f"no table {side['table']!r}; tables are {sorted(tables)}")
    row = _row(spec, side["row"])
    if row is None:
        labels = [[str(v) for v in r["label"]] for r in spec["rows"]]
        raise _fail(where, f"{side['table']} has no row {side['row']!r}; its rows are {labels}")
    if row.get("quoted"):
        raise _fail(where, f"row {side['row']!r} of {side['table']} is quoted from another paper: no run to check")
    names = [column["name"] for column in spec["columns"]]
    if not isinstance(side["columns"], list) or not side["columns"] or not set(side["columns"]) <= set(names):
        raise _fail(where, f"'columns' must be a non-empty list of {side['table']}'s columns {names}, "
                           f"got {side['columns']!r}")


def validate_ordering(number: int, ordering: dict, tables: dict[str, dict], source: str) -> dict:
    """Check one ordering; the thesis's own numbers must satisfy it (a typo in a claim is caught here)."""
    where = f"{source}: orderings entry {number}"
    if not isinstance(ordering, dict) or set(ordering) != {"claim", "lower_is_better", "better", "worse"}:
        got = sorted(ordering) if isinstance(ordering, dict) else ordering
        raise _fail(where, f"expected exactly the keys claim, lower_is_better, better, worse; got {got}")
    if not isinstance(ordering["claim"], str) or not isinstance(ordering["lower_is_better"], bool):
        raise _fail(where, "'claim' is a sentence and 'lower_is_better' true or false")
    for side in ("better", "worse"):
        _check_side(ordering[side], tables, f"{where} ({side})")
    better, worse = (thesis_side_value(ordering[side], tables) for side in ("better", "worse"))
    if better is not None and worse is not None and not ordering_holds(better, worse, ordering["lower_is_better"]):
        raise _fail(where, f"the thesis's own numbers do not satisfy the claim {ordering['claim']!r} "
                           f"(better side {better:g}, worse side {worse:g}, lower_is_better "
                           f"{ordering['lower_is_better']})")
    return ordering


def ordering_holds(better: float, worse: float, lower_is_better: bool) -> bool:
    """Strictly better; a tie does not hold."""
    return better < worse if lower_is_better else better > worse


def orderings_of_tables(orderings: list[dict], table_ids) -> list[dict]:
    """The orderings a config checks when it reports `table_ids`: those whose table sides are all reported; the
    learning checks (no table side) come with them, never alone (they train networks a config may not want)."""
    reported = set(table_ids)
    from_tables = [o for o in orderings if any("table" in o[side] for side in ("better", "worse"))]
    chosen = [o for o in from_tables
              if all(o[side]["table"] in reported for side in ("better", "worse") if "table" in o[side])]
    return chosen + [o for o in orderings if o not in from_tables] if chosen else []


def load_orderings(path: str | Path, tables: dict[str, dict]) -> list[dict]:
    """The `orderings:` list of a tables.yaml, validated against its tables (format in its header)."""
    path = Path(path)
    orderings = _read_document(path).get("orderings", [])
    if not isinstance(orderings, list):
        raise _fail(f"{path}: orderings", "expected a list of orderings")
    return [validate_ordering(number, ordering, tables, str(path))
            for number, ordering in enumerate(orderings, start=1)]

