"""Each metric's per-sample entry (lead_hsr.report.samples) reproduces the metric's scalar; FID's replicates are
the FID of the resampled generated rows."""
import numpy as np
import pytest
import torch

from lead_hsr.lead.matching import MatchingResult
from lead_hsr.metrics.als import als_from_logits
from lead_hsr.metrics.fid import fid_from_features, fid_replicates
from lead_hsr.metrics.iod import iod_error, iod_samples
from lead_hsr.metrics.landmarks import pair_error_samples
from lead_hsr.metrics.ppl import filtered_mean
from lead_hsr.metrics.precision_recall import manifold_flags, precision_recall
from lead_hsr.report.noise import resample_indices
from lead_hsr.report.samples import entry_value, ratio_entry

RNG = np.random.default_rng(0)


def test_iod_per_image_values_give_the_iod_with_absent_landmarks():
    gt = RNG.uniform(0, 50, (12, 5, 2))
    gt[3, 2] = np.nan  # an absent landmark weighs its image less
    pred = gt + RNG.normal(0, 2, gt.shape)
    values, weights = iod_samples(pred, gt, (0, 1))
    assert entry_value(ratio_entry(values, weights, "t")) == pytest.approx(iod_error(pred, gt, (0, 1)))
    assert weights[3] == 4 and weights[0] == 5


def test_matching_per_pair_values_give_the_mean_error():
    same, different = (torch.from_numpy(RNG.uniform(0, 9, (7, 5))) for _ in range(2))
    different[2, 1] = float("nan")
    result = MatchingResult.from_errors(same, different)
    assert entry_value(pair_error_samples(different, "p")) == pytest.approx(result.different)
    assert entry_value(pair_error_samples(same, "p")) == pytest.approx(result.same)


def test_ppl_kept_distances_give_the_filtered_mean():
    distances = RNG.lognormal(0, 1, 300)
    ppl, kept, _, _ = filtered_mean(distances)
    assert entry_value(ratio_entry(np.where(kept, distances, 0.0), kept, "z")) == pytest.approx(ppl)


def test_als_per_pair_scores_average_to_the_scores():
    result = als_from_logits(RNG.normal(0, 1, (9, 5, 3)), ["a", "b", "c"])
    assert np.allclose(result.per_pair.mean(axis=0), list(result.per_attribute.values()))
    assert result.per_pair.mean() == pytest.approx(result.als)


def test_precision_recall_flags_average_to_precision_and_recall():
    generated, real = RNG.normal(0, 1, (40, 4)), RNG.normal(0.5, 1, (30, 4))
    generated_inside, real_inside = manifold_flags(generated, real, k=3)
    assert (generated_inside.mean(), real_inside.mean()) == pytest.approx(precision_recall(generated, real, k=3))


@pytest.mark.parametrize("num_gen, dims", [(60, 4), (12, 20)])  # more rows than features, and fewer (Gram form)
def test_fid_replicates_are_the_fid_of_the_resampled_generated_rows(num_gen, dims):
    generated, real = RNG.normal(3, 1, (num_gen, dims)), RNG.normal(3.2, 1.1, (80, dims))
    name = f"generated images (z seed 0, n={num_gen})"
    replicates = fid_replicates(generated, real, name)
    indices = resample_indices(num_gen, name)
    assert len(replicates) == len(indices)
    for b in (0, 7, 999):
        assert replicates[b] == pytest.approx(fid_from_features(generated[indices[b]], real), rel=1e-6)
