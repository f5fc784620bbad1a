"""What Snakemake plans for a configuration: the jobs of its own dry run (`snakemake -n`, per target), parsed,
and the config it runs them with (`load_config`).

The budget per thesis table is the sum over exactly the jobs that table needs (a job shared by two tables counts
in both; the total counts it once).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from lead_hsr.data.layouts import SKIP_RAW_CHECK_ENV
from lead_hsr.errors import InputError

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Job:
    rule: str
    wildcards: tuple[tuple[str, str], ...]
    output: str

    @property
    def wc(self) -> dict:
        return dict(self.wildcards)


def parse_dry_run(text: str) -> list[Job]:
    """The jobs of `snakemake -n` output (blocks `rule NAME:` / `localrule NAME:` with `output:`, `wildcards:`)."""
    jobs, rule, fields = [], None, {}

    def flush():
        if rule is not None:
            pairs = [kv.split("=", 1) for kv in fields.get("wildcards", "").split(", ") if "=" in kv]
            jobs.append(Job(rule, tuple((k.strip(), v.strip()) for k, v in pairs), fields.get("output", "")))

    for line in text.splitlines():
        head = re.match(r"^(?:local)?rule (\w+):\s*$", line)
        if head:
            flush()
            rule, fields = head.group(1), {}
            continue
        field = re.match(r"^\s+(output|wildcards): (.*)$", line)
        if field and rule is not None:
            fields[field.group(1)] = field.group(2)
    flush()
    return jobs


def plan(configfile: Path, target: str | None = None) -> list[Job]:
    """Jobs Snakemake plans for `target` (default: everything) with this config, in an empty directory."""
    import tempfile
    with tempfile.TemporaryDirectory() as empty:
        cmd = [sys.executable, "-m", "snakemake", "-n", "--snakefile", str(REPO / "Snakefile"), "--directory",
               empty, "--configfile", str(Path(configfile).resolve()), "--cores", "1"]
        if target:
            cmd += ["--", target]
        # the budget is for before the data is there: plan without the raw-layout check of the prepare jobs
        env = {**os.environ, SKIP_RAW_CHECK_ENV: "1"}
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
    if out.returncode != 0:
        raise InputError(f"{configfile}: `snakemake -n` failed; fix the configuration first:\n{out.stderr[-3000:]}")
    return parse_dry_run(out.stdout)


def load_config(configfile: Path) -> dict:
    """config/config.yaml with `configfile` deep-merged over it (as Snakemake merges --configfile)."""
    def merge(base, over):
        for key, value in over.items():
            base[key] = merge(dict(base.get(key, {})), value) if isinstance(value, dict) and isinstance(
                base.get(key), dict) else value
        return base
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    return merge(config, yaml.safe_load(Path(configfile).read_text()) or {})
