"""Per-sample evaluation values beside a run's metric JSON: what the orderings' intervals resample.

`<dir>/<stem>.samples.npz` sits beside `<dir>/<stem>.json` (`samples_path`) and holds, for each metric of the JSON
that the orderings may compare, one of two entries (arrays named `<metric>.<field>`):

- a ratio entry (`ratio_entry`): `values`, `weights` (one per evaluation sample) and `sample_set`; the metric is
  sum(values) / sum(weights) (a plain mean has weights 1; IOD and matching weight an image or pair by its present
  landmarks, exactly as the scalar is computed), so a resample of the samples is a resample of the metric;
- a replicates entry (`replicates_entry`): `replicates` (the metric recomputed on each resample, for metrics that
  are not averages over samples, such as FID) and `sample_set`.

`sample_set` names the samples ("test images of mafl (n=200)", "generated images (z seed 0, n=250)"): two runs
with the same sample_set were evaluated on the same samples, so their resamples are paired
(`lead_hsr.report.noise.resample_indices` draws the same indices for the same sample_set).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lead_hsr.atomic import atomic_write_with
from lead_hsr.errors import InputError

SAMPLES_SUFFIX = ".samples.npz"
RATIO_FIELDS = ("values", "weights", "sample_set")
REPLICATES_FIELDS = ("replicates", "sample_set")


def samples_path(metrics_json) -> Path:
    """`metrics.json` -> `metrics.samples.npz` in the same directory."""
    path = Path(metrics_json)
    return path.with_name(path.stem + SAMPLES_SUFFIX)


def ratio_entry(values, weights, sample_set: str) -> dict:
    """A metric that is sum(values) / sum(weights) over the evaluation samples."""
    values, weights = np.asarray(values, dtype=np.float64), np.asarray(weights, dtype=np.float64)
    if values.ndim != 1 or values.shape != weights.shape or not len(values):
        raise ValueError(f"ratio entry: values {values.shape} and weights {weights.shape} must be equal 1-d shapes")
    return {"values": values, "weights": weights, "sample_set": str(sample_set)}


def replicates_entry(replicates, sample_set: str) -> dict:
    """A metric recomputed on each bootstrap resample of `sample_set` (noise.resample_indices)."""
    return {"replicates": np.asarray(replicates, dtype=np.float64).ravel(), "sample_set": str(sample_set)}


def entry_value(entry: dict) -> float:
    """The metric of a ratio entry on all its samples (equal to the scalar in the run's JSON)."""
    return float(entry["values"].sum() / entry["weights"].sum())


def write_samples(metrics_json, entries: dict[str, dict]) -> Path:
    """Write the entries (metric -> ratio_entry / replicates_entry) beside `metrics_json`, atomically. Call it
    before writing the JSON: a JSON then implies its samples exist."""
    arrays = {f"{metric}.{field}": np.asarray(value) for metric, entry in entries.items()
              for field, value in entry.items()}
    return atomic_write_with(samples_path(metrics_json), lambda handle: np.savez(handle, **arrays))


def read_samples(metrics_json) -> dict[str, dict]:
    """metric -> entry, as written by `write_samples` (sample_set as str)."""
    path = samples_path(metrics_json)
    if not path.is_file():
        raise InputError(f"{path}: per-sample values not found beside {Path(metrics_json).name}; the metric jobs "
                         "write them for the orderings' intervals. Fix: rerun that job, e.g. "
                         f"`snakemake --forcerun {metrics_json}`.")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: not a readable .npz of per-sample values ({error}). Fix: delete it and rerun "
                         f"the job of {metrics_json}.") from error
    entries: dict[str, dict] = {}
    for name, array in arrays.items():
        metric, _, field = name.rpartition(".")
        entries.setdefault(metric, {})[field] = str(array) if field == "sample_set" else array
    for metric, entry in entries.items():
        if set(entry) not in (set(RATIO_FIELDS), set(REPLICATES_FIELDS)):
            raise InputError(f"{path}: entry {metric!r} has fields {sorted(entry)}; expected {list(RATIO_FIELDS)} "
                             f"or {list(REPLICATES_FIELDS)}. Fix: delete it and rerun the job of {metrics_json}.")
    return entries
