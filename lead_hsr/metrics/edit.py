"""Edit a projected image along an attribute direction: Fig. 4.11's edit (thesis §4.3.3) started from a real image.

The direction is the one Fig. 4.11 uses (`als.attribute_direction`: the normal of a ridge fit of the attribute
classifier's logit on sampled w, seeded seed + 1 as in `als.edit_transition_rows`); the path is
w_t = w0 + t * strength * std * d for t = 0 .. 1, where w0 is the projection's w (`lead_hsr.gan.project`) and the
images are synthesised with the projection's optimised noise maps. It lives in metrics (it needs the attribute
classifier the ALS pipeline trains) and calls gan's projector outputs, keeping the import direction.

    python -m lead_hsr.metrics.edit --network NET.pt --classifier results/demo/hsr/attributes/classifier.pt \\
        --projection out/proj --attribute smile --outdir out/edit
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from lead_hsr.atomic import atomic_write_json
from lead_hsr.errors import command, InputError
from lead_hsr.metrics.als import EDIT_STRENGTH, attribute_column, attribute_direction, path_scores_and_images

EDIT_NUM_STEPS = 8  # images along an edit (t = 0, 1/N, ..., 1)
EDIT_DIRECTION_SAMPLES = 5000  # sampled w for the direction fit (config.yaml hsr.figures.edits.direction_samples)


def edit_rows(G, classifier, attributes, w0: torch.Tensor, noise: dict | None, label: str,
              strength: float = EDIT_STRENGTH, num_steps: int = EDIT_NUM_STEPS,
              direction_samples: int = EDIT_DIRECTION_SAMPLES, seed: int = 0, directions: dict | None = None
              ) -> list[dict]:
    """transition_figure rows: per attribute, w0 ([num_ws, w_dim]) edited along G's own attribute direction
    (`directions`: attribute -> (d, std) already fitted for G, else fitted here)."""
    from lead_hsr.gan.project import with_noise

    device = G.mapping.w_avg.device
    source_G = with_noise(G, noise) if noise else G
    directions = directions or attribute_directions(G, classifier, attributes, direction_samples, seed)
    rows = []
    for attribute in attributes:
        j = attribute_column(classifier, attribute)
        direction, std = directions[attribute]
        w0 = w0.to(device)
        t, logits, images = path_scores_and_images(source_G, classifier, w0, w0 + strength * std * direction,
                                                   num_steps)
        rows.append({"label": f"{label}: +{attribute} edit ({strength:g} std)", "t": t, "scores": logits[:, j],
                     "images": images, "attribute": attribute, "std": std})
    return rows


def attribute_directions(G, classifier, attributes, direction_samples: int, seed: int) -> dict:
    """attribute -> (d, std) of G, seeded seed + 1 as `als.edit_transition_rows` (Fig. 4.11's directions)."""
    device = G.mapping.w_avg.device
    return {attribute: attribute_direction(G, classifier, attribute, direction_samples, seed + 1, device)
            for attribute in attributes}


# ---- Fig. 4.11 on a folder of photos (hsr.figures.edits.source) ----
SOURCE_SETTING = "hsr.figures.edits.source"
PROJECTION_SETTING = "hsr.figures.edits.projection"
PROJECTION_EXTRA_KEYS = ("lpips", "standin", "seed")  # edits.projection keys beyond ProjectorSettings' fields


def projection_setup(options: dict, device, weights_cache=None):
    """(ProjectorSettings, LPIPS distance, seed) from `edits.projection` (projector.py's defaults where absent)."""
    import dataclasses

    from lead_hsr.gan.project import DEFAULT_LPIPS, DEFAULT_SEED, ProjectorSettings
    from lead_hsr.perceptual import make_lpips_distance

    given = dict(options.get("projection") or {})
    fields = {field.name for field in dataclasses.fields(ProjectorSettings)}
    unknown = set(given) - fields - set(PROJECTION_EXTRA_KEYS)
    if unknown:
        raise InputError(f"{PROJECTION_SETTING}: unknown keys {sorted(unknown)}; expected some of "
                         f"{sorted(fields | set(PROJECTION_EXTRA_KEYS))}")
    settings = ProjectorSettings(**{key: value for key, value in given.items() if key in fields})
    distance = make_lpips_distance(given.get("lpips", DEFAULT_LPIPS), weights_cache, given.get("standin"), device,
                                   setting=f"{PROJECTION_SETTING}.lpips")
    return settings, distance, int(given.get("seed", DEFAULT_SEED))


def photo_edit_rows(models: dict, classifier, photos, options: dict, device, weights_cache=None) -> list[dict]:
    """Fig. 4.11 from photos: per photo, per attribute, each model (label -> G) projects the photo into its own W
    (lead_hsr.gan.project, options `edits.projection`) and edits the projection along its own attribute direction
    (strength, num_steps, direction_samples, seed as the generated figure); an unreadable photo raises InputError
    naming it."""
    from lead_hsr.gan.project import load_target, project

    photos = [Path(photo) for photo in photos]
    targets = {(photo, G.resolution): load_target(photo, G.resolution, named_by=SOURCE_SETTING)
               for photo in photos for G in models.values()}  # every photo read before the long projections
    settings, distance, projection_seed = projection_setup(options, device, weights_cache)
    attributes, seed = options["attributes"], int(options.get("seed", 0))
    strength = float(options.get("strength", EDIT_STRENGTH))
    directions = {label: attribute_directions(G, classifier, attributes, int(options["direction_samples"]), seed)
                  for label, G in models.items()}
    rows = []
    for photo in photos:
        per_model = {}
        for label, G in models.items():
            projection = project(G, targets[photo, G.resolution], distance, settings, projection_seed,
                                 name=f"project {photo.name}")
            per_model[label] = edit_rows(G, classifier, attributes, projection.w[0], projection.noise,
                                         f"{label}, {photo.name}", strength, int(options["num_steps"]),
                                         seed=seed, directions=directions[label])
        rows += [row for attribute_rows in zip(*per_model.values()) for row in attribute_rows]
    return rows


def edit_projection(network, classifier_path, projection_dir, attributes, outdir, strength: float = EDIT_STRENGTH,
                    num_steps: int = EDIT_NUM_STEPS, direction_samples: int = EDIT_DIRECTION_SAMPLES,
                    seed: int = 0, device: str = "auto") -> list[Path]:
    """edit.png (scores along each edit + the images, Fig. 4.11's drawing), edit_<attribute>.png (the image
    strip) and edit.json (scores, t, direction std) under `outdir`."""
    from lead_hsr.gan.generate import save_png, tile
    from lead_hsr.gan.project import load_projection
    from lead_hsr.gan.training import load_generator
    from lead_hsr.metrics.attributes import load_attribute_classifier
    from lead_hsr.report.gan_figures import transition_figure
    from lead_hsr.train import pick_device

    device = pick_device(device)
    G = load_generator(network, device)
    classifier = load_attribute_classifier(classifier_path, device)
    w, noise = load_projection(projection_dir, G)
    rows = edit_rows(G, classifier, attributes, w[0], noise, Path(projection_dir).name, strength, num_steps,
                     direction_samples, seed)
    outdir = Path(outdir)
    written = [save_png(tile(row["images"][None]), outdir / f"edit_{row['attribute']}.png") for row in rows]
    written.append(transition_figure(rows, outdir / "edit.png"))
    written.append(atomic_write_json({
        "network": str(network), "classifier": str(classifier_path), "projection": str(projection_dir),
        "strength": strength, "num_steps": num_steps, "direction_samples": direction_samples, "seed": seed,
        "edits": {row["attribute"]: {"t": row["t"], "scores": row["scores"], "std": row["std"]} for row in rows}},
        outdir / "edit.json"))
    return written


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lead_hsr.metrics.edit", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Edit a projected image (a `python -m lead_hsr.gan.project` output directory) along the "
                    "attribute direction Fig. 4.11 uses; writes edit.png, edit_<attribute>.png and edit.json.",
        epilog=__doc__.split("\n\n")[-1])
    parser.add_argument("--network", required=True, help="the network.pt the projection was made with")
    parser.add_argument("--classifier", required=True, help="attribute classifier (train_attribute_classifiers)")
    parser.add_argument("--projection", required=True, help="projector output directory (projected_w.npz)")
    parser.add_argument("--attribute", action="append", required=True, help="attribute to add (repeatable)")
    parser.add_argument("--outdir", required=True)
    parser.add_argument("--strength", type=float, default=EDIT_STRENGTH, help="edit length in std of w along d")
    parser.add_argument("--num-steps", type=int, default=EDIT_NUM_STEPS)
    parser.add_argument("--direction-samples", type=int, default=EDIT_DIRECTION_SAMPLES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    written = edit_projection(args.network, args.classifier, args.projection, args.attribute, args.outdir,
                              args.strength, args.num_steps, args.direction_samples, args.seed, args.device)
    print(f"wrote {len(written)} files under {args.outdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
