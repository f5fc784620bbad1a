import numpy as np
import pytest
import torch

from lead_hsr.errors import InputError
from lead_hsr.metrics import features


def test_quantisation_matches_stylegan():
    images = torch.tensor([-1.5, -1.0, -0.5, 0.0, 0.999, 1.0, 2.0]).reshape(1, 1, 1, 7)
    expected = np.clip(np.floor(images.numpy() * 127.5 + 128), 0, 255)  # truncation toward zero == floor here
    assert features.quantise_to_uint8(images).numpy().tolist() == expected.astype(np.uint8).tolist()
    assert features.quantise_to_uint8(images).dtype == torch.uint8


def test_pretrained_extractors_fail_with_the_fetch_command_when_absent(tmp_path):
    for kind, file_name in (("inception", "weights-inception-2015-12-05-6726825d.pth"),
                            ("vgg16", "vgg16-397923af.pth")):
        with pytest.raises(InputError) as error:
            features.make_extractor(kind, cache_dir=tmp_path)
        assert file_name in str(error.value) and "fetch_weights" in str(error.value)


def test_unknown_extractor_is_an_input_error():
    with pytest.raises(InputError, match="unknown feature extractor"):
        features.make_extractor("clip")


def test_random_inception_standin_gives_pool3_features_and_is_recorded():
    extractor = features.make_extractor("inception", standin="random", seed=1)
    images = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    output = extractor(images)
    assert output.shape == (2, 2048)
    assert output.std() > 1e-4  # He init keeps activations alive through the 90-odd layers
    assert extractor.record["source"] == "standin:random" and extractor.record["layer"] == "2048"
    assert torch.equal(features.make_extractor("inception", standin="random", seed=1)(images), output)


def test_random_cnn_is_seeded_and_rejects_float_input():
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    a, b = features.make_extractor("random-cnn", seed=0), features.make_extractor("random-cnn", seed=1)
    assert torch.equal(a(images), features.make_extractor("random-cnn", seed=0)(images))
    assert not torch.allclose(a(images), b(images))
    assert a(images).shape == (3, 2 * features.RANDOM_CNN_WIDTHS[-1])
    assert a.record == {"extractor": "random-cnn", "source": "standin:random", "seed": 0}
    with pytest.raises(ValueError, match="uint8"):
        a(images.float())


def test_real_features_are_cached_per_dataset_and_extractor(tmp_path):
    calls = []
    base = features.make_extractor("random-cnn")
    counting = features.Extractor(base.name, lambda x: calls.append(len(x)) or base.network(x), base.record)
    images = np.random.default_rng(0).integers(0, 256, (10, 16, 16, 3), dtype=np.uint8)
    first = features.real_features(images, "toy", counting, tmp_path, batch_size=4)
    assert calls == [4, 4, 2] and (tmp_path / f"toy~{base.name}.npy").is_file()
    second = features.real_features(images, "toy", counting, tmp_path, batch_size=4)
    assert calls == [4, 4, 2] and np.array_equal(first, second)  # loaded, not recomputed
    subset = features.real_features(images, "toy", counting, tmp_path, max_items=6, batch_size=4)
    assert calls == [4, 4, 2, 4, 2] and np.allclose(subset, first[:6], atol=1e-6)  # count changed -> recompute
    features.real_features(images, "toy", counting, tmp_path, max_items=6, batch_size=4, source_id="new-hash")
    assert calls == [4, 4, 2, 4, 2, 4, 2]  # the raw source set changed -> recompute


def test_generated_features_feed_quantised_images(toy_generator):
    seen = []
    record = {"extractor": "spy"}
    spy = features.Extractor("spy", lambda x: seen.append(x) or x.float().flatten(1)[:, :5], record)
    G = toy_generator(resolution=8)
    output = features.generated_features(G, spy, num=7, batch_size=3, seed=0)
    assert output.shape == (7, 5) and [len(x) for x in seen] == [3, 3, 1]
    assert all(x.dtype == torch.uint8 and x.shape[1:] == (3, 8, 8) for x in seen)
    again = features.generated_features(G, spy, num=7, batch_size=3, seed=0, noise_mode="const")
    assert np.array_equal(again, features.generated_features(G, spy, num=7, batch_size=3, seed=0,
                                                             noise_mode="const"))


def test_generated_features_with_random_noise_are_a_function_of_the_seed(toy_generator):
    """Per-image noise is seeded (a metric is repeatable) and the caller's global RNG is left as it was."""
    extractor = features.make_extractor("random-cnn")
    G = toy_generator(resolution=8, noise_strength=1.0)
    state = torch.get_rng_state()
    first = features.generated_features(G, extractor, num=7, batch_size=3, seed=0)
    assert torch.equal(torch.get_rng_state(), state)
    assert np.array_equal(first, features.generated_features(G, extractor, num=7, batch_size=3, seed=0))
    assert not np.array_equal(first, features.generated_features(G, extractor, num=7, batch_size=3, seed=1))
    still = features.generated_features(toy_generator(resolution=8, noise_strength=0.0), extractor, 7, 3, 0)
    assert not np.array_equal(first, still)  # the noise is there, only seeded
