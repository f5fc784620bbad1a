"""Evaluate one trained GAN run: FID, precision/recall and PPL in one metric JSON; ALS in its own.

The workflow's `gan_metrics` / `gan_als` rules call these; the numbers land in the JSONs the table aggregation
reads (config/tables.yaml metric names). Every stand-in used (random extractors, a random LPIPS trunk) is
recorded in the JSON and summarised in its `note`, which the tables print as a footnote. `networks` names the
metric networks that computed each number (NVlabs' TorchScript files or the torch-fidelity / lpips ones).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lead_hsr.atomic import atomic_save_npy
from lead_hsr.data.store import open_store
from lead_hsr.gan.training import generator_of, load_generator, load_snapshot, precision_record
from lead_hsr.metrics.als import als_for_generator, als_sample_set
from lead_hsr.metrics.attributes import load_attribute_classifier
from lead_hsr.metrics.features import make_extractor
from lead_hsr.metrics.fid import fid_for_generator
from lead_hsr.metrics.ppl import make_ppl_distance, ppl2_wend
from lead_hsr.metrics.precision_recall import pr_for_generator
from lead_hsr.report.samples import ratio_entry, write_samples
from lead_hsr.train import atomic_write_json, pick_device


PPL_DISTANCES_FILE = "ppl_distances.npy"  # per-sample PPL distances beside the metrics JSON (thesis Fig. 4.5)


def _standins(*records: dict) -> list[str]:
    return sorted({f"{r.get('extractor', r.get('distance', r.get('weight', '?')))}={r['source']}"
                   for r in records if str(r.get("source", "")).startswith("standin")})


def evaluate_gan(network: Path, real_store: Path, out_json: Path, options: dict, cache_dir: Path,
                 weights_cache: Path) -> dict:
    """FID (`options.fid`), precision/recall (`options.pr`), PPL (`options.ppl`) of a run's G_ema, and their
    per-sample values beside the JSON (lead_hsr.report.samples; FID's bootstrap replicates with
    `options.fid.bootstrap`).

    The real set is the store's full image set without x-flips (DESIGN §7); real features are cached per store
    and extractor under `cache_dir`.
    """
    device = pick_device(options.get("device", "auto"))
    snapshot = load_snapshot(network)
    G = generator_of(snapshot, device)
    store = open_store(real_store)
    real, key, source = store.images, Path(real_store).name, store.manifest.get("sources_sha256")
    seed = int(options.get("seed", 0))
    fid_opts, pr_opts, ppl_opts = options["fid"], options["pr"], options["ppl"]

    fid_extractor = make_extractor(fid_opts["extractor"], weights_cache, fid_opts.get("standin"), device, seed)
    fid = fid_for_generator(G, real, key, fid_extractor, cache_dir, num_gen=fid_opts["num_gen"], seed=seed,
                            device=device, source_id=source, bootstrap=bool(fid_opts.get("bootstrap", False)))
    pr_extractor = make_extractor(pr_opts["extractor"], weights_cache, pr_opts.get("standin"), device, seed)
    pr = pr_for_generator(G, real, key, pr_extractor, cache_dir, num_gen=pr_opts["num_gen"],
                          max_real=pr_opts["max_real"], seed=seed, device=device, source_id=source)
    distance = make_ppl_distance(ppl_opts.get("distance"), weights_cache, ppl_opts.get("standin"), device, seed)
    ppl = ppl2_wend(G, distance, num_samples=ppl_opts["num_samples"], seed=seed, device=device)

    # FID's bootstrap replicates only where an ordering compares this run's FID (`options.fid.bootstrap`, set by
    # the workflow): ~2 CPU-s per demo run, B D x D eigenvalue problems at paper scale
    replicates = {"fid": fid.pop("replicates")} if "replicates" in fid else {}
    samples = {**replicates, **pr.pop("samples"),
               "ppl": ratio_entry(np.where(ppl.kept, ppl.distances, 0.0), ppl.kept,  # 1st-99th filter kept
                                  f"PPL paths (seed {seed}, n={len(ppl.distances)})")}
    standins = _standins(fid, pr, distance.record)
    result = {"fid": fid["fid"], "precision": pr["precision"], "recall": pr["recall"], "ppl": ppl.ppl,
              "records": {"fid": fid, "precision_recall": pr, "ppl": ppl.record},
              "networks": {"fid": fid_extractor.record.get("network", fid_extractor.name),
                           "precision_recall": pr_extractor.record.get("network", pr_extractor.name),
                           "ppl": distance.record.get("network", distance.record["distance"])},
              "numerics": precision_record(snapshot),     # training / evaluation precision ("precision" is P/R)
              "note": ("stand-ins: " + ", ".join(standins)) if standins else ""}
    atomic_save_npy(ppl.distances, Path(out_json).with_name(PPL_DISTANCES_FILE))  # before the JSON: a JSON
    write_samples(out_json, samples)                                             # implies its distances and
    atomic_write_json(result, out_json)                                          # samples exist
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
    pairs = als_sample_set(int(options.get("seed", 0)), options["num_pairs"])
    columns = {name: j for j, name in enumerate(res.per_attribute)}
    ones = np.ones(len(res.per_pair))
    samples = {f"als_{name}": ratio_entry(res.per_pair[:, columns[name]], ones, pairs) for name in ALS_ATTRIBUTE_KEYS}
    samples["als_mean"] = ratio_entry(res.per_pair.mean(axis=1), ones, pairs)
    result.update(als_mean=float(res.als), t=list(map(float, res.t)), curve=list(map(float, res.curve)),
                  record=res.record,
                  note=f"ALS on {'standardised' if standardise else 'raw'} attribute logits")
    write_samples(out_json, samples)  # before the JSON: a JSON implies its samples exist
    atomic_write_json(result, out_json)
    return result


# ---- figures of trained runs that belong to no single metric (thesis Fig. 4.1, 4.3, 4.8) ----
def intermediate_rgbs(G, z, device="cpu") -> dict[int, np.ndarray]:
    """Resolution -> uint8 [N, r, r, 3]: the running 'skip' RGB image after each synthesis block (the sum of the
    upsampled ToRGB outputs so far; the last one is the generated image), constant noise."""
    import torch

    from lead_hsr.metrics.ppl import nhwc_uint8

    with torch.no_grad():
        z = torch.as_tensor(np.asarray(z), dtype=torch.float32, device=device)
        ws = G.mapping(z, torch.zeros([len(z), getattr(G, "c_dim", 0)], device=device))
        _, _, rgbs = G.synthesis(ws, noise_mode="const", return_features=True)
    return {int(r): nhwc_uint8(rgb) for r, rgb in sorted(rgbs.items())}


def intermediate_rgb_figure(networks: dict, out_png, options: dict):
    """Thesis Fig. 4.8: per run (label -> network.pt), `samples` seeded z with the running RGB image at every
    generator resolution (same z for every run)."""
    import torch

    from lead_hsr.report.gan_figures import strip_figure

    device = pick_device(options.get("device", "auto"))
    sections = []
    for label, network in networks.items():
        G = load_generator(network, device)
        z = torch.randn([int(options["samples"]), G.z_dim], generator=torch.Generator().manual_seed(
            int(options.get("seed", 0))))
        rgbs = intermediate_rgbs(G, z, device)
        titles = [f"{r}x{r}" for r in rgbs]
        rows = [(f"z #{i}", [rgbs[r][i] for r in rgbs], titles) for i in range(len(z))]
        sections.append((f"{label}: intermediate RGB (ToRGB skip sum) per resolution", rows))
    return strip_figure(sections, out_png, caption_lines=1)


def hsr_overview(options: dict) -> dict:
    """The HSR architecture of a run's resolved training options (its options.json), built on the meta device:
    generator block resolutions and channels, the active heads' shapes, the extractor's taps and widths."""
    import torch

    from lead_hsr.gan.extractors import RESNET_STAGES, FeatureExtractor, _create
    from lead_hsr.gan.hsr import LEVEL_GROUPS, PATCH_SIZE, HSRSpec, build_hsr_heads
    from lead_hsr.gan.networks import build_networks
    from lead_hsr.gan.training import HSR_KEYS, _extractor_spec

    if not options.get("hsr"):
        raise ValueError("hsr_overview: the run's options have no 'hsr' settings (give an HSR run's options.json)")
    hsr = options["hsr"]
    spec = HSRSpec(**{k: v for k, v in hsr.items() if k in HSR_KEYS})
    ext_spec = _extractor_spec(hsr)
    G, _ = build_networks(options["preset"], device="meta")
    with torch.device("meta"):
        extractor = FeatureExtractor(ext_spec, model=_create(ext_spec))
        heads = build_hsr_heads(spec, G.synthesis, extractor.feature_dims(), ext_spec.input_size)
    dims = extractor.feature_dims()
    taps = ([f"block {b}" for b in ext_spec.vit_blocks] if ext_spec.kind == "vit"
            else [f"layer{s}" for s in RESNET_STAGES])
    head_rows = [{"resolution": r, "level": level + 1, "in": head.hidden.weight.shape[1],
                  "hidden": head.hidden.weight.shape[0], "out": head.out.weight.shape[0],
                  "activation": spec.head_activation}
                 for r, level, head in zip(heads.level_res, LEVEL_GROUPS[spec.levels], heads.heads)]
    record = options.get("extractor_record") or {}
    return {"generator": [{"resolution": r, "channels": G.synthesis.channels[r]} for r in G.synthesis.resolutions],
            "heads": head_rows, "grid": ext_spec.input_size // PATCH_SIZE,
            "image_resolution": max(G.synthesis.resolutions),
            "extractor": {"name": ext_spec.name, "arch": ext_spec.timm_name, "input_size": ext_spec.input_size,
                          "normalize": ext_spec.normalize,
                          "weights": record.get("source", ext_spec.weights),
                          "levels": [{"level": i + 1, "tap": tap, "dim": dim}
                                     for i, (tap, dim) in enumerate(zip(taps, dims))]},
            "title": f"levels '{spec.levels}' at G resolutions {spec.resolutions(max(G.synthesis.resolutions))}, "
                     f"loss weight {spec.weight:g}, heads {sum(p.numel() for p in heads.parameters()):,} parameters"}


def hsr_overview_figure(options_json: Path, out_png: Path):
    """Thesis Fig. 4.3 drawn from an HSR run's options.json (see hsr_overview)."""
    import json

    from lead_hsr.report.gan_figures import hsr_overview_figure as draw

    return draw(hsr_overview(json.loads(Path(options_json).read_text())), out_png)


