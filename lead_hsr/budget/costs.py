"""One job's cost from its rule, its wildcards and the config: FLOPs of the whole job and peak memory per GPU
(`Coster.cost`; one method per modelled rule family, probes measured once per distinct shape)."""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from lead_hsr.budget.dry_run import Job
from lead_hsr.budget.probes import (Probe, dense_features, gan_iteration, generator_forward, metric_network,
                                    regressor_step, stage1_step, stage2_step)


@dataclass(frozen=True)
class JobCost:
    flops: float            # whole job
    peak_bytes: float       # per GPU
    gpus: int
    unit: str               # what the per-sample probe measured


FIVE_POINTS = 5  # MAFL, AFLW_M, AFLW_R: 5 landmarks (DESIGN §4.1); 300W: readers.w300.N_POINTS


class Coster:
    """Costs of the jobs of one configuration (probes measured once per distinct shape)."""

    def __init__(self, config: dict):
        self.config = config
        self.lead, self.hsr = config["lead"], config["hsr"]
        self.crop = config["geometry"]["resize"] - 2 * config["geometry"]["crop"]
        self.res = config.get("resources", {})

    # ---- helpers
    def _gpus(self, family: str) -> int:
        return max(1, int(self.res.get(family, {}).get("gpu", 1)))

    def _count(self, store: str, split: str) -> int:
        from lead_hsr.data.prepare import PAPER_COUNTS
        from lead_hsr.data.prepare_gan import CELEBA_PARTITION_COUNTS
        spec = self.config["prepared"][store]
        if "expected_counts" in spec:
            return int(spec["expected_counts"].get(split, 0))
        if spec["preparer"] == "celeba_ssl":   # CelebA partition 0 minus every MAFL image (DESIGN §4.1)
            mafl = PAPER_COUNTS["mafl"]
            return CELEBA_PARTITION_COUNTS["train"] - mafl["train"] - mafl["test"]
        return int((PAPER_COUNTS.get(spec["preparer"]) or {}).get(split, 0))

    @staticmethod
    def _landmarks(store: str) -> int:
        from lead_hsr.data.readers.w300 import N_POINTS
        return N_POINTS if store == "w300" else FIVE_POINTS

    def _source(self, wc: dict) -> tuple[str, int, str]:
        """(dense model kind, descriptor dim, projection head) of a feature-source path."""
        stage2 = wc["stage2"]
        kind = {"none": "hypercolumn", "lead": "fpn", "cl_fpn": "fpn", "cl": "cl", "nmf": "nmf"}[stage2]
        return kind, int(wc["dim"]), wc["proj"]

    @functools.lru_cache(maxsize=None)
    def features(self, kind, dim, proj, size) -> Probe:
        return dense_features(kind, dim, proj, self.lead["stage1"]["common"].get("arch", "resnet50"), self.crop,
                              size)

    @functools.lru_cache(maxsize=None)
    def regressor(self, dim, k, size) -> Probe:
        return regressor_step(dim, k, size)

    @functools.lru_cache(maxsize=None)
    def gan(self, plr: str, aug: str, extractor: str | None, levels: str | None) -> Probe:
        train = dict(self.hsr["train"], ada=aug == "ada", pl_weight=0 if plr == "off" else 2.0)
        hsr = None
        if extractor:
            hsr = {**self.hsr.get("hsr", {}), **self.hsr["extractors"][extractor], "extractor": extractor,
                   "levels": levels, "extractor_weights": "random"}
        return gan_iteration(train, hsr, batch=4)

    @functools.lru_cache(maxsize=None)
    def metric(self, kind: str) -> Probe:
        if kind == "G":
            return generator_forward(self.hsr["train"].get("preset", "paper256"))
        # NVlabs' TorchScript networks have no random init: their torch-fidelity / lpips ports (the same
        # Inception-v3, VGG16 and LPIPS-VGG16 layers) are measured instead
        port = {"nvlabs-inception": "inception", "nvlabs-vgg16": "vgg16", "lpips-vgg": "lpips"}.get(kind, kind)
        return metric_network(port, self.config["geometry"]["resolution"])

    # ---- families
    def cost(self, job: Job) -> JobCost | None:
        method = getattr(self, f"_{job.rule}", None)
        return method(job.wc) if method else None

    def _train_stage1(self, wc):
        if wc["stage1"] not in ("byol", "moco"):
            return None
        opts = {**self.lead["stage1"]["common"], **self.lead["stage1"].get(wc["stage1"], {})}
        n = self._count(self.lead["ssl_store"], "train")
        batch = int(opts.get("batch", 256))
        from lead_hsr.lead.stage1 import EPOCHS
        steps = opts.get("steps") or math.ceil(float(opts.get("epochs", EPOCHS[wc["stage1"]])) * n / batch)
        p = stage1_step(wc["stage1"], opts.get("arch", "resnet50"), self.crop)
        gpus = self._gpus("train_stage1")
        return JobCost(steps * batch * p.flops, p.fixed_bytes + batch / gpus * p.saved_bytes, gpus, p.what)

    def _train_stage2(self, wc):
        opts = {**self.lead["stage2"]["common"], **self.lead["stage2"].get(wc["stage2"], {})}
        n = self._count(self.lead["ssl_store"], "train")
        gpus = self._gpus("train_stage2")
        if wc["stage2"] == "nmf":   # NMF: hypercolumns of nmf_images once, no gradient steps
            p = self.features("hypercolumn", 3840, "none", self.crop // 4)
            return JobCost(256 * p.flops, p.fixed_bytes, gpus, "NMF fit on the hypercolumns of 256 images")
        batch = int(opts.get("batch", 256))
        steps = opts.get("steps") or math.ceil(float(opts.get("epochs", 20)) * n / batch)
        p = stage2_step(wc["stage2"], int(wc["dim"]), wc["proj"], opts.get("arch", "resnet50"), self.crop)
        return JobCost(steps * batch * p.flops, p.fixed_bytes + batch / gpus * p.saved_bytes, gpus, p.what)

    def _regression(self, wc, store, runs):
        """runs: [(steps, images per step, training images)]; descriptors at crop / feature_stride."""
        reg = self.lead["regression"]
        size = self.crop // int(reg.get("feature_stride", 2))
        kind, dim, proj = self._source(wc)
        f, r = self.features(kind, dim, proj, size), self.regressor(dim, self._landmarks(store), size)
        test = self._count(store, "test")
        cache = float(reg.get("feature_cache_gb", 8)) * 1e9
        flops = 0.0
        for steps, batch, n_train in runs:
            frozen = (n_train + test) * dim * size * size * 4 > cache   # FrozenFeatures: extract every batch
            flops += steps * batch * (r.flops + (f.flops if frozen else 0)) + (n_train + test) * f.flops
        batch = max(b for _, b, _ in runs)
        return JobCost(flops, f.fixed_bytes + r.fixed_bytes + batch * r.saved_bytes, 1, r.what)

    def _regress_all(self, wc):
        store = self.lead["datasets"][wc["dataset"]]["store"]
        reg = self.lead["regression"]
        batch = int(reg.get("regressor", {}).get("batch_size", 32))
        return self._regression(wc, store, [(int(reg["steps"]), batch, self._count(store, "train"))])

    def _regress_scale(self, wc):
        store = self.lead["scale"]["store"]
        reg = {**self.lead["regression"], **self.lead["scale"].get("regression", {})}
        batch = int(reg.get("regressor", {}).get("batch_size", 32))
        return self._regression(wc, store, [(int(reg["steps"]), batch, self._count(store, "train"))])

    def _regress_fewshot(self, wc):
        store = self.lead["datasets"][wc["dataset"]]["store"]
        reg, fewshot = self.lead["regression"], self.lead["fewshot"]
        batch = int(reg.get("fewshot_regressor", {}).get("batch_size", 32))
        runs = [(int(reg["fewshot_steps"]), min(batch, c), c) for c in fewshot["counts"] for _ in fewshot["seeds"]]
        return self._regression(wc, store, runs)

    def _match_landmarks(self, wc):
        kind, dim, proj = self._source(wc)
        f = self.features(kind, dim, proj, self.crop)
        return JobCost(2 * int(self.lead["matching"]["pairs"]) * f.flops, f.fixed_bytes, 1, f.what)

    def _train_gan(self, wc, kimg):
        hsr = None if wc.get("hsr", "none") == "none" else wc["hsr"]
        p = self.gan(wc["plr"], wc["aug"], hsr, wc["hsr_levels"] if hsr else None)
        gpus = self._gpus("train_gan")
        batch = int(self.hsr["train"].get("batch", 16))
        return JobCost(kimg * 1000 * p.flops, p.fixed_bytes + batch / gpus * p.saved_bytes, gpus, p.what)

    def _train_gan_prefix(self, wc):     # the baseline's first hsr.start_kimg (the HSR runs start from it)
        return self._train_gan(wc, float(self.hsr["start_kimg"]))

    def _train_gan_baseline(self, wc):   # continues the prefix's trainer state to total_kimg
        return self._train_gan(wc, float(self.hsr["train"]["total_kimg"]) - float(self.hsr["start_kimg"]))

    def _train_gan_hsr(self, wc):
        return self._train_gan(wc, float(self.hsr["train"]["total_kimg"]) - float(self.hsr["start_kimg"]))

    def _gan_metrics(self, wc):
        m = self.hsr["metrics"]
        fid, pr, ppl = int(m["fid"]["num_gen"]), int(m["pr"]["num_gen"]), int(m["ppl"]["num_samples"])
        g = self.metric("G")
        flops = (fid + pr + 2 * ppl) * g.flops + fid * self.metric(m["fid"]["extractor"]).flops \
            + pr * self.metric(m["pr"]["extractor"]).flops + ppl * self.metric("lpips").flops  # any PPL distance:
        # LPIPS-VGG16 (NVlabs' TorchScript or the lpips package)
        return JobCost(flops, g.fixed_bytes, 1, "generated images (real-image features: cached per store, "
                                                  "not counted)")
