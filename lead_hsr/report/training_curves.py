"""Training-curve figures: one panel per logged scalar of a run (its log.csv), against steps or kimg.

Gathering (reading a run's log.csv and progress.json) is `lead_hsr.train.progress.curve_data`; this module only
draws (matplotlib + numpy).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lead_hsr.report.figures import plt, save_figure

PANEL_INCHES = (3.2, 2.2)
NCOLS = 4


def draw_training_curves(x, x_label: str, series: dict[str, list[float]], path: str | Path, title: str,
                         dpi: int = 100) -> Path:
    """One small panel per scalar (NaN where a row did not log it, e.g. lazy regularizers), saved as one PNG."""
    names = list(series) or ["(no scalars logged)"]
    ncols = min(NCOLS, len(names))
    nrows = -(-len(names) // ncols)
    figure, axes = plt.subplots(nrows, ncols, figsize=(ncols * PANEL_INCHES[0], nrows * PANEL_INCHES[1] + 0.5),
                                squeeze=False)
    x = np.asarray(x, dtype=float)
    for axis, name in zip(axes.flat, names):
        y = np.asarray(series.get(name, []), dtype=float)
        finite = np.isfinite(y)
        if finite.any():
            axis.plot(x[finite], y[finite], linewidth=0.8)
        axis.set_title(name, fontsize=9)
        axis.set_xlabel(x_label, fontsize=8)
        axis.tick_params(labelsize=7)
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(names):]:
        axis.axis("off")
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return save_figure(figure, path, dpi=dpi)


def figure_name(run: str) -> str:
    """`hsr/dataset~x/.../hsr_levels~none` -> `hsr__dataset~x__...__hsr_levels~none.png` (one flat directory)."""
    return run.strip("/").replace("/", "__") + ".png"


def write_training_curves(runs: dict[str, dict], out_dir: str | Path) -> Path:
    """One figure per run (name -> `curve_data` dict) in `out_dir`, built in a temporary sibling and renamed
    into place whole (a directory output, atomic like the prepared stores)."""
    import shutil
    import tempfile

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{out_dir.name}-", dir=out_dir.parent))
    try:
        for run, data in runs.items():
            draw_training_curves(data["x"], data["x_label"], data["series"], staging / figure_name(run), run)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir
