"""Benchmark: FID feature extraction, our path (lead_hsr.metrics.features) vs torch-fidelity's own loop.

Both paths run the same torch-fidelity Inception-v3 module on the same uint8 images, so the ratio measures the
batching/loading overhead around the network, and the feature difference checks that nothing else changed.
The pretrained 2015-12-05 weights are not on the build machines, so BOTH paths load one shared file of RANDOM
Inception weights (same architecture and cost; the numbers are throughput only, not FID values). The FID
values printed at the end compare our Frechet distance (covariance / N, as StyleGAN2-ADA) with torch-fidelity's
(np.cov, / (N - 1)) on the same features.

    .venv/bin/python bench/bench_fid_features.py [--num 32] [--resolution 64] [--batch 16] [--threads 1] [--repeats 3]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _images(num: int, resolution: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    smooth = torch.rand(num, 3, 8, 8, generator=generator)
    images = torch.nn.functional.interpolate(smooth, size=resolution, mode="bilinear", align_corners=False)
    return (images * 255).to(torch.uint8)


class _TensorDataset(torch.utils.data.Dataset):
    def __init__(self, images: torch.Tensor):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.images[index]


def _ours(weights_file: Path, images: torch.Tensor, batch: int) -> tuple[np.ndarray, float]:
    from lead_hsr.metrics.features import make_extractor

    extractor = make_extractor("inception", standin=str(weights_file))
    start = time.perf_counter()
    features = extractor.extract_nhwc(images.permute(0, 2, 3, 1).numpy(), batch_size=batch)
    return features, time.perf_counter() - start


def _torch_fidelity(weights_file: Path, images: torch.Tensor, batch: int) -> tuple[np.ndarray, float]:
    from torch_fidelity.utils import create_feature_extractor, get_featuresdict_from_dataset

    extractor = create_feature_extractor("inception-v3-compat", ["2048"], cuda=False,
                                         feature_extractor_weights_path=str(weights_file), verbose=False)
    start = time.perf_counter()
    features = get_featuresdict_from_dataset(_TensorDataset(images), extractor, batch, cuda=False,
                                             save_cpu_ram=True, verbose=False)["2048"]
    return features.numpy(), time.perf_counter() - start


def _fid_both_ways(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    from lead_hsr.metrics.fid import fid_from_features

    theirs = fid_statistics_to_metric(fid_features_to_statistics(torch.from_numpy(a)),
                                      fid_features_to_statistics(torch.from_numpy(b)), verbose=False)
    return fid_from_features(a, b), float(theirs["frechet_inception_distance"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num", type=int, default=32)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from lead_hsr.metrics.features import _random_inception_weights

    with tempfile.TemporaryDirectory() as tmp:
        weights_file = Path(tmp) / "inception-random.pth"
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            weights_file.write_bytes(_random_inception_weights().getvalue())
        images = _images(args.num, args.resolution, seed=1)
        _ours(weights_file, images[: args.batch], args.batch)  # warm-up both paths once
        _torch_fidelity(weights_file, images[: args.batch], args.batch)
        ours_times, theirs_times = [], []
        for _ in range(args.repeats):  # alternate the two paths; best-of-N is robust to a shared, busy CPU
            ours, seconds = _ours(weights_file, images, args.batch)
            ours_times.append(seconds)
            theirs, seconds = _torch_fidelity(weights_file, images, args.batch)
            theirs_times.append(seconds)
        ours_s, theirs_s = min(ours_times), min(theirs_times)
        other = _ours(weights_file, _images(args.num, args.resolution, seed=2), args.batch)[0]
    print(f"images: {args.num} x {args.resolution}px uint8, batch {args.batch}, {args.threads} thread(s); "
          f"RANDOM Inception weights (pretrained file not on this machine), same file for both paths")
    print(f"best of {args.repeats} alternating runs")
    print(f"{'path':<16}{'seconds':>10}{'images/s':>12}")
    print(f"{'lead_hsr':<16}{ours_s:>10.2f}{args.num / ours_s:>12.1f}")
    print(f"{'torch-fidelity':<16}{theirs_s:>10.2f}{args.num / theirs_s:>12.1f}")
    print(f"throughput ratio lead_hsr / torch-fidelity: {theirs_s / ours_s:.3f}")
    print(f"max |feature difference|: {np.abs(ours - theirs).max():.3g} (feature scale {np.abs(theirs).mean():.3g})")
    ours_fid, theirs_fid = _fid_both_ways(ours, other)
    print(f"FID between two image sets: lead_hsr {ours_fid:.6g} (cov / N), torch-fidelity {theirs_fid:.6g} "
          f"(cov / (N - 1)); relative difference {abs(ours_fid - theirs_fid) / theirs_fid:.3g}")


if __name__ == "__main__":
    main()
