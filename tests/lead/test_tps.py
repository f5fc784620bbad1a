"""TPS warps: a warped landmark sits on the warped image feature."""
import pytest
import torch

from lead_hsr.lead import tps


def _blob_image(centres: torch.Tensor, size: int, sigma: float = 1.5) -> torch.Tensor:
    """1 x K x H x W: channel k is a Gaussian blob at landmark k (pixel-centre coordinates)."""
    axis = torch.arange(size, dtype=torch.float64)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    blobs = [torch.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma ** 2)) for x, y in centres.tolist()]
    return torch.stack(blobs)[None]


def _blob_centres(maps: torch.Tensor, near: torch.Tensor, radius: int = 5) -> torch.Tensor:
    """Intensity-weighted centroid of each channel in a window around `near` (K x 2)."""
    size = maps.shape[-1]
    axis = torch.arange(size, dtype=torch.float64)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    out = []
    for k, (x, y) in enumerate(near.tolist()):
        window = ((xx - x).abs() <= radius) & ((yy - y).abs() <= radius)
        weights = maps[0, k] * window
        out.append([(weights * xx).sum() / weights.sum(), (weights * yy).sum() / weights.sum()])
    return torch.tensor(out, dtype=torch.float64)


def test_pixel_unit_conversion_is_align_corners_false():
    points = torch.tensor([[0.0, 95.0], [47.5, -0.5]], dtype=torch.float64)
    unit = tps.pixels_to_unit(points, 96, 96)
    torch.testing.assert_close(unit, torch.tensor([[-95 / 96, 95 / 96], [0.0, -1.0]], dtype=torch.float64))
    torch.testing.assert_close(tps.unit_to_pixels(unit, 96, 96), points)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_warped_landmarks_sit_on_warped_blobs(seed):
    size = 64
    landmarks = torch.tensor([[20.0, 22.0], [44.0, 21.5], [32.3, 36.0], [24.0, 47.0], [41.0, 46.2]],
                             dtype=torch.float64)
    image = _blob_image(landmarks, size)
    warp = tps.random_warps(1, tps.TRAINING_STRENGTH, torch.Generator().manual_seed(seed))
    warped = tps.warp_maps(image, warp)
    moved = tps.warp_landmarks(landmarks[None], warp, size, size)[0]
    assert (moved - landmarks).norm(dim=1).max() > 1.0  # the warp really moved things
    found = _blob_centres(warped, moved)
    assert (found - moved).norm(dim=1).max() < 0.35  # sub-pixel agreement (blob distortion only)


def test_inverse_round_trip_and_identity():
    warp = tps.random_warps(2, tps.MATCHING_STRENGTH, torch.Generator().manual_seed(5))
    sources = torch.tensor([[[-0.5, 0.2], [0.3, 0.7], [0.0, 0.0]]] * 2, dtype=torch.float64)
    torch.testing.assert_close(warp.source_of(warp.target_of(sources, 48, 48)), sources)
    image = torch.rand(1, 3, 16, 16, dtype=torch.float64)
    torch.testing.assert_close(tps.warp_maps(image, tps.identity_warp()), image)
    points = torch.tensor([[[3.0, 4.0], [float("nan"), float("nan")]]], dtype=torch.float64)
    moved = tps.warp_landmarks(points, tps.identity_warp(), 16, 16)
    torch.testing.assert_close(moved, points, equal_nan=True)


def test_translation_warp_moves_content_and_landmarks_together():
    image = _blob_image(torch.tensor([[10.0, 12.0]]), 32)
    warp = tps.translation_warp(3, -2, 32, 32)
    moved = tps.warp_landmarks(torch.tensor([[[10.0, 12.0]]], dtype=torch.float64), warp, 32, 32)[0]
    torch.testing.assert_close(moved, torch.tensor([[13.0, 10.0]], dtype=torch.float64))
    warped = tps.warp_maps(image, warp)
    assert warped[0, 0].argmax() == 10 * 32 + 13


def test_strengths_follow_dve_and_half_strength_is_half():
    assert tps.TRAINING_STRENGTH == tps.TpsStrength(0.001, 0.01, 0.1, 0.1, 5.0)
    assert tps.MATCHING_STRENGTH == tps.TpsStrength(0.0005, 0.005, 0.05, 0.05, 2.5)
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    strong = tps.random_warps(3, tps.TRAINING_STRENGTH, gen())
    half = tps.random_warps(3, tps.MATCHING_STRENGTH, gen())
    torch.testing.assert_close(half.kernel_weights, strong.kernel_weights / 2)
    torch.testing.assert_close(half.translation, strong.translation / 2)


def test_random_warp_batch_is_seeded():
    maps, landmarks = torch.rand(2, 4, 24, 24), torch.rand(2, 3, 2) * 20
    a = tps.random_warp_batch(maps, landmarks, tps.FEWSHOT_STRENGTH, torch.Generator().manual_seed(1))
    b = tps.random_warp_batch(maps, landmarks, tps.FEWSHOT_STRENGTH, torch.Generator().manual_seed(1))
    c = tps.random_warp_batch(maps, landmarks, tps.FEWSHOT_STRENGTH, torch.Generator().manual_seed(2))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and not torch.equal(a[0], c[0])


def test_inverse_warp_does_not_depend_on_how_the_nearest_search_is_chunked(monkeypatch):
    """target_of batches its nearest-pixel search over warps, in chunks bounded by memory: same answer."""
    generator = torch.Generator().manual_seed(3)
    warp = tps.random_warps(5, tps.MATCHING_STRENGTH, generator)
    sources = torch.rand(5, 7, 2, generator=generator, dtype=torch.float64) * 1.6 - 0.8
    whole = warp.target_of(sources, 24, 24)
    monkeypatch.setattr(tps, "NEAREST_CHUNK_ELEMENTS", 7 * 24 * 24 * 2)  # two warps per cdist call
    assert torch.equal(warp.target_of(sources, 24, 24), whole)
    one_by_one = torch.cat([warp[b].target_of(sources[b:b + 1], 24, 24) for b in range(5)])
    assert torch.equal(one_by_one, whole)
    torch.testing.assert_close(warp.source_of(whole), sources)
