"""Thesis Figs. 4.9 and 4.11: attribute scores along W interpolations (ALS pairs, `lead_hsr.metrics.als`) or along
attribute edits of sampled latents or of projected photos (`lead_hsr.metrics.edit`), with the images, baseline vs HSR.
Its own module because it joins both: `edit` builds on `als`, and `als` stays free of the projector."""
from __future__ import annotations

from lead_hsr.data.layouts import GENERATED_SOURCE
from lead_hsr.errors import InputError
from lead_hsr.gan.training import load_generator
from lead_hsr.metrics.als import EDIT_STRENGTH, edit_transition_rows, interpolation_transition_rows
from lead_hsr.metrics.attributes import load_attribute_classifier
from lead_hsr.metrics.edit import SOURCE_SETTING, photo_edit_rows
from lead_hsr.report.gan_figures import transition_figure
from lead_hsr.train import pick_device


def linearity_figure(networks: dict, classifier_path, out_png, options: dict, mode: str = "interpolation",
                     photos=(), weights_cache=None):
    """Thesis Fig. 4.9 (mode "interpolation": ALS pairs) / 4.11 (mode "edit": attribute edits): transition images
    G(w_t) of each run with the attribute classifier's scores s_t against t and the ideal straight line.
    Fig. 4.11 edits sampled latents (options `source: generated`) or, given `photos` (the files of the `source`
    folder), each photo's projection (lead_hsr.metrics.edit.photo_edit_rows)."""
    device = pick_device(options.get("device", "auto"))
    classifier = load_attribute_classifier(classifier_path, device)
    models = {label: load_generator(path, device) for label, path in networks.items()}
    seed, steps, candidates = int(options.get("seed", 0)), int(options["num_steps"]), int(options["candidates"])
    if mode == "interpolation":
        rows = interpolation_transition_rows(models, classifier, options["attributes"], steps, candidates, seed,
                                             device)
    elif mode == "edit" and options.get("source", GENERATED_SOURCE) != GENERATED_SOURCE:
        if not photos:
            raise InputError(f"{SOURCE_SETTING} is {options['source']!r} but no photos were given; the figure rule "
                             "passes the folder's image files")
        rows = photo_edit_rows(models, classifier, photos, options, device, weights_cache)
    elif mode == "edit":
        rows = edit_transition_rows(models, classifier, options["attributes"], steps, candidates,
                                    int(options["direction_samples"]), float(options.get("strength", EDIT_STRENGTH)),
                                    seed, device)
    else:
        raise ValueError(f"linearity figure mode {mode!r}: expected 'interpolation' or 'edit'")
    return transition_figure(rows, out_png)
