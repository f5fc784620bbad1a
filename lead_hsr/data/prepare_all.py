"""One entry point over every preparer (landmark datasets and GAN datasets) for the workflow."""
from pathlib import Path

from lead_hsr.errors import InputError


def preparers() -> dict:
    from lead_hsr.data.prepare import PREPARERS
    from lead_hsr.data.prepare_gan import PREPARERS_GAN

    return {**PREPARERS, **PREPARERS_GAN}


def prepare(name: str, raw_roots: dict, out: Path, geometry: dict, expected_counts=None, options=None,
            skip_corrupt=False, seed=0):
    """Run preparer `name`; `options` (config `prepared.<store>.options`) become its keyword arguments."""
    table = preparers()
    if name not in table:
        raise InputError(f"unknown preparer '{name}'; expected one of {sorted(table)} (config prepared.<store>.preparer)")
    return table[name](name, raw_roots, Path(out), geometry, expected_counts=expected_counts,
                       skip_corrupt=skip_corrupt, seed=seed, **(options or {}))
