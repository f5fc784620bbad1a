"""Landmark regressor: forward pass vs an independent loop, coordinates, loss, learning, few-shot subsets."""
import json

import numpy as np
import pytest
import torch

from lead_hsr.errors import InputError
from lead_hsr.lead import regressor as reg
from lead_hsr.lead.tps import FEWSHOT_STRENGTH
from lead_hsr.metrics.iod import iod_error

torch.set_num_threads(1)


def _blob_features(n, seed, size=24, cells=12, channels=6, n_landmarks=3, noise=0.05):
    """Channel k holds a Gaussian blob at landmark k (plus noise); landmarks in pixels of a `size` crop."""
    gen = torch.Generator().manual_seed(seed)
    landmarks = torch.rand(n, n_landmarks, 2, generator=gen) * (size - 6) + 3
    unit = reg.pixels_to_unit(landmarks, size, "centres")  # physical positions (align_corners=False)
    centres = reg.cell_centres(cells, "centres")
    yy, xx = torch.meshgrid(centres, centres, indexing="ij")
    feats = noise * torch.randn(n, channels, cells, cells, generator=gen)
    for k in range(n_landmarks):
        dist2 = (xx - unit[:, k, 0, None, None]) ** 2 + (yy - unit[:, k, 1, None, None]) ** 2
        feats[:, k] += torch.exp(-dist2 / (2 * (2 / cells) ** 2))
    return feats, landmarks


def test_protocol_constants():
    options = reg.RegressorOptions()
    assert (options.n_intermediate, options.softargmax_mul, options.loss_scale) == (50, 100.0, 10.0)
    assert (options.lr, options.weight_decay, options.batch_size, options.loss) == (1e-3, 5e-4, 32, "smooth_l1")
    few = reg.RegressorOptions.fewshot()
    assert (few.lr, few.weight_decay, few.tps_strength) == (0.01, 0.05, FEWSHOT_STRENGTH)
    model = reg.LandmarkRegressor(in_dim=7, n_landmarks=5)
    assert model.project.weight.shape == (5 * 50, 7, 1, 1) and model.project.bias is None
    assert model.combine.shape == (5, 2, 100)  # per-landmark bias-free Linear(100 -> 2)
    with pytest.raises(InputError, match="loss"):
        reg.RegressorOptions(loss="l1")
    torch.manual_seed(0)
    big = reg.LandmarkRegressor(in_dim=64, n_landmarks=5)  # DVE: filters ~ randn (std 1)
    small = reg.LandmarkRegressor(in_dim=64, n_landmarks=5, filter_init_std=0.05)
    assert big.project.weight.std().item() == pytest.approx(1.0, abs=0.02)
    assert small.project.weight.std().item() == pytest.approx(0.05, abs=0.001)


@pytest.mark.parametrize("coordinates", ["dve", "centres"])
def test_forward_matches_an_independent_loop(coordinates):
    """float64 model and loop: the grids are DVE's linspace (2j / (w - 1) - 1) or the cell centres."""
    torch.manual_seed(0)
    model = reg.LandmarkRegressor(in_dim=4, n_landmarks=2, n_intermediate=3, softargmax_mul=2.0,
                                  coordinates=coordinates).double()
    feats = torch.randn(2, 4, 5, 6, dtype=torch.float64)
    n, _, h, w = feats.shape
    if coordinates == "dve":
        grid_x = torch.tensor([2 * j / (w - 1) - 1 for j in range(w)], dtype=torch.float64)
        grid_y = torch.tensor([2 * i / (h - 1) - 1 for i in range(h)], dtype=torch.float64)
    else:
        grid_x = torch.tensor([(2 * j + 1) / w - 1 for j in range(w)], dtype=torch.float64)
        grid_y = torch.tensor([(2 * i + 1) / h - 1 for i in range(h)], dtype=torch.float64)
    filters = model.project.weight[:, :, 0, 0].detach()
    expected = torch.zeros(n, 2, 2, dtype=torch.float64)
    for b in range(n):
        for k in range(2):
            points = []
            for i in range(3):
                scores = torch.einsum("c,chw->hw", filters[k * 3 + i], feats[b]) * 2.0
                prob = torch.softmax(scores.flatten(), 0).view(h, w)
                points += [(prob * grid_x[None, :]).sum(), (prob * grid_y[:, None]).sum()]
            expected[b, k] = model.combine[k].detach() @ torch.stack(points)
    assert model(feats).dtype == torch.float64
    torch.testing.assert_close(model(feats).detach(), expected, rtol=1e-12, atol=1e-12)


