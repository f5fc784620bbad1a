"""Where every training run of a config stands: its last progress line, read from the work directories.

    python -m lead_hsr.train.status                              # config/config.yaml (the paper run)
    python -m lead_hsr.train.status --configfile config/demo.yaml   # merged over config.yaml, as Snakemake does
    python -m lead_hsr.train.status --work-dir work/demo

Snakemake's `--summary` says which declared outputs exist; this says how far each run that has started is
(step or kimg of total, ETA, how long ago it last reported), from `<work_dir>/**/progress.json`. Run it from the
directory Snakemake runs in (relative `work_dir`s are relative to it).

State: `finished`, `stopped` (a clean stop: SIGTERM or the time budget, or a process that is gone: its pid no longer
alive on this host, or, for a run on another host, no heartbeat for a few progress intervals; see
`lead_hsr.train.progress.run_liveness`), `running`, `?` (no progress.json).
"""
from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

import yaml

from lead_hsr.errors import command, InputError
from lead_hsr.train.progress import find_runs, format_duration, read_log, read_progress, run_liveness

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO / "config" / "config.yaml"


def _merge(base: dict, update: dict) -> dict:
    """Snakemake's --configfile semantics: nested mappings are updated key by key."""
    merged = dict(base)
    for key, value in update.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) \
            else value
    return merged


def work_dir_of(configfiles: list[Path]) -> Path:
    """`work_dir` of config/config.yaml with the given config files merged over it (in order)."""
    config: dict = {}
    for path in [DEFAULT_CONFIG, *configfiles]:
        if not Path(path).is_file():
            raise InputError(f"{path}: config file not found; pass an existing --configfile (e.g. config/demo.yaml)")
        config = _merge(config, yaml.safe_load(Path(path).read_text()) or {})
    if "work_dir" not in config:
        raise InputError(f"{configfiles[-1] if configfiles else DEFAULT_CONFIG}: no 'work_dir' key; add one "
                         "(where the trainers keep checkpoints and logs)")
    return Path(config["work_dir"])


def _age(updated: str, now: datetime.datetime) -> str:
    try:
        then = datetime.datetime.fromisoformat(updated)
    except (TypeError, ValueError):
        return "?"
    return f"{format_duration((now - then).total_seconds())} ago"


def run_status(work_dir: Path, root: Path, now: datetime.datetime, host: str | None = None) -> dict:
    """One row: run (path under root), state, where (step/kimg of total), ETA, last update, last progress line.
    A run recorded as running whose process is gone (seen from `host`, default this one) is `stopped`."""
    record = read_progress(work_dir)
    name = str(work_dir.relative_to(root)) if work_dir != root else str(work_dir)
    if record is None:                       # a run from before progress.json existed: its log's last row
        steps = read_log(work_dir).get("step", [])
        where = f"step {int(steps[-1])}" if steps else "?"
        return dict(run=name, state="?", where=where, eta="?", updated="?",
                    line=f"{work_dir}: {where} (last log.csv row; no progress.json)")
    unit_total = (f"kimg {record['position']:g}/{record['total']:g}" if record["unit"] == "kimg"
                  else f"step {record['step']}/{record['total_steps']}")
    percent = 100 * record["step"] / record["total_steps"] if record["total_steps"] else 100.0
    state, why = run_liveness(record, now, host)
    eta = format_duration(record["eta_s"]) if state == "running" else "-"
    line = f"{record['line']} [stopped: {why}]" if why else record["line"]
    return dict(run=name, state=state, where=f"{unit_total} ({percent:.1f}%)", eta=eta,
                updated=_age(record["updated"], now), line=line)


def status_table(root: Path, now: datetime.datetime | None = None, host: str | None = None) -> str:
    now = now or datetime.datetime.now(datetime.timezone.utc)
    rows = [run_status(run, root, now, host) for run in find_runs(root)]
    if not rows:
        return f"no training run has started under {root}"
    from tabulate import tabulate
    table = tabulate([[r["run"], r["state"], r["where"], r["eta"], r["updated"]] for r in rows],
                     headers=["run", "state", "at", "ETA", "updated"])
    lines = "\n".join(r["line"] for r in rows)
    runs = f"{len(rows)} training run{'s' if len(rows) != 1 else ''}"
    return f"{runs} under {root}\n\n{table}\n\nlast progress lines:\n{lines}"


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lead_hsr.train.status", description=__doc__.split("\n")[0])
    parser.add_argument("--configfile", type=Path, action="append", default=[],
                        help="config file(s) merged over config/config.yaml, as given to snakemake")
    parser.add_argument("--work-dir", type=Path, help="the work directory itself (overrides the config)")
    args = parser.parse_args(argv)
    root = args.work_dir or work_dir_of(args.configfile)
    print(status_table(root))
    return 0


if __name__ == "__main__":
    sys.exit(main())
