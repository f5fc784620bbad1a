"""Attribute Linearity Score (thesis §4.3.3, Eq. 4.3-4.5).

For a pair (w0, w1) and t in {0, 1/N, ..., 1}: w_t = w0 + t (w1 - w0) (Eq. 4.3); the attribute logits
C_j(G(w_t)) should lie on the straight line between the endpoint logits (Eq. 4.4); the squared deviation
Delta_tj (Eq. 4.5) is averaged over pairs, and ALS = 1/(N M) sum_{k=1..N} sum_j Delta_{k/N, j}. (The t = 0 and
t = 1 deviations are zero by construction; the sum runs over k = 1..N as in the thesis.)

Option `standardise=True` (the official code's choice, DESIGN §7) z-scores each attribute's logits over all
evaluated images before the deviation, so attributes with large logit ranges do not dominate. Tables must say
which variant they report; the result's `record` carries it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lead_hsr.errors import InputError


ALS_NUM_STEPS = 10  # N: t in {0, 1/N, ..., 1}; the thesis does not state N (a config value)
ALS_NUM_PAIRS = 1_000  # number of (w0, w1) pairs; the thesis does not state it (a config value)


@dataclass
class ALSResult:
    als: float  # mean over attributes (Delta_T)
    per_attribute: dict[str, float]
    t: np.ndarray  # [N + 1]
    curve: np.ndarray  # [N + 1] mean deviation over pairs and attributes at each t (Fig. 4.10 right)
    curve_per_attribute: dict[str, np.ndarray]  # attribute -> [N + 1] mean deviation over pairs
    record: dict
    per_pair: np.ndarray | None = None  # [pairs, attributes]: each pair's score; per_attribute is their mean


def standardise_logits(logits: np.ndarray) -> np.ndarray:
    """Z-score each attribute (last axis) over every other axis (all pairs and all t)."""
    flat = logits.reshape(-1, logits.shape[-1])
    std = flat.std(axis=0)
    return (logits - flat.mean(axis=0)) / np.where(std > 0, std, 1.0)


def als_from_logits(logits: np.ndarray, attribute_names=None, standardise: bool = False) -> ALSResult:
    """ALS from logits [pairs, N + 1, attributes] taken along t = 0, 1/N, ..., 1."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 3 or logits.shape[1] < 2:
        raise ValueError(f"logits must be [pairs, N + 1 >= 2, attributes], got {logits.shape}")
    if standardise:
        logits = standardise_logits(logits)
    steps = logits.shape[1] - 1
    t = np.linspace(0.0, 1.0, steps + 1)
    start, end = logits[:, :1], logits[:, -1:]
    line = start + t[None, :, None] * (end - start)  # Eq. 4.4
    squared = np.square(logits - line)  # Eq. 4.5 per pair: [pairs, N + 1, M]
    delta = squared.mean(axis=0)  # averaged over pairs: [N + 1, M]
    per_pair = squared[:, 1:].sum(axis=1) / steps  # sum over k = 1..N, / N: [pairs, M]
    per_attribute = per_pair.mean(axis=0)
    names = list(attribute_names) if attribute_names is not None else [str(j) for j in range(logits.shape[2])]
    record = {"metric": "als", "standardised": standardise, "num_pairs": logits.shape[0], "num_steps": steps}
    return ALSResult(float(per_attribute.mean()), dict(zip(names, per_attribute.tolist())), t,
                     delta.mean(axis=1), {name: delta[:, j] for j, name in enumerate(names)}, record, per_pair)


def als_sample_set(seed: int, num_pairs: int) -> str:
    """The interpolation pairs of an ALS run (z seed, count): runs with the same seed share them."""
    return f"ALS interpolation pairs (z seed {seed}, n={num_pairs})"


