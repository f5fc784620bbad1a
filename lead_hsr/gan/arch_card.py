"""Parameter counts of the GAN and its HSR heads, from the networks themselves (no dataset, no weights)."""
from __future__ import annotations

import torch

from lead_hsr.gan.extractors import ExtractorSpec, extractor_feature_dims
from lead_hsr.gan.hsr import HEAD_HIDDEN, HSRSpec, build_hsr_heads
from lead_hsr.gan.networks import build_networks, count_parameters, get_preset


def architecture_card(preset, extractors: list[str], hsr: dict | None = None) -> dict:
    """{"G", "G_mapping", "G_synthesis", "D", "hsr_heads": {extractor: count}} as integers.

    Built on the meta device (no memory, no init cost). `hsr` may override HSRSpec fields and the extractor's
    `arch`/`input_size` (e.g. a demo's small heads); by default the paper's heads (all levels, 4096 hidden)."""
    hsr = dict(hsr or {})
    ext_kw = {k: hsr.pop(k) for k in ("arch", "input_size") if k in hsr}
    spec = HSRSpec(**dict(dict(head_hidden=HEAD_HIDDEN), **hsr))
    G, D = build_networks(get_preset(preset), device="meta")
    card = {"G": count_parameters(G), "G_mapping": count_parameters(G.mapping),
            "G_synthesis": count_parameters(G.synthesis), "D": count_parameters(D), "hsr_heads": {}}
    for name in extractors:
        ext = ExtractorSpec(name=name, weights="random", **ext_kw)
        with torch.device("meta"):
            heads = build_hsr_heads(spec, G.synthesis, extractor_feature_dims(ext), ext.input_size)
        card["hsr_heads"][name] = count_parameters(heads)
    return card
