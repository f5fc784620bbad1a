"""Sections under one time budget: each runs in its own slice, a failing one is reported with its error, those
the budget no longer allows are listed as not run; the table and the raw numbers are written either way."""
from __future__ import annotations

import math
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from lead_hsr.atomic import atomic_write_json, atomic_write_text

NOT_RUN_BUDGET = "not run: time budget"


@dataclass
class Section:
    """One measurement: `run(ctx, deadline)` returns its rows (dicts); `needs_s`: the least time it can use."""
    name: str
    table: str                   # the Markdown table its rows go to
    run: Callable
    needs_s: float = 5.0
    slice_s: float = 60.0        # the most it may use (timing loops stop at the deadline)


@dataclass
class Context:
    device: torch.device
    shapes: object
    started: float = field(default_factory=time.monotonic)
    budget_s: float = 480.0
    results: dict = field(default_factory=dict)   # section name -> rows, for sections that summarise others

    def remaining_s(self) -> float:
        return self.budget_s - (time.monotonic() - self.started)


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        synchronise(device)
        torch.cuda.reset_peak_memory_stats(device)


def peak_gb(device: torch.device) -> float | None:
    """CUDA peak allocated memory since `reset_peak`, in GB; None on a CPU (no per-section peak there)."""
    if device.type != "cuda":
        return None
    synchronise(device)
    return torch.cuda.max_memory_allocated(device) / 1e9


def time_steps(step: Callable[[int], object], device: torch.device, deadline: float, warmup: int,
               steps: int) -> dict:
    """Seconds per call of `step(i)` after `warmup` calls, over up to `steps` calls (at least one) before
    `deadline` (time.monotonic); CUDA is synchronised around the timed calls. Returns s_per_step, steps_timed,
    peak_gb (CUDA peak over warm-up and timed calls)."""
    reset_peak(device)
    for i in range(warmup):
        step(i)
    synchronise(device)
    start, done = time.perf_counter(), 0
    while done < steps and (done == 0 or time.monotonic() < deadline):
        step(warmup + done)
        done += 1
        if done == steps or time.monotonic() >= deadline:
            break
    synchronise(device)
    elapsed = time.perf_counter() - start
    return {"s_per_step": elapsed / done, "steps_timed": done, "peak_gb": peak_gb(device)}


def run_sections(sections: list[Section], ctx: Context) -> dict[str, list[dict]]:
    """Run each section in order within the budget; returns table name -> rows (every section has one row at
    least: its numbers, its error, or why it did not run)."""
    tables: dict[str, list[dict]] = {}
    for section in sections:
        remaining = ctx.remaining_s()
        if remaining < section.needs_s:
            rows = [{"section": section.name, "status": NOT_RUN_BUDGET,
                     "note": f"{max(remaining, 0):.0f} s left, needs ~{section.needs_s:.0f} s"}]
        else:
            deadline = time.monotonic() + min(section.slice_s, remaining)
            start = time.monotonic()
            try:
                rows = [{"section": section.name, "status": "ok", **row} for row in section.run(ctx, deadline)]
            except Exception as err:  # a failing measurement is a result: report it, run the others
                rows = [{"section": section.name, "status": f"error: {type(err).__name__}: {err}",
                         "traceback": traceback.format_exc(limit=6)}]
            finally:
                if ctx.device.type == "cuda":
                    torch.cuda.empty_cache()
            for row in rows:
                row.setdefault("section_s", time.monotonic() - start)
        ctx.results[section.name] = rows
        tables.setdefault(section.table, []).extend(rows)
    return tables


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value).replace("|", "/").replace("\n", " ")


def markdown(title: str, preamble: list[str], tables: dict[str, list[dict]], columns: dict[str, list[tuple]]) -> str:
    """`columns[table]`: [(header, row key)]; a row that did not run or failed spans its status instead."""
    lines = [f"# {title}", "", *preamble, ""]
    for name, rows in tables.items():
        cols = columns[name]
        lines += [f"## {name}", "", "| " + " | ".join(h for h, _ in cols) + " |",
                  "|" + "|".join("---" for _ in cols) + "|"]
        for row in rows:
            if row["status"] == "ok":
                cells = [_cell(row.get(key)) for _, key in cols]
            else:   # the row's name, then why it has no numbers
                why = row["status"] + (f" ({row['note']})" if row.get("note") else "")
                cells = [_cell(row.get(cols[0][1], row["section"])), _cell(why)] + [""] * (len(cols) - 2)
            lines.append("| " + " | ".join(cells) + " |")
        notes = [row["explain"] for row in rows if row.get("explain")]
        lines += [""] + [f"- {n}" for n in dict.fromkeys(notes)] + ([""] if notes else [])
    return "\n".join(lines)


def write_outputs(out_dir: Path, text: str, raw: dict) -> tuple[Path, Path]:
    out_dir = Path(out_dir)
    md, js = out_dir / "gpu_check.md", out_dir / "gpu_check.json"
    atomic_write_json(raw, js)
    atomic_write_text(text, md)
    return md, js