def interpolation_latents(G, num_pairs: int, seed: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded endpoint pairs w0, w1 = G.mapping(z) with z ~ N(0, I), no truncation."""
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn([2 * num_pairs, G.z_dim], generator=generator).to(device)
    ws = G.mapping(z, torch.zeros([2 * num_pairs, getattr(G, "c_dim", 0)], device=device))
    return ws[:num_pairs], ws[num_pairs:]


@torch.no_grad()
def interpolation_logits(G, classifier, num_pairs: int = ALS_NUM_PAIRS, num_steps: int = ALS_NUM_STEPS,
                         seed: int = 0, batch_size: int = 32, device="cpu") -> np.ndarray:
    """Classifier logits [pairs, N + 1, attributes] along W(+) lines (Eq. 4.3), constant noise throughout.

    Images are made batch by batch over the flattened (pair, t) grid, so memory does not grow with pairs x N.
    """
    w0, w1 = interpolation_latents(G, num_pairs, seed, device)
    t = torch.linspace(0, 1, num_steps + 1, device=device)
    flat_index = torch.arange(num_pairs * (num_steps + 1), device=device)
    logits = []
    for chunk in flat_index.split(batch_size):
        pair, step = chunk // (num_steps + 1), chunk % (num_steps + 1)
        ws = torch.lerp(w0[pair], w1[pair], t[step][:, None, None])  # Eq. 4.3 on every w of W+
        logits.append(classifier(G.synthesis(ws, noise_mode="const")).float().cpu())
    return torch.cat(logits).reshape(num_pairs, num_steps + 1, -1).numpy()


def als_for_generator(G, classifier, num_pairs: int = ALS_NUM_PAIRS, num_steps: int = ALS_NUM_STEPS,
                      seed: int = 0, batch_size: int = 32, device="cpu", standardise: bool = False) -> ALSResult:
    logits = interpolation_logits(G, classifier, num_pairs, num_steps, seed, batch_size, device)
    names = getattr(classifier, "attributes", None)
    result = als_from_logits(logits, names, standardise)
    result.record.update(seed=seed, space="w", noise_mode="const")
    return result


# ---- figures: attribute transitions along W lines (thesis Fig. 4.1 bottom, 4.9, 4.11) ----
EDIT_STRENGTH = 3.0  # Fig. 4.11 edits: w1 = w0 + strength * (std of the sampled w along d) * d


def attribute_column(classifier, attribute: str) -> int:
    names = list(getattr(classifier, "attributes", []))
    if attribute not in names:
        raise InputError(f"attribute {attribute!r} is not one of the classifier's {names} (fix hsr.figures)")
    return names.index(attribute)


@torch.no_grad()
def path_scores_and_images(G, classifier, w0: torch.Tensor, w1: torch.Tensor, num_steps: int):
    """Along w_t = lerp(w0, w1, t) (Eq. 4.3; w0, w1: [num_ws, w_dim]) for t = 0, 1/N, ..., 1 with constant noise:
    (t [N + 1], logits [N + 1, attributes], uint8 images [N + 1, H, W, 3])."""
    from lead_hsr.metrics.ppl import nhwc_uint8

    t = torch.linspace(0, 1, num_steps + 1, device=w0.device)
    images = G.synthesis(torch.lerp(w0[None], w1[None], t[:, None, None]), noise_mode="const")
    return t.cpu().numpy(), classifier(images).float().cpu().numpy(), nhwc_uint8(images)


@torch.no_grad()
def endpoint_logits(G, classifier, w: torch.Tensor, batch_size: int = 32) -> np.ndarray:
    """Classifier logits [N, attributes] of G(w) for ws [N, num_ws, w_dim], constant noise."""
    return torch.cat([classifier(G.synthesis(chunk, noise_mode="const")).float().cpu()
                      for chunk in w.split(batch_size)]).numpy()


def select_transition_pair(endpoint_changes: np.ndarray) -> int:
    """The candidate pair whose attribute changes most between its endpoints, summed over the models compared:
    endpoint_changes [models, candidates] = |C(G(w1)) - C(G(w0))|."""
    return int(np.argmax(np.abs(np.asarray(endpoint_changes)).sum(axis=0)))


def interpolation_transition_rows(models: dict, classifier, attributes, num_steps: int, candidates: int,
                                  seed: int, device) -> list[dict]:
    """Fig. 4.9 rows: per attribute, the ALS pair (interpolation_latents(seed)) among the first `candidates`
    with the largest endpoint change, drawn for every model (label -> G) with its scores s_t."""
    pairs = {label: interpolation_latents(G, candidates, seed, device) for label, G in models.items()}
    ends = {label: (endpoint_logits(G, classifier, pairs[label][0]), endpoint_logits(G, classifier, pairs[label][1]))
            for label, G in models.items()}
    rows = []
    for attribute in attributes:
        j = attribute_column(classifier, attribute)
        pick = select_transition_pair(np.stack([e1[:, j] - e0[:, j] for e0, e1 in ends.values()]))
        for label, G in models.items():
            t, logits, images = path_scores_and_images(G, classifier, pairs[label][0][pick], pairs[label][1][pick],
                                                       num_steps)
            rows.append({"label": f"{label}: {attribute} (pair {pick})", "t": t, "scores": logits[:, j],
                         "images": images})
    return rows


@torch.no_grad()
def attribute_direction(G, classifier, attribute: str, num_samples: int, seed: int, device,
                        ridge: float = 1e-3) -> tuple[torch.Tensor, float]:
    """A linear attribute direction in W (after InterFaceGAN [93]: the normal of a linear boundary fitted to
    classifier scores of sampled w): unit d of the ridge least-squares fit logit ~ w, and the std of the
    sampled w along d. Returns (d [w_dim], std)."""
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn([num_samples, G.z_dim], generator=generator).to(device)
    ws = G.mapping(z, torch.zeros([num_samples, getattr(G, "c_dim", 0)], device=device))
    scores = endpoint_logits(G, classifier, ws)[:, attribute_column(classifier, attribute)]
    w = ws[:, 0].double().cpu()
    w = w - w.mean(0)
    s = torch.from_numpy(scores).double()
    s = s - s.mean()
    gram = w.T @ w / num_samples
    normal = torch.linalg.solve(gram + ridge * gram.trace() / len(gram) * torch.eye(len(gram), dtype=w.dtype),
                                w.T @ s / num_samples)
    direction = normal / normal.norm().clamp(min=1e-12)
    return direction.float().to(device), float((w @ direction).std())


def edit_transition_rows(models: dict, classifier, attributes, num_steps: int, candidates: int,
                         direction_samples: int, strength: float, seed: int, device) -> list[dict]:
    """Fig. 4.11 rows: per attribute, a source z (the candidate with the lowest mean score over the models) edited
    along each model's own attribute direction, w1 = w0 + strength * std * d, and the path w0 -> w1 drawn."""
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn([candidates, next(iter(models.values())).z_dim], generator=generator).to(device)
    ws = {label: G.mapping(z, torch.zeros([candidates, getattr(G, "c_dim", 0)], device=device))
          for label, G in models.items()}
    logits = {label: endpoint_logits(G, classifier, ws[label]) for label, G in models.items()}
    rows = []
    for attribute in attributes:
        j = attribute_column(classifier, attribute)
        pick = int(np.argmin(np.mean([logit[:, j] for logit in logits.values()], axis=0)))
        for label, G in models.items():
            direction, std = attribute_direction(G, classifier, attribute, direction_samples, seed + 1, device)
            w0 = ws[label][pick]
            t, path_logits, images = path_scores_and_images(G, classifier, w0, w0 + strength * std * direction,
                                                            num_steps)
            rows.append({"label": f"{label}: +{attribute} edit ({strength:g} std)", "t": t,
                         "scores": path_logits[:, j], "images": images})
    return rows
