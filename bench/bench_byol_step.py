"""Benchmark: our BYOL training step vs the `byol-pytorch` package's, same backbone, input size and batch.

Both steps include augmentation of a uint8 batch, forward of both views through online and target networks,
the symmetric loss, backward, an SGD step and the EMA target update. byol-pytorch runs with its defaults except
`use_simplicial_embeddings=False` (so both compute plain BYOL) and its default torchvision augmentations (which
draw one set of parameters per batch; ours draw per sample). Also timed: the model part alone (pre-made views).
Prints seconds per step and the ratio theirs/ours (goal >= 1.0).

    .venv/bin/python bench/bench_byol_step.py [--arch resnet18] [--image 88] [--crop 64] [--batch 64]
"""

from __future__ import annotations

import argparse
import time

import torch
import torchvision
from byol_pytorch import BYOL as PackageBYOL

from lead_hsr.lead.augment import AugmentConfig, byol_views
from lead_hsr.lead.backbones import build_backbone
from lead_hsr.lead.byol import BYOL, target_tau


def _time_interleaved(steps: dict, repeats: int) -> dict:
    """Best-of-`repeats` seconds per step, the variants alternating so load from other processes hits all."""
    for step in steps.values():
        step()  # warm-up
    best = {name: float("inf") for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def ours(args, images_u8):
    torch.manual_seed(0)
    model = BYOL(build_backbone(args.arch), args.proj_hidden, args.proj_dim)
    opt = torch.optim.SGD(model.online_parameters(), lr=0.03, momentum=0.9)
    cfg = AugmentConfig(crop=args.crop)
    gen = torch.Generator().manual_seed(0)
    fixed = byol_views(images_u8, cfg, gen)

    def step(views=None):
        loss = model(*(views or byol_views(images_u8, cfg, gen)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        model.update_target(target_tau(10, 100))

    return step, lambda: step(fixed)


def theirs(args, images_u8):
    torch.manual_seed(0)
    net = getattr(torchvision.models, args.arch)(weights=None)
    learner = PackageBYOL(net, image_size=args.crop, hidden_layer="avgpool", projection_size=args.proj_dim,
                          projection_hidden_size=args.proj_hidden, use_simplicial_embeddings=False)
    opt = torch.optim.SGD(learner.parameters(), lr=0.03, momentum=0.9)
    images = images_u8.permute(0, 3, 1, 2).float() / 255
    crop = torchvision.transforms.CenterCrop(args.crop)

    def step(x=images):
        loss = learner(x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        learner.update_moving_average()

    def model_only():  # identity augmentation on pre-cropped images
        learner.augment1 = learner.augment2 = torch.nn.Identity()
        step(crop(images))

    return step, model_only


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--image", type=int, default=88)
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--proj-hidden", type=int, default=4096)
    parser.add_argument("--proj-dim", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images_u8 = torch.randint(0, 256, (args.batch, args.image, args.image, 3), dtype=torch.uint8,
                              generator=torch.Generator().manual_seed(0))
    our_step, our_model = ours(args, images_u8)
    their_step, their_model = theirs(args, images_u8)
    best = _time_interleaved({"ours": our_step, "theirs": their_step}, args.repeats)
    t_ours, t_theirs = best["ours"], best["theirs"]
    best = _time_interleaved({"ours": our_model, "theirs": their_model}, args.repeats)
    m_ours, m_theirs = best["ours"], best["theirs"]
    print(f"{args.arch}, {args.image}px -> {args.crop}px crops, batch {args.batch}, threads {args.threads}")
    print(f"full step  : ours {t_ours:.3f} s  byol-pytorch {t_theirs:.3f} s  ratio theirs/ours {t_theirs / t_ours:.2f}"
          f"  ({args.batch / t_ours:.0f} vs {args.batch / t_theirs:.0f} images/s)")
    print(f"model only : ours {m_ours:.3f} s  byol-pytorch {m_theirs:.3f} s  ratio theirs/ours {m_theirs / m_ours:.2f}")


if __name__ == "__main__":
    main()
