"""Synthetic stand-ins for every raw dataset, written in each real dataset's official on-disk layout.

`write_dataset(name, root, counts, seed, image_size)` renders one dataset into `root` (atomically) and returns
the counts written per split; `write_all(spec)` does all of them, CelebA before MAFL (whose lists are CelebA
file names). Same seed -> same bytes. The face renderer is `lead_hsr.data.synthetic.face`.

Dataset names and their `counts` keys:
  celeba: train/val/test (list_eval_partition 0/1/2)   mafl: train/test (disjoint, both from CelebA partition 0)
  aflw_m, aflw_r, w300 (alias 300w): train/test        ffhq, lsun_church: train
  animalface: dog/cat                                   cub: train/test
`image_size` is null for the landmark datasets (their geometry is part of the protocol) and sets the size of
the GAN datasets (ffhq: side; lsun_church: short side; animalface: side; cub: width).
"""

from __future__ import annotations

from pathlib import Path

from lead_hsr.data.synthetic.aflw import write_aflw_m, write_aflw_r
from lead_hsr.data.synthetic.celeba import write_celeba, write_mafl
from lead_hsr.data.synthetic.gan_sets import write_animalface, write_cub, write_ffhq, write_lsun_church
from lead_hsr.data.synthetic.w300 import write_w300
from lead_hsr.errors import InputError

WRITERS = {
    "celeba": write_celeba,
    "aflw_m": write_aflw_m,
    "aflw_r": write_aflw_r,
    "w300": write_w300,
    "ffhq": write_ffhq,
    "lsun_church": write_lsun_church,
    "animalface": write_animalface,
    "cub": write_cub,
}
ALIASES = {"300w": "w300"}
DATASET_NAMES = ("celeba", "mafl", *[name for name in WRITERS if name != "celeba"])  # write order: celeba first


def write_dataset(name: str, root: Path, counts: dict, seed: int, image_size: int | None = None,
                  celeba_root: Path | None = None) -> dict[str, int]:
    """Write synthetic dataset `name` in its official raw layout under `root`; returns the counts written.

    `celeba_root` is needed for 'mafl' only: the root of an already written synthetic CelebA."""
    name = ALIASES.get(name, name)
    if name == "mafl":
        if celeba_root is None:
            raise InputError("synthetic dataset 'mafl' lists CelebA files: pass celeba_root (the synthetic CelebA "
                             "root), or use write_all with both 'celeba' and 'mafl' in the spec.")
        return write_mafl(Path(root), counts, seed, Path(celeba_root), image_size)
    if name not in WRITERS:
        raise InputError(f"unknown synthetic dataset {name!r}; expected one of {list(DATASET_NAMES)}. "
                         f"Fix the dataset names under the synthetic data config.")
    return WRITERS[name](Path(root), counts, seed, image_size)


def write_all(spec: dict) -> dict[str, dict[str, int]]:
    """spec: name -> {root, counts, seed, image_size (optional), celeba_root (optional, mafl)}.

    Returns name -> counts written. MAFL takes the CelebA root from the spec unless given explicitly."""
    spec = {ALIASES.get(name, name): dict(entry) for name, entry in spec.items()}
    unknown = sorted(set(spec) - set(DATASET_NAMES))
    if unknown:
        raise InputError(f"unknown synthetic datasets {unknown}; expected names among {list(DATASET_NAMES)}.")
    if "mafl" in spec and "celeba_root" not in spec["mafl"] and "celeba" in spec:
        spec["mafl"]["celeba_root"] = spec["celeba"]["root"]
    written = {}
    for name in DATASET_NAMES:
        if name in spec:
            entry = spec[name]
            missing = sorted({"root", "counts", "seed"} - set(entry))
            if missing:
                raise InputError(f"synthetic dataset {name!r}: missing keys {missing}; expected root, counts, seed "
                                 f"(and optionally image_size).")
            written[name] = write_dataset(name, entry["root"], entry["counts"], entry["seed"],
                                          entry.get("image_size"), entry.get("celeba_root"))
    return written
