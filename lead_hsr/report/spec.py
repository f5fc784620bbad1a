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


def load_tables(path: str | Path, own: bool = False) -> dict[str, dict]:
    """All table specs of a tables.yaml, validated: table id -> spec.

    `own=True` (config `report.own_tables`): ids must start with `own_`, and rows may leave out `thesis`
    (no published number: every cell '-')."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: table specification file not found. Fix: restore config/tables.yaml.")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise InputError(f"{path}: not valid YAML ({error}). Fix: correct the syntax.") from error
    if not isinstance(document, dict) or not isinstance(document.get("tables"), dict):
        raise InputError(f"{path}: expected a top-level mapping 'tables: {{<id>: <spec>}}'. Fix: see its header.")
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
