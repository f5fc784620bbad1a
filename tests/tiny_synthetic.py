"""The smallest synthetic spec of every raw layout (lead_hsr.data.synthetic): a few images each, for tests that
need real files in every official layout."""

TINY_SPEC = {
    "celeba": {"counts": {"train": 4, "val": 1, "test": 2}},
    "mafl": {"counts": {"train": 2, "test": 1}},
    "aflw_m": {"counts": {"train": 2, "test": 1}},
    "aflw_r": {"counts": {"train": 2, "test": 1}},
    "w300": {"counts": {"train": 3, "test": 3}},
    "ffhq": {"counts": {"train": 2}, "image_size": 16},
    "lsun_church": {"counts": {"train": 3}, "image_size": 16},
    "animalface": {"counts": {"dog": 1, "cat": 1}, "image_size": 16},
    "cub": {"counts": {"train": 2}, "image_size": 24},
}
