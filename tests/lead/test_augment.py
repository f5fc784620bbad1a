"""Batched augmentations: crops are real crops, each op does what it says, randomness comes from the generator."""

import torch

from lead_hsr.data.geometry import NORM_MEAN, NORM_STD
from lead_hsr.lead import augment as aug

torch.set_num_threads(1)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _images(n=6, size=20):
    return torch.randint(0, 256, (n, size, size, 3), generator=_gen(5), dtype=torch.uint8)


def test_random_crop_is_a_window_of_the_input():
    x = aug.to_float_nchw(_images())
    crops = aug.random_crop(x, 12, _gen())
    assert crops.shape == (6, 3, 12, 12)
    for img, crop in zip(x, crops):
        hits = [(t, l) for t in range(9) for l in range(9) if torch.equal(img[:, t:t + 12, l:l + 12], crop)]
        assert len(hits) == 1
    assert not torch.equal(crops[0], crops[1])  # offsets differ per sample


def test_same_generator_same_views_and_different_seed_differs():
    images, cfg = _images(), aug.AugmentConfig(crop=16)
    a1, a2 = aug.byol_views(images, cfg, _gen(3))
    b1, b2 = aug.byol_views(images, cfg, _gen(3))
    assert torch.equal(a1, b1) and torch.equal(a2, b2)
    assert not torch.equal(a1, aug.byol_views(images, cfg, _gen(4))[0])
    assert a1.shape == (6, 3, 16, 16) and torch.isfinite(a1).all()


def test_flip_grayscale_and_identity_settings():
    x = aug.to_float_nchw(_images())
    assert torch.equal(aug.random_flip(x, 1.0, _gen()), x.flip(-1))
    assert torch.equal(aug.random_flip(x, 0.0, _gen()), x)
    gray = aug.random_grayscale(x, 1.0, _gen())
    assert torch.allclose(gray[:, 0], gray[:, 1]) and torch.allclose(gray[:, 1], gray[:, 2])
    assert torch.allclose(gray[:, 0], 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])
    cfg = aug.AugmentConfig()
    assert torch.equal(aug.color_jitter(x, aug.AugmentConfig(jitter_p=0.0), _gen()), x)
    assert torch.equal(aug.gaussian_blur(x, cfg, 0.0, _gen()), x)


def test_blur_keeps_constant_images_and_smooths_noise():
    cfg = aug.AugmentConfig(blur_sigma=(1.5 * 224 / 20, 1.5 * 224 / 20))  # 1.5 px on these 20-px images
    const = torch.full((2, 3, 20, 20), 0.3)
    assert torch.allclose(aug.gaussian_blur(const, cfg, 1.0, _gen()), const, atol=1e-6)
    noise = aug.to_float_nchw(_images())
    assert aug.gaussian_blur(noise, cfg, 1.0, _gen()).std() < 0.6 * noise.std()


def test_hue_rotation_keeps_gray_and_full_turn_is_identity():
    gray = torch.rand(2, 1, 5, 5).expand(2, 3, 5, 5)
    assert torch.allclose(aug._rotate_hue(gray, torch.tensor([0.1, -0.1])), gray, atol=1e-5)
    x = torch.rand(2, 3, 5, 5)
    assert torch.allclose(aug._rotate_hue(x, torch.tensor([1.0, 0.0])), x, atol=1e-5)
    assert not torch.allclose(aug._rotate_hue(x, torch.tensor([0.25, 0.25])), x, atol=1e-2)


def test_view_is_normalised_with_protocol_constants():
    images = torch.full((1, 8, 8, 3), 255, dtype=torch.uint8)
    cfg = aug.AugmentConfig(crop=8, flip_p=0, jitter_p=0, gray_p=0, blur_p=0)
    view = aug.augment_view(images, cfg, _gen())
    expected = (1 - torch.tensor(NORM_MEAN)) / torch.tensor(NORM_STD)
    assert torch.allclose(view[0, :, 0, 0], expected)


def test_blur_sigma_scales_with_image_size():
    """sigma is given for 224-px images (BYOL); on a 112-px image sigma 2.0 becomes 1.0 px."""
    cfg = aug.AugmentConfig(blur_sigma=(2.0, 2.0))
    impulse = torch.zeros(1, 3, 112, 112)
    impulse[..., 56, 56] = 1.0
    out = aug.gaussian_blur(impulse, cfg, 1.0, _gen())[0, 0]
    offsets = torch.arange(112.0) - 56
    variance_x = (out.sum(0) * offsets ** 2).sum() / out.sum()
    assert abs(variance_x.item() - 1.0) < 0.05
