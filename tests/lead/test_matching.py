"""Matching error on synthetic pairs with known warps."""
import pytest
import torch

from lead_hsr.lead import matching, tps


def _position_codes(size: int, shift=(0, 0)) -> torch.Tensor:
    """1 x (S*S) x S x S one-hot codes: pixel (x, y) carries the code of source pixel (x - dx, y - dy)."""
    codes = torch.zeros(1, size * size, size, size)
    dx, dy = shift
    for y in range(size):
        for x in range(size):
            sx, sy = x - dx, y - dy
            if 0 <= sx < size and 0 <= sy < size:
                codes[0, sy * size + sx, y, x] = 1.0
    return codes


def test_translation_with_position_codes_gives_zero_error():
    size = 12
    source, target = _position_codes(size), _position_codes(size, shift=(2, 1))
    on_grid = torch.tensor([[[3.0, 4.0], [6.0, 6.0], [1.0, 8.0]]])  # landmarks on pixel centres
    moved = on_grid + torch.tensor([2.0, 1.0])
    result = matching.evaluate_matching(torch.cat([source, source]), torch.cat([on_grid, on_grid]),
                                        torch.cat([target, target]), torch.cat([moved, moved]), crop_size=size)
    assert result.same == pytest.approx(0.0, abs=1e-6) and result.different == pytest.approx(0.0, abs=1e-6)
    landmarks = torch.tensor([[[3.0, 4.0], [6.2, 5.9], [1.0, 8.0]]])
    # landmark (6.2, 5.9) is queried at its cell (6, 6) -> matched (8, 7) vs truth (8.2, 6.9)
    pred = matching.match_landmarks(matching.prepare_descriptors(source, size)[0], landmarks[0],
                                    matching.prepare_descriptors(target, size)[0])
    torch.testing.assert_close(pred, torch.tensor([[5.0, 5.0], [8.0, 7.0], [3.0, 9.0]]))


def test_known_offset_gives_known_canonical_error():
    size = 10
    source, target = _position_codes(size), _position_codes(size, shift=(3, 4))  # content moved by (3, 4)
    landmarks = torch.tensor([[[2.0, 2.0], [5.0, 3.0]]])
    unmoved_truth = landmarks  # pretend the truth did not move: every match is off by exactly 5 px
    result = matching.evaluate_matching(torch.cat([source, source]), torch.cat([landmarks, landmarks]),
                                        torch.cat([target, _position_codes(size)]),
                                        torch.cat([unmoved_truth, landmarks]), crop_size=size)
    assert result.same == pytest.approx(5.0 * 70 / size)   # 5 px in a 10-px crop = 35 canonical px
    assert result.different == pytest.approx(0.0)          # the second image was not moved
    assert result.n_pairs == 1


def test_low_resolution_features_are_upsampled_and_cosine_is_scale_free():
    size = 16
    torch.manual_seed(0)
    coarse = torch.randn(2, 8, 4, 4)
    full = matching.prepare_descriptors(coarse, size)
    assert full.shape == (2, 8, size, size)
    expected = torch.nn.functional.interpolate(coarse, size=size, mode="bilinear", align_corners=False)
    torch.testing.assert_close(full, torch.nn.functional.normalize(expected, dim=1))
    # full-resolution random features (no upsampling plateaus, so no argmax ties)
    feats = torch.randn(2, 8, size, size)
    scaled = feats * (torch.rand(2, 1, size, size) * 10 + 0.1)  # per-location scale: same cosine matches
    landmarks = torch.tensor([[[2.0, 3.0], [13.0, 12.0]], [[5.0, 5.0], [9.0, 1.0]]])
    a = matching.evaluate_matching(feats, landmarks, feats, landmarks, crop_size=size)
    b = matching.evaluate_matching(feats, landmarks, scaled, landmarks, crop_size=size)
    assert a.same == pytest.approx(0.0) and b.same == pytest.approx(0.0)  # a map matches itself exactly
    assert a.different == pytest.approx(b.different) and a.different > 0


def test_matching_views_are_consistent_and_seeded():
    size, crop = 40, 4
    landmarks = torch.tensor([[[12.0, 14.0], [27.0, 25.0]]] * 2)
    images = torch.rand(2, 3, size, size)
    src, src_lm, tgt, tgt_lm = matching.matching_views(images, landmarks, first_index=0, seed=7, crop=crop)
    assert src.shape == (2, 3, size - 2 * crop, size - 2 * crop) and src_lm.shape == (2, 2, 2)
    again = matching.matching_views(images[1:], landmarks[1:], first_index=1, seed=7, crop=crop)
    torch.testing.assert_close(again[1][0], src_lm[1])   # warps depend on (seed, image index) only
    torch.testing.assert_close(again[3][0], tgt_lm[1])
    assert not torch.allclose(src_lm[0], tgt_lm[0])       # the target view is warped once more
    # blobs put at the landmarks are found where the warped landmarks say
    axis = torch.arange(size, dtype=torch.float32)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    blob = torch.exp(-((xx - 12) ** 2 + (yy - 14) ** 2) / 2.0)[None, None]
    views = matching.matching_views(blob, landmarks[:1, :1], first_index=0, seed=7, crop=crop)
    cropped_axis = torch.arange(size - 2 * crop, dtype=torch.float32)
    cy, cx = torch.meshgrid(cropped_axis, cropped_axis, indexing="ij")
    for view, lm in ((views[0], views[1]), (views[2], views[3])):
        weights = view[0, 0] / view[0, 0].sum()
        centroid = torch.stack([(weights * cx).sum(), (weights * cy).sum()])
        assert (centroid - lm[0, 0]).norm() < 0.3
    assert tps.MATCHING_STRENGTH == tps.TRAINING_STRENGTH.scaled(0.5)


def test_pairs_follow_sorted_file_names():
    order = matching.matching_order(["000010.jpg", "000002.jpg", "000101.jpg", "000003.jpg"])
    assert order.tolist() == [1, 3, 0, 2]


def test_matching_run_does_not_depend_on_the_chunk_size(tmp_path, monkeypatch):
    """Pairs are streamed a chunk at a time (memory); warps follow the sorted position, so chunks are invisible."""
    import json

    from lead_hsr.metrics import landmarks as lm_eval
    from tiny_data import random_teacher, tiny_store

    store = tiny_store(tmp_path / "store", 2, 40, n_test=8, n_landmarks=5)
    weights = random_teacher(store, tmp_path / "weights.pt", crop=32, bn_images=512)
    options = {"pairs": 4, "crop": 4, "seed": 3, "device": "cpu"}
    whole = lm_eval.matching_run(weights, tmp_path / "store", tmp_path / "a.json", options)
    monkeypatch.setattr(lm_eval, "MATCHING_CHUNK_PAIRS", 1)
    chunked = lm_eval.matching_run(weights, tmp_path / "store", tmp_path / "b.json", options)
    assert whole == chunked == json.loads((tmp_path / "b.json").read_text())
    assert whole["pairs"] == 4 and whole["matching_same"] < whole["matching_different"]
