"""Evaluate one trained GAN run: FID, precision/recall and PPL in one metric JSON; ALS in its own.

The workflow's `gan_metrics` / `gan_als` rules call these; the numbers land in the JSONs the table aggregation
reads (config/tables.yaml metric names). Every stand-in used (random extractors, a random LPIPS trunk) is
recorded in the JSON and summarised in its `note`, which the tables print as a footnote.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lead_hsr.data.store import open_store
from lead_hsr.gan.training import load_generator
from lead_hsr.metrics.als import als_for_generator
from lead_hsr.metrics.attributes import load_attribute_classifier
from lead_hsr.metrics.features import make_extractor
from lead_hsr.metrics.fid import fid_for_generator
from lead_hsr.metrics.ppl import LPIPSDistance, ppl2_wend
from lead_hsr.metrics.precision_recall import pr_for_generator
from lead_hsr.train import atomic_write_json, pick_device


def _standins(*records: dict) -> list[str]:
    return sorted({f"{r.get('extractor', r.get('distance', r.get('weight', '?')))}={r['source']}"
                   for r in records if str(r.get("source", "")).startswith("standin")})


def evaluate_gan(network: Path, real_store: Path, out_json: Path, options: dict, cache_dir: Path,
                 weights_cache: Path) -> dict:
    """FID (`options.fid`), precision/recall (`options.pr`), PPL (`options.ppl`) of a run's G_ema.

    The real set is the store's full image set without x-flips (DESIGN §7); real features are cached per store
    and extractor under `cache_dir`.
    """
    device = pick_device(options.get("device", "auto"))
    G = load_generator(network, device)
    store = open_store(real_store)
    real, key, source = store.images, Path(real_store).name, store.manifest.get("sources_sha256")
    seed = int(options.get("seed", 0))
    fid_opts, pr_opts, ppl_opts = options["fid"], options["pr"], options["ppl"]

    fid_extractor = make_extractor(fid_opts["extractor"], weights_cache, fid_opts.get("standin"), device, seed)
    fid = fid_for_generator(G, real, key, fid_extractor, cache_dir, num_gen=fid_opts["num_gen"], seed=seed,
                            device=device, source_id=source)
    pr_extractor = make_extractor(pr_opts["extractor"], weights_cache, pr_opts.get("standin"), device, seed)
    pr = pr_for_generator(G, real, key, pr_extractor, cache_dir, num_gen=pr_opts["num_gen"],
                          max_real=pr_opts["max_real"], seed=seed, device=device, source_id=source)
    distance = LPIPSDistance(weights_cache, ppl_opts.get("standin"), device, seed)
    ppl = ppl2_wend(G, distance, num_samples=ppl_opts["num_samples"], seed=seed, device=device)

    standins = _standins(fid, pr, distance.record)
    result = {"fid": fid["fid"], "precision": pr["precision"], "recall": pr["recall"], "ppl": ppl.ppl,
              "records": {"fid": fid, "precision_recall": pr, "ppl": ppl.record},
              "note": ("stand-ins: " + ", ".join(standins)) if standins else ""}
    atomic_write_json(result, out_json)
    np.save(Path(out_json).with_name("ppl_distances.npy"), ppl.distances)
    return result


ALS_ATTRIBUTE_KEYS = ("gender", "smile", "age", "hair", "bangs", "beard")


def evaluate_als(network: Path, classifier: Path, out_json: Path, options: dict) -> dict:
    """ALS per attribute and their mean (thesis Eq. 4.3-4.5), plus the mean-deviation-vs-t curve."""
    device = pick_device(options.get("device", "auto"))
    G = load_generator(network, device)
    model = load_attribute_classifier(classifier, device)
    standardise = bool(options.get("standardise", False))
    res = als_for_generator(G, model, num_pairs=options["num_pairs"], num_steps=options["num_steps"],
                            seed=int(options.get("seed", 0)), device=device, standardise=standardise)
    result = {f"als_{name}": float(res.per_attribute[name]) for name in ALS_ATTRIBUTE_KEYS}
    result.update(als_mean=float(res.als), t=list(map(float, res.t)), curve=list(map(float, res.curve)),
                  record=res.record,
                  note=f"ALS on {'standardised' if standardise else 'raw'} attribute logits")
    atomic_write_json(result, out_json)
    return result
