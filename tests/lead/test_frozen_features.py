"""Regression descriptors extracted per batch (paper-scale hypercolumns do not fit in memory) equal cached ones."""
import json

import numpy as np
import pytest
import torch

from lead_hsr.lead.dense_model import (FrozenFeatures, dense_descriptors, descriptor_bytes, extract_features,
                                       load_dense_model, select_rows)
from lead_hsr.metrics.landmarks import regression_runs
from tiny_data import random_teacher, tiny_store


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("frozen")
    random_teacher(tiny_store(root / "store", 16, 40, n_test=8, n_landmarks=5), root / "weights.pt", crop=32,
                   bn_images=512)
    return root


def test_lazy_descriptors_equal_extracted_ones(tiny):
    model = load_dense_model(tiny / "weights.pt")
    images = np.random.default_rng(1).integers(0, 256, (10, 32, 32, 3), dtype=np.uint8)
    cached = extract_features(model, images, 8)
    lazy = dense_descriptors(model, images, 8, cache_bytes=descriptor_bytes(model, 10, 8) - 1)
    assert isinstance(lazy, FrozenFeatures) and lazy.shape == cached.shape and len(lazy) == 10
    assert torch.allclose(lazy[torch.tensor([7, 2])], cached[[7, 2]], atol=1e-5)
    assert torch.allclose(select_rows(lazy, np.array([3, 4]))[1:2], cached[4:5], atol=1e-5)
    assert isinstance(dense_descriptors(model, images, 8, cache_bytes=descriptor_bytes(model, 10, 8)), torch.Tensor)


def test_regression_with_lazy_descriptors_matches_the_cached_run(tiny):
    options = {"crop": 4, "steps": 6, "fewshot_steps": 4, "device": "cpu", "feature_stride": 4,
               "regressor": {"batch_size": 8}, "fewshot_regressor": {"batch_size": 4}}
    results = []
    for name, cache_gb in (("cached", 8.0), ("lazy", 1e-9)):
        outputs = {("all", 0): tiny / name / "all" / "metrics.json", (5, 1): tiny / name / "5" / "metrics.json"}
        regression_runs(tiny / "weights.pt", tiny / "store", "mafl", outputs, {**options, "feature_cache_gb": cache_gb})
        results.append([json.loads(path.read_text()) for path in outputs.values()])
    for cached, lazy in zip(*results):
        assert lazy["iod"] == pytest.approx(cached["iod"], rel=1e-4)
        assert lazy["n_train"] == cached["n_train"]
