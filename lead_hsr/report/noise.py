"""Uncertainty of an ordering's two sides and the verdict it supports (one home for the rule and its constants).

An ordering compares two sides (each the mean of one or more table cells). Its difference is signed so that
positive means the ordering holds (worse - better when lower is better). The verdict comes from a two-sided
`INTERVAL_LEVEL` interval of that difference (`verdict`): entirely above 0 -> "holds", entirely below 0 ->
"reversed", else "within noise". The interval is obtained one of two ways:

- seeds (`compare_seeds`): every cell of both sides has the same S >= 2 seeds (few-shot runs): a Student-t
  interval over the S per-seed differences, paired by seed (seed k of both sides used the same annotated subset);
- bootstrap (`compare_bootstrap`): every cell is one run with per-sample values (`lead_hsr.report.samples`):
  `RESAMPLES` resamples of the evaluation samples (test images, matching pairs, generated images, PPL paths,
  ALS interpolation pairs), percentile interval. Two cells evaluated on the same samples (same `sample_set`) are
  resampled with the same indices (paired); otherwise each is resampled independently. The indices depend only on
  (`BOOTSTRAP_SEED`, sample_set, n), so the output is deterministic and metric jobs that precompute replicates
  (FID) pair with each other.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

RESAMPLES = 1000        # B, bootstrap resamples
INTERVAL_LEVEL = 0.95   # two-sided level of every interval
BOOTSTRAP_SEED = 0      # the resample indices' seed (with the sample set's name and size)
RESAMPLE_CHUNK = 100    # resamples drawn at once: bounds memory (B x n indices) for 50k-sample metrics
HOLDS, REVERSED, WITHIN_NOISE = "holds", "reversed", "within noise"
VERDICTS = (HOLDS, REVERSED, WITHIN_NOISE)
VERDICT_RULE = (f"verdict: the {INTERVAL_LEVEL:.0%} interval of the difference (positive = the ordering holds) "
                f"lies entirely above 0 -> '{HOLDS}', entirely below 0 -> '{REVERSED}', else '{WITHIN_NOISE}'")


def verdict(low: float, high: float) -> str:
    """The verdict of a difference interval [low, high] (positive = the ordering holds)."""
    if low > 0:
        return HOLDS
    if high < 0:
        return REVERSED
    return WITHIN_NOISE


def _set_key(sample_set: str) -> list[int]:
    digest = hashlib.sha256(sample_set.encode("utf-8")).digest()
    return [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4)]


def resample_chunks(n: int, sample_set: str, resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED):
    """Bootstrap indices (chunks of rows, each row n draws with replacement from range(n)), a function of
    (seed, sample_set, n) alone: two runs on the same sample set get the same indices."""
    rng = np.random.default_rng([seed, n, *_set_key(sample_set)])
    for start in range(0, resamples, RESAMPLE_CHUNK):
        yield rng.integers(0, n, size=(min(RESAMPLE_CHUNK, resamples - start), n))


def resample_indices(n: int, sample_set: str, resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """All of `resample_chunks` at once (B x n): for small n and tests."""
    return np.concatenate(list(resample_chunks(n, sample_set, resamples, seed)))


def ratio_replicates(values: np.ndarray, weights: np.ndarray, sample_set: str,
                     resamples: int = RESAMPLES) -> np.ndarray:
    """sum(values) / sum(weights) on each bootstrap resample of the samples (B)."""
    values, weights = np.asarray(values, dtype=np.float64), np.asarray(weights, dtype=np.float64)
    return np.concatenate([values[rows].sum(axis=1) / weights[rows].sum(axis=1)
                           for rows in resample_chunks(len(values), sample_set, resamples)])


def percentile_interval(replicates: np.ndarray, level: float = INTERVAL_LEVEL) -> tuple[float, float]:
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return float(low), float(high)


def t_interval(values, level: float = INTERVAL_LEVEL) -> tuple[float, float]:
    """Student-t interval of the mean of S >= 2 values."""
    from scipy.stats import t

    values = np.asarray(values, dtype=np.float64)
    half = t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return float(values.mean() - half), float(values.mean() + half)


@dataclass
class Estimate:
    value: float
    low: float
    high: float


@dataclass
class Comparison:
    better: Estimate
    worse: Estimate
    difference: Estimate   # positive = the ordering holds
    method: str            # how the intervals were obtained, for the table
    verdict: str


def ahead(better, worse, lower_is_better: bool):
    """How far the better side is ahead (positive = the ordering holds); numbers or arrays."""
    return worse - better if lower_is_better else better - worse


def compare_seeds(better_cells, worse_cells, lower_is_better: bool) -> Comparison:
    """Cells: per-seed values (S each, the same seeds in the same order on every cell, S >= 2)."""
    better = np.mean(np.asarray(better_cells, dtype=np.float64), axis=0)  # per-seed side values
    worse = np.mean(np.asarray(worse_cells, dtype=np.float64), axis=0)
    differences = ahead(better, worse, lower_is_better)
    estimates = [Estimate(float(v.mean()), *t_interval(v)) for v in (better, worse, differences)]
    method = f"t interval over {len(differences)} seeds, paired by seed"
    if len(better_cells) > 1:
        method += f" (mean of {len(better_cells)} cells per seed)"
    return Comparison(*estimates, method=method, verdict=verdict(estimates[2].low, estimates[2].high))


@dataclass
class BootstrapCell:
    value: float              # the metric on all samples
    replicates: np.ndarray    # B values on the resamples
    sample_set: str


def cell_from_entry(entry: dict, value: float) -> BootstrapCell:
    """A per-sample entry (lead_hsr.report.samples) as a bootstrap cell. Stored replicates (FID) are re-centred on
    the value: a resample repeats samples, which biases FID upward (on the demo the whole bootstrap distribution
    lies above the full-sample FID); their spread is kept (bias-corrected percentile interval). Ratio metrics
    (means over samples) have no such bias and are used as resampled."""
    if "replicates" in entry:
        replicates = entry["replicates"] - (entry["replicates"].mean() - value)
    else:
        replicates = ratio_replicates(entry["values"], entry["weights"], entry["sample_set"])
    return BootstrapCell(value, replicates, entry["sample_set"])


def compare_bootstrap(better_cells: list[BootstrapCell], worse_cells: list[BootstrapCell],
                      lower_is_better: bool) -> Comparison:
    """Cells with bootstrap replicates; the two sides' cells correspond in order (same table columns)."""
    sides = []
    for cells in (better_cells, worse_cells):
        value = float(np.mean([cell.value for cell in cells]))
        replicates = np.mean([cell.replicates for cell in cells], axis=0)
        sides.append((value, replicates))
    (better, better_reps), (worse, worse_reps) = sides
    ahead_reps = ahead(better_reps, worse_reps, lower_is_better)
    difference = Estimate(ahead(better, worse, lower_is_better), *percentile_interval(ahead_reps))
    return Comparison(Estimate(better, *percentile_interval(better_reps)),
                      Estimate(worse, *percentile_interval(worse_reps)), difference,
                      method=_bootstrap_method(better_cells, worse_cells),
                      verdict=verdict(difference.low, difference.high))


def _bootstrap_method(better_cells: list[BootstrapCell], worse_cells: list[BootstrapCell]) -> str:
    paired = [b.sample_set == w.sample_set for b, w in zip(better_cells, worse_cells)]
    sets = list(dict.fromkeys(cell.sample_set for cell in better_cells + worse_cells))
    how = ("paired bootstrap" if all(paired) else "bootstrap, sides independent (different samples)"
           if not any(paired) else f"bootstrap, {sum(paired)} of {len(paired)} cells paired")
    return f"{how} over {'; '.join(sets)} (B={RESAMPLES}, percentile)"
