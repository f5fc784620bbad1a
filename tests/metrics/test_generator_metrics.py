"""The generator-level entry points the workflow calls, on a toy generator and the random-CNN stand-in."""
import numpy as np
import torch

from lead_hsr.metrics import features, fid, mahalanobis, precision_recall


def _real_images(G, num, seed):
    """uint8 N x H x W x 3 images drawn from the same toy generator (a 'real set' G should match)."""
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(num, G.z_dim, generator=generator)
    with torch.no_grad():
        images = G.synthesis(G.mapping(z, torch.zeros(num, 0)), noise_mode="random")
    return features.quantise_to_uint8(images).permute(0, 2, 3, 1).numpy()


def test_fid_and_pr_prefer_the_matching_real_set(toy_generator, tmp_path):
    G = toy_generator(resolution=16, nonlinear=True)
    other = toy_generator(resolution=16, nonlinear=True, seed=7)  # a different image distribution
    extractor = features.make_extractor("random-cnn")
    same, different = _real_images(G, 120, 1), _real_images(other, 120, 1)
    fid_same = fid.fid_for_generator(G, same, "same", extractor, tmp_path, num_gen=120)
    fid_other = fid.fid_for_generator(G, different, "other", extractor, tmp_path, num_gen=120, bootstrap=True)
    assert fid_same["fid"] < 0.5 * fid_other["fid"] and "replicates" not in fid_same
    # the bootstrap the orderings read: B replicates around the FID, named by the generated images they resample
    replicates = fid_other["replicates"]
    assert replicates["sample_set"] == "generated images (z seed 0, n=120)" and len(replicates["replicates"]) == 1000
    # a resample repeats images, which raises FID: the orderings re-centre the replicates (report.noise)
    assert replicates["replicates"].std() > 0 and replicates["replicates"].mean() > fid_other["fid"]
    assert fid_same["source"] == "standin:random" and fid_same["num_real"] == 120
    pr_same = precision_recall.pr_for_generator(G, same, "same", extractor, tmp_path, num_gen=120, max_real=100)
    pr_other = precision_recall.pr_for_generator(G, different, "other", extractor, tmp_path, num_gen=120)
    assert pr_same["precision"] > pr_other["precision"] and pr_same["recall"] > pr_other["recall"]
    assert pr_same["num_real"] == 100 and pr_same["k"] == 3
    assert pr_same["samples"]["recall"]["values"].mean() == pr_same["recall"]  # per real image, 100 of them
    assert len(pr_same["samples"]["recall"]["values"]) == 100 and len(pr_same["samples"]["precision"]["values"]) == 120


def test_worst_generated_returns_latents_that_reproduce_the_distances(toy_generator):
    G = toy_generator(resolution=16, nonlinear=True)
    extractor = features.make_extractor("random-cnn")
    real = extractor.extract_nhwc(_real_images(G, 200, 3))
    result = mahalanobis.worst_generated(G, real, extractor, num_gen=50, k=5, batch_size=16, seed=4)
    assert len(result["indices"]) == 5 and result["distances"][result["indices"]].tolist() == \
        sorted(result["distances"], reverse=True)[:5]
    # generated_features uses random noise, so redraw with a noise-free generator to compare exactly
    G_still = toy_generator(resolution=16, nonlinear=True, noise_strength=0.0)
    still = mahalanobis.worst_generated(G_still, real, extractor, num_gen=50, k=5, batch_size=16, seed=4)
    with torch.no_grad():
        image = features.quantise_to_uint8(G_still.synthesis(G_still.mapping(torch.from_numpy(
            still["z"][:1]), torch.zeros(1, 0))))
    redrawn = mahalanobis.mahalanobis_distances(extractor(image).numpy(), *mahalanobis.real_moments(real))
    assert np.allclose(redrawn, still["distances"][still["indices"][0]], rtol=1e-5)