def test_coordinates_align_with_feature_cells():
    assert reg.pixels_to_unit(torch.tensor([0.0, 95.0]), 96, "centres").tolist() == pytest.approx([-95 / 96, 95 / 96])
    assert reg.pixels_to_unit(torch.tensor([0.0, 95.0]), 96, "dve").tolist() == [-1.0, 1.0]  # DVE kp_normalize
    for convention in reg.COORDINATES:
        torch.testing.assert_close(reg.unit_to_pixels(reg.pixels_to_unit(torch.tensor([3.2, 50.0]), 96, convention),
                                                      96, convention), torch.tensor([3.2, 50.0]))
    assert reg.cell_centres(5, "dve").tolist() == pytest.approx([-1.0, -0.5, 0.0, 0.5, 1.0])  # torch.linspace
    # a feature peaked at cell (row 2, col 5) of a 12 x 12 map is the pixel centre of that cell in a 96 crop
    model = reg.LandmarkRegressor(in_dim=1, n_landmarks=1, n_intermediate=1, softargmax_mul=100.0,
                                  coordinates="centres")
    with torch.no_grad():
        model.project.weight.fill_(1.0)
        model.combine.copy_(torch.eye(2)[None])
    feats = torch.zeros(1, 1, 12, 12)
    feats[0, 0, 2, 5] = 1.0
    pixel = reg.predict(model, feats, image_size=96)[0, 0]
    torch.testing.assert_close(pixel, torch.tensor([(5 + 0.5) * 8 - 0.5, (2 + 0.5) * 8 - 0.5]), atol=1e-3, rtol=0)


def test_coordinate_conventions_describe_the_same_model():
    """DVE's grid and targets are the centres' ones scaled per axis (S (w-1) / (w (S-1)) and S / (S-1)), so
    scaling the Linear weights by their ratio makes a "dve" regressor predict the same pixels as a "centres" one."""
    torch.manual_seed(0)
    size, cells = 96, 12
    feats = 0.05 * torch.randn(3, 6, cells, cells, dtype=torch.float64)
    centres = reg.LandmarkRegressor(6, 2, n_intermediate=4, coordinates="centres").double()
    dve = reg.LandmarkRegressor(6, 2, n_intermediate=4, coordinates="dve").double()
    dve.load_state_dict(centres.state_dict())
    # centres grid = dve grid * (w - 1) / w; dve target = centres target * S / (S - 1)
    with torch.no_grad():
        dve.combine.mul_((cells - 1) / cells * size / (size - 1))
    torch.testing.assert_close(reg.predict(dve, feats, size), reg.predict(centres, feats, size), rtol=0, atol=1e-10)
    with pytest.raises(InputError, match="coordinates"):
        reg.RegressorOptions(coordinates="align_corners")
    with pytest.raises(InputError, match="precision"):
        reg.RegressorOptions(precision="fp8")
    assert reg.RegressorOptions().coordinates == "dve" and reg.RegressorOptions().precision == "none"


def test_tps_augmentation_moves_the_same_physical_points_in_either_convention():
    feats, landmarks = _blob_features(3, seed=5)
    moved = {}
    for convention in reg.COORDINATES:
        unit = reg.pixels_to_unit(landmarks.double(), 24, convention)
        warped, out = reg._augment(feats, unit, FEWSHOT_STRENGTH, torch.Generator().manual_seed(7), 24, convention)
        moved[convention] = (warped, reg.unit_to_pixels(out, 24, convention))
    assert torch.equal(moved["dve"][0], moved["centres"][0])
    torch.testing.assert_close(moved["dve"][1], moved["centres"][1], rtol=0, atol=1e-9)
    assert (moved["dve"][1] - landmarks).abs().max() > 0.1  # the warp did move them


def test_float64_gradients_match_finite_differences():
    torch.manual_seed(1)
    model = reg.LandmarkRegressor(4, 2, n_intermediate=3, softargmax_mul=5.0).double()
    feats = torch.randn(2, 4, 5, 5, dtype=torch.float64)
    target = torch.rand(2, 2, 2, dtype=torch.float64) * 1.6 - 0.8

    def loss(weight, combine):
        return reg.regression_loss(torch.func.functional_call(model, {"project.weight": weight, "combine": combine},
                                                              (feats,)), target)
    params = (model.project.weight.detach().clone().requires_grad_(), model.combine.detach().clone().requires_grad_())
    assert torch.autograd.gradcheck(loss, params)


def test_loss_matches_hand_computation_and_skips_absent():
    pred = torch.tensor([[[0.0, 0.05], [0.3, -0.2]]])
    target = torch.tensor([[[0.02, 0.05], [float("nan"), float("nan")]]])
    # scaled differences on present entries: (-0.2, 0.0) -> smooth_l1: 0.5 * 0.04 = 0.02 and 0 -> mean 0.01
    assert reg.regression_loss(pred, target).item() == pytest.approx(0.01)
    assert reg.regression_loss(pred, target, "l2").item() == pytest.approx((0.04 + 0.0) / 2)
    big = reg.regression_loss(torch.tensor([[[0.5, 0.0]]]), torch.tensor([[[0.0, 0.0]]]))
    assert big.item() == pytest.approx((5.0 - 0.5 + 0.0) / 2)  # |x| - 0.5 beyond 1


