"""Ordering verdicts with their noise: the verdict rule, paired resampling, seed intervals, per-sample files."""
import numpy as np
import pytest

from lead_hsr.errors import InputError
from lead_hsr.report.noise import (HOLDS, RESAMPLES, REVERSED, WITHIN_NOISE, BootstrapCell, cell_from_entry,
                                   compare_bootstrap, compare_seeds, ratio_replicates, resample_indices, verdict)
from lead_hsr.report.samples import entry_value, ratio_entry, read_samples, replicates_entry, write_samples


def _cell(values, sample_set="images"):
    values = np.asarray(values, dtype=np.float64)
    ones = np.ones_like(values)
    return BootstrapCell(float(values.mean()), ratio_replicates(values, ones, sample_set), sample_set)


def test_verdict_rule():
    assert verdict(0.1, 2.0) == HOLDS and verdict(-2.0, -0.1) == REVERSED
    assert verdict(-0.1, 0.1) == WITHIN_NOISE and verdict(0.0, 1.0) == WITHIN_NOISE


@pytest.mark.parametrize("shift, expected", [(-1.0, HOLDS), (1.0, REVERSED), (0.01, WITHIN_NOISE)])
def test_separated_and_overlapping_samples(shift, expected):
    rng = np.random.default_rng(1)
    worse = rng.normal(5.0, 1.0, 200)
    better = rng.normal(5.0 + shift, 1.0, 200)  # lower is better
    result = compare_bootstrap([_cell(better, "a")], [_cell(worse, "b")], lower_is_better=True)
    assert result.verdict == expected and "sides independent" in result.method
    again = compare_bootstrap([_cell(better, "a")], [_cell(worse, "b")], lower_is_better=True)
    assert again == result  # fixed seed: deterministic


def test_same_sample_set_draws_identical_indices_and_pairing_cancels_shared_noise():
    first, second = resample_indices(30, "test images of x"), resample_indices(30, "test images of x")
    assert first.shape == (RESAMPLES, 30) and np.array_equal(first, second)
    assert not np.array_equal(first, resample_indices(30, "test images of y"))
    noise = np.random.default_rng(2).normal(0, 5.0, 100)  # per-image difficulty, shared by both methods
    worse, better = 10 + noise, 9.9 + noise
    paired = compare_bootstrap([_cell(better)], [_cell(worse)], lower_is_better=True)
    assert paired.verdict == HOLDS and paired.method.startswith("paired bootstrap over images")
    assert paired.difference.low == pytest.approx(0.1) and paired.difference.high == pytest.approx(0.1)
    unpaired = compare_bootstrap([_cell(better, "a")], [_cell(worse, "b")], lower_is_better=True)
    assert unpaired.verdict == WITHIN_NOISE


def test_ratio_replicates_resample_whole_samples():
    values, weights = np.array([1.0, 2.0, 30.0]), np.array([1.0, 2.0, 3.0])
    indices = resample_indices(3, "s", resamples=5)
    expected = values[indices].sum(axis=1) / weights[indices].sum(axis=1)
    assert np.allclose(ratio_replicates(values, weights, "s", resamples=5), expected)


def test_seed_interval_is_a_paired_t_interval():
    better = [[1.0, 2.0, 3.0]]  # three seeds; the worse side is 1.0 behind on every seed but varies as much
    worse = [[2.0, 3.1, 3.9]]
    result = compare_seeds(better, worse, lower_is_better=True)
    assert result.verdict == HOLDS  # differences 1.0, 1.1, 0.9: the seeds' shared spread cancels
    assert result.difference.value == pytest.approx(1.0) and result.better.low < 0  # wide side interval
    assert compare_seeds([[1.0, 3.0]], [[2.0, 2.5]], lower_is_better=True).verdict == WITHIN_NOISE


def test_samples_file_round_trip(tmp_path):
    json_path = tmp_path / "metrics.json"
    entries = {"iod": ratio_entry([2.0, 6.0], [1.0, 2.0], "test images of t (n=2)"),
               "fid": replicates_entry([1.0, 2.0], "generated images (z seed 0, n=2)")}
    path = write_samples(json_path, entries)
    assert path.name == "metrics.samples.npz"
    back = read_samples(json_path)
    assert back["iod"]["sample_set"] == "test images of t (n=2)" and entry_value(back["iod"]) == pytest.approx(8 / 3)
    assert np.array_equal(back["fid"]["replicates"], [1.0, 2.0])
    with pytest.raises(InputError, match="als.samples.npz.*not found.*forcerun"):
        read_samples(tmp_path / "als.json")


def test_stored_replicates_are_recentred_on_the_value_and_ratio_replicates_are_not():
    fid = cell_from_entry(replicates_entry([6.0, 7.0, 8.0], "generated"), value=5.0)  # biased upward by 2
    assert np.allclose(fid.replicates, [4.0, 5.0, 6.0])
    ratio = cell_from_entry(ratio_entry([1.0, 3.0], [1.0, 1.0], "t"), value=2.0)
    assert np.allclose(ratio.replicates, ratio_replicates(np.array([1.0, 3.0]), np.ones(2), "t"))