def hsr_panel_figure(ppl_runs: dict, als_networks: dict, classifier: Path, out_png: Path, options: dict):
    """Thesis Fig. 4.1: top, W interpolations of each run's bottom-10%-ile PPL pairs (ppl.ppl_band_sections);
    bottom, attribute-edit transitions of each run (als.edit_transition_rows) with the scores under the images.

    options: `interpolation` (Fig. 4.5 options, `pairs` per run) and `edits` (Fig. 4.11 options)."""
    from lead_hsr.metrics.als import EDIT_STRENGTH, edit_transition_rows
    from lead_hsr.metrics.ppl import ppl_band_sections
    from lead_hsr.report.gan_figures import strip_figure

    sections = ppl_band_sections(ppl_runs, "bottom", options["interpolation"])
    edits = options["edits"]
    device = pick_device(edits.get("device", "auto"))
    model = load_attribute_classifier(classifier, device)
    models = {label: load_generator(path, device) for label, path in als_networks.items()}
    rows = edit_transition_rows(models, model, edits["attributes"], int(edits["num_steps"]),
                                int(edits["candidates"]), int(edits["direction_samples"]),
                                float(edits.get("strength", EDIT_STRENGTH)), int(edits.get("seed", 0)), device)
    sections.append(("Attribute-edit transitions (score under each image)",
                     [(row["label"].replace(": ", "\n"), row["images"], [f"{s:+.2f}" for s in row["scores"]])
                      for row in rows]))
    return strip_figure(sections, out_png, caption_lines=1)


def runs_by_label(named: dict, labels: dict, keys, prefix: str = "") -> dict:
    """{label: {key: named[f"{prefix}{side}_{key}"]}} for each side ("baseline", "hsr") of `labels` (side ->
    label), in its order: how the figure rules name the files of a baseline / HSR pair."""
    return {label: {key: str(named[f"{prefix}{side}_{key}"]) for key in keys} for side, label in labels.items()}