def test_regressor_learns_far_below_mean_shape():
    train_feats, train_lm = _blob_features(128, seed=0)
    test_feats, test_lm = _blob_features(64, seed=1)
    model = reg.fit_regressor(train_feats, train_lm, image_size=24, steps=200, seed=0)
    learned = iod_error(reg.predict(model, test_feats, 24), test_lm, (0, 1))
    mean_shape = iod_error(train_lm.mean(0, keepdim=True).expand_as(test_lm), test_lm, (0, 1))
    assert learned < 0.4 * mean_shape, (learned, mean_shape)


def test_validation_loss_is_logged_for_monitoring_only(tmp_path):
    feats, landmarks = _blob_features(16, seed=3)
    val = _blob_features(8, seed=4)
    with_val = reg.fit_regressor(feats, landmarks, 24, steps=4, seed=0, work_dir=tmp_path / "v",
                                 validation=val, val_every=2, log_every=1)
    plain = reg.fit_regressor(feats, landmarks, 24, steps=4, seed=0)
    torch.testing.assert_close(with_val.combine, plain.combine)  # validation does not change training
    rows = (tmp_path / "v" / "log.csv").read_text().splitlines()
    header = rows[0].split(",")
    values = [dict(zip(header, row.split(","))) for row in rows[1:]]
    assert [bool(v["val_loss"]) for v in values] == [False, True, False, True]
    assert float(values[-1]["val_loss"]) > 0


def test_fewshot_with_tps_runs_and_resumes_deterministically(tmp_path):
    feats, landmarks = _blob_features(5, seed=2)
    options = reg.RegressorOptions.fewshot(batch_size=8)
    first = reg.fit_regressor(feats, landmarks, 24, steps=6, seed=1, options=options, work_dir=tmp_path / "a")
    on_disk = tmp_path / "feats.npy"  # cached descriptors may be a memory-mapped numpy array
    np.save(on_disk, feats.numpy())
    memmap = np.load(on_disk, mmap_mode="r")
    again = reg.fit_regressor(memmap, landmarks, 24, steps=6, seed=1, options=options, work_dir=tmp_path / "b")
    torch.testing.assert_close(reg.predict(again, memmap, 24), reg.predict(first, feats, 24))
    for name, value in first.state_dict().items():
        assert torch.equal(value, again.state_dict()[name])
    assert (tmp_path / "a" / "checkpoint.pt").exists()
    other_seed = reg.fit_regressor(feats, landmarks, 24, steps=6, seed=2, options=options)
    assert not torch.equal(other_seed.combine, first.combine)


def test_flop_count_matches_analytic():
    c, k, h, w, i = 64, 5, 48, 48, 50
    conv = 2 * c * k * i * h * w          # 1x1 conv: one multiply-add per (in, out, location)
    combine = 2 * k * 2 * (2 * i)         # per-landmark Linear(100 -> 2)
    assert reg.regressor_flops(c, k, h, w) == conv + combine
    # a training step adds the filter gradient (one more conv) and two products for the Linear's gradients
    assert reg.regressor_flops(c, k, h, w, include_backward=True) == 2 * conv + 3 * combine


def test_fewshot_subsets_are_stable_and_differ_across_seeds(tmp_path):
    a = reg.fewshot_subset(1000, 10, seed=0)
    assert np.array_equal(a, reg.fewshot_subset(1000, 10, seed=0)) and len(set(a.tolist())) == 10
    assert np.all(np.diff(a) > 0) and a.max() < 1000
    assert not np.array_equal(a, reg.fewshot_subset(1000, 10, seed=1))
    assert len(reg.fewshot_subset(20, 20, seed=3)) == 20
    with pytest.raises(InputError, match="count"):
        reg.fewshot_subset(5, 6, seed=0)
    files = [f"{i:06d}.jpg" for i in range(1000)]
    manifest = tmp_path / "subset.json"
    manifest.write_text(json.dumps([files[i] for i in a]))
    assert np.array_equal(reg.load_fewshot_manifest(manifest, files), a)
    with pytest.raises(InputError, match="subset.json"):
        reg.load_fewshot_manifest(manifest, files[:5])


def test_flush_denormals_zeroes_subnormals_only_inside():
    subnormal = torch.tensor([1e-39])
    assert (subnormal * 1.0).item() > 0                    # IEEE default: kept
    with reg.flush_denormals():                            # x86 (SSE3) and arm64 builds support it
        assert (subnormal * 1.0).item() == 0.0
        assert (torch.tensor([1e-30]) * 1.0).item() > 0    # normal floats untouched
    assert (subnormal * 1.0).item() > 0                    # restored for the rest of the process
