"""Drawing of the chapter-4 (HSR) figures from plain arrays: image strips, side-by-side image panels, attribute
transitions with their score plots, and the HSR architecture overview.

Only matplotlib and numpy here (`lead_hsr.report` is imported by the metric modules, never the other way round):
the metric modules (`lead_hsr.metrics.ppl`, `.mahalanobis`, `.als`, `.gan_eval`) render images with the
generators and call these functions. Images are uint8 N x H x W x 3. Figure sizes are fixed by the layout (no
tight bounding box), so a figure's pixel size is `cells x cell_inches x dpi` plus the label margins.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lead_hsr.report.figures import plt, save_figure

LABEL_INCHES = 1.3  # left margin for row labels
TITLE_INCHES = 0.3  # height of a section / panel title row
PLOT_INCHES = 2.2  # width of the score-vs-t plot of a transition row


def _show(axis, image) -> None:
    axis.imshow(image, interpolation="nearest")
    axis.set_xticks([])
    axis.set_yticks([])
    for spine in axis.spines.values():
        spine.set_visible(False)


def strip_figure(sections, path: str | Path, cell_inches: float = 0.9, dpi: int = 100,
                 caption_lines: int = 0) -> Path:
    """Rows of images under section titles, a label left of each row.

    sections: [(section_title, [(row_label, images (H x W x 3 each, sizes may differ), per-image captions or None),
    ...]), ...]; every image fills its cell (nearest-neighbour), so small images appear enlarged.
    Columns = the longest row; shorter rows leave blank cells. `caption_lines` reserves text lines under images.
    """
    rows = []
    for title, section_rows in sections:
        rows.append(("title", title, None, None))
        rows += [("images", label, list(images), captions) for label, images, captions in section_rows]
    ncols = max(len(r[2]) for r in rows if r[0] == "images")
    caption_inches = 0.16 * caption_lines
    heights = [TITLE_INCHES if kind == "title" else cell_inches + caption_inches for kind, *_ in rows]
    width = LABEL_INCHES + ncols * cell_inches
    figure = plt.figure(figsize=(width, sum(heights)))
    top = 1.0
    for kind, label, images, captions in rows:
        height = (TITLE_INCHES if kind == "title" else cell_inches + caption_inches) / sum(heights)
        top -= height
        if kind == "title":
            figure.text(0.01, top + height * 0.35, label, fontsize=9, fontweight="bold", va="center")
            continue
        figure.text(0.01, top + height / 2, label, fontsize=7, va="center", wrap=True)
        for col, image in enumerate(images):
            left = (LABEL_INCHES + col * cell_inches) / width
            axis = figure.add_axes((left, top + caption_inches / sum(heights), cell_inches / width * 0.97,
                                    cell_inches / sum(heights) * 0.97))
            _show(axis, image)
            if captions is not None and captions[col]:
                axis.set_xlabel(captions[col], fontsize=6, labelpad=1)
    return save_figure(figure, path, dpi=dpi)


def panel_grid_figure(groups, path: str | Path, ncols: int = 10, cell_inches: float = 0.6,
                      dpi: int = 100) -> Path:
    """Groups (e.g. datasets) stacked vertically; in each, panels (e.g. SG2-ADA | + HSR) side by side, each an
    image grid with `ncols` columns.

    groups: [(group_title, [(panel_title, images N x H x W x 3), ...]), ...].
    """
    npanels = max(len(panels) for _, panels in groups)
    gap = 0.2
    panel_width = ncols * cell_inches
    width = npanels * panel_width + (npanels - 1) * gap + 0.2
    group_rows = [max(-(-len(images) // ncols) for _, images in panels) for _, panels in groups]
    heights = [2 * TITLE_INCHES + rows * cell_inches for rows in group_rows]
    total = sum(heights)
    figure = plt.figure(figsize=(width, total))
    top = total
    for (title, panels), rows, height in zip(groups, group_rows, heights):
        figure.text(0.1 / width, (top - TITLE_INCHES / 2) / total, title, fontsize=9, fontweight="bold",
                    va="center")
        for p, (panel_title, images) in enumerate(panels):
            left = 0.1 + p * (panel_width + gap)
            figure.text((left + panel_width / 2) / width, (top - 1.5 * TITLE_INCHES) / total, panel_title,
                        fontsize=8, ha="center", va="center")
            for index, image in enumerate(np.asarray(images)):
                row, col = divmod(index, ncols)
                y = top - 2 * TITLE_INCHES - (row + 1) * cell_inches
                axis = figure.add_axes(((left + col * cell_inches) / width, y / total,
                                        cell_inches * 0.96 / width, cell_inches * 0.96 / total))
                _show(axis, image)
        top -= height
    return save_figure(figure, path, dpi=dpi)


def transition_figure(rows, path: str | Path, score_label: str = "attribute score (logit)",
                      cell_inches: float = 0.8, dpi: int = 100) -> Path:
    """Attribute transitions (thesis Fig. 4.9 / 4.11): per row a score-vs-t plot (with the straight line between
    the endpoint scores dotted, Eq. 4.4) and the images G(w_t) with their scores.

    rows: [{"label": str, "t": [T], "scores": [T], "images": T x H x W x 3}, ...].
    """
    ncols = max(len(r["images"]) for r in rows)
    row_inches = max(cell_inches + 0.25, 1.5)
    width = PLOT_INCHES + 0.5 + ncols * cell_inches + 0.1
    total = len(rows) * row_inches
    figure = plt.figure(figsize=(width, total))
    for i, row in enumerate(rows):
        bottom = total - (i + 1) * row_inches
        t, scores = np.asarray(row["t"], dtype=float), np.asarray(row["scores"], dtype=float)
        plot = figure.add_axes((0.55 / width, (bottom + 0.35) / total, (PLOT_INCHES - 0.2) / width,
                                (row_inches - 0.6) / total))
        plot.plot(t, scores, marker="o", markersize=2.5, label="C(G(w_t))")
        plot.plot([t[0], t[-1]], [scores[0], scores[-1]], linestyle=":", color="black", label="ideal (Eq. 4.4)")
        plot.set_title(row["label"], fontsize=7)
        plot.set_xlabel("t", fontsize=6, labelpad=0)
        plot.set_ylabel(score_label, fontsize=6)
        plot.tick_params(labelsize=5)
        if i == 0:
            plot.legend(fontsize=5, loc="best")
        image_bottom = bottom + (row_inches - cell_inches) / 2 + 0.05
        for col, (image, score, tt) in enumerate(zip(row["images"], scores, t)):
            axis = figure.add_axes(((PLOT_INCHES + 0.5 + col * cell_inches) / width, image_bottom / total,
                                    cell_inches * 0.96 / width, cell_inches * 0.96 / total))
            _show(axis, image)
            axis.set_xlabel(f"{score:+.2f}", fontsize=5, labelpad=1)
            if i == 0:
                axis.set_title(f"t={tt:.2f}", fontsize=5, pad=1)
    return save_figure(figure, path, dpi=dpi)


def hsr_overview_figure(overview: dict, path: str | Path, dpi: int = 120) -> Path:
    """Thesis Fig. 4.3 drawn from a configured model: generator blocks (resolution, channels), the HSR heads
    (1x1 conv C -> hidden -> D) on the active levels, the resize to the target grid, and the extractor levels.

    overview: {"generator": [{"resolution", "channels"}], "heads": [{"resolution", "in", "hidden", "out",
    "activation", "level"}], "extractor": {"name", "arch", "input_size", "weights", "levels":
    [{"level", "tap", "dim"}]}, "grid": int, "image_resolution": int, "title": str}.
    """
    blocks = overview["generator"]
    heads = {h["resolution"]: h for h in overview["heads"]}
    ext = overview["extractor"]
    taps = {lv["level"]: lv for lv in ext["levels"]}
    n = len(blocks)
    figure = plt.figure(figsize=(11, 0.75 * n + 1.6))
    axis = figure.add_axes((0, 0, 1, 1))
    axis.set_xlim(0, 11)
    axis.set_ylim(-1.2, 0.75 * n + 0.4)
    axis.axis("off")
    box = dict(boxstyle="round,pad=0.25", linewidth=0.8)

    def y_of(i):
        return 0.75 * (n - 1 - i)

    axis.text(1.2, 0.75 * n + 0.1, "Generator G (synthesis blocks)", ha="center", fontsize=9, fontweight="bold")
    axis.text(5.4, 0.75 * n + 0.1, "HSR predictors q_i", ha="center", fontsize=9, fontweight="bold")
    axis.text(9.3, 0.75 * n + 0.1, f"Frozen extractor F: {ext['name']}", ha="center", fontsize=9,
              fontweight="bold")
    for i, block in enumerate(blocks):
        r, y = block["resolution"], y_of(i)
        active = r in heads
        axis.text(1.2, y, f"{r}x{r} block, C = {block['channels']}", ha="center", va="center", fontsize=8,
                  bbox=dict(box, facecolor="#cfe3ff" if active else "#eeeeee"))
        if i + 1 < n:
            axis.annotate("", (1.2, y_of(i + 1) + 0.22), (1.2, y - 0.22), arrowprops=dict(arrowstyle="->", lw=0.8))
        if active:
            head = heads[r]
            axis.annotate("", (3.3, y), (2.45, y), arrowprops=dict(arrowstyle="->", lw=0.8, color="#1f5fbf"))
            axis.text(5.4, y, f"level {head['level']}: 1x1 conv {head['in']}->{head['hidden']}, "
                              f"{head['activation']},\n1x1 conv {head['hidden']}->{head['out']}, "
                              f"resize {r}->{overview['grid']}x{overview['grid']}",
                      ha="center", va="center", fontsize=7, bbox=dict(box, facecolor="#fff2cc"))
            tap = taps[head["level"]]
            axis.annotate("", (7.5, y), (8.1, y), arrowprops=dict(arrowstyle="<->", lw=0.8, color="#b03030"))
            axis.text(7.8, y + 0.17, "MSE", ha="center", fontsize=6, color="#b03030")
            axis.text(9.3, y, f"{tap['tap']}: {tap['dim']} x {overview['grid']}x{overview['grid']}",
                      ha="center", va="center", fontsize=7, bbox=dict(box, facecolor="#d9ead3"))
    res = overview["image_resolution"]
    axis.text(1.2, -0.75, f"image G(w) {res}x{res}", ha="center", va="center", fontsize=8,
              bbox=dict(box, facecolor="white"))
    axis.annotate("", (1.2, -0.55), (1.2, y_of(n - 1) - 0.22), arrowprops=dict(arrowstyle="->", lw=0.8))
    axis.annotate("", (7.6, -0.75), (2.2, -0.75), arrowprops=dict(arrowstyle="->", lw=0.8))
    tapped = [i for i, block in enumerate(blocks) if block["resolution"] in heads]
    if tapped:  # the extractor's features feed the targets of the levels above it
        axis.annotate("", (9.3, y_of(max(tapped)) - 0.2), (9.3, -0.55),
                      arrowprops=dict(arrowstyle="->", lw=0.8, color="#2e7d32"))
    axis.text(5.2, -0.62, f"resize to {ext['input_size']} (area), normalise ({ext['normalize']})", ha="center",
              fontsize=7)
    axis.text(9.3, -0.75, f"{ext['arch']} ({ext['weights']} weights)", ha="center", va="center", fontsize=7,
              bbox=dict(box, facecolor="#d9ead3"))
    axis.text(5.4, -1.1, overview.get("title", ""), ha="center", fontsize=7, style="italic")
    return save_figure(figure, path, dpi=dpi)
