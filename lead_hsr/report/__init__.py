"""lead_hsr.report: the thesis's tables and figures.

- `spec`: the table specifications of config/tables.yaml (load, validate, run keys); light enough for the
  Snakefile to import at parse time (yaml only).
- `tables`: aggregate per-run metric JSONs (seeds -> mean ± population std) into a table with our numbers
  beside the thesis's, written as CSV, Markdown and LaTeX.
- `orderings`: which of the thesis's orderings (the `orderings:` list of config/tables.yaml) hold in a run,
  with the numbers on both sides and their intervals; first in the HTML report.
- `noise`: the intervals and the verdict rule (holds / reversed / within noise): t over seeds or a bootstrap.
- `samples`: the per-sample values a metric job writes beside its JSON (`<metrics>.samples.npz`).
- `figures`: headless matplotlib helpers (atomic PNG saves, image grids with landmarks, line plots, histograms).
"""
