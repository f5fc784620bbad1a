"""One entry point over every preparer (landmark datasets and GAN datasets) for the workflow."""
import inspect
from pathlib import Path

from lead_hsr.errors import InputError


# Arguments every preparer takes; anything else a preparer names is one of its options.
COMMON_ARGUMENTS = ("name", "raw_roots", "out", "geometry", "expected_counts", "skip_corrupt", "seed")
# Which keys of config `geometry` each family of preparers reads.
LANDMARK_GEOMETRY_KEYS = ("resize", "crop")
GAN_GEOMETRY_KEYS = ("resolution",)


def preparers() -> dict:
    """name -> (preparer, the geometry keys it takes)."""
    from lead_hsr.data.prepare import PREPARERS
    from lead_hsr.data.prepare_folder import PREPARERS_FOLDER
    from lead_hsr.data.prepare_gan import PREPARERS_GAN

    folder_keys = {"image_folder": LANDMARK_GEOMETRY_KEYS, "image_folder_gan": GAN_GEOMETRY_KEYS}
    return {**{k: (f, LANDMARK_GEOMETRY_KEYS) for k, f in PREPARERS.items()},
            **{k: (f, GAN_GEOMETRY_KEYS) for k, f in PREPARERS_GAN.items()},
            **{k: (f, folder_keys[k]) for k, f in PREPARERS_FOLDER.items()}}


def prepare(name: str, raw_roots: dict, out: Path, geometry: dict, expected_counts=None, options=None,
            skip_corrupt=False, seed=0):
    """Run preparer `name`; `options` (config `prepared.<store>.options`) become its keyword arguments."""
    table = preparers()
    if name not in table:
        raise InputError(f"unknown preparer '{name}'; expected one of {sorted(table)} (config prepared.<store>.preparer)")
    preparer, keys = table[name]
    check_options(name, preparer, options or {})
    geometry = {k: geometry[k] for k in keys}
    return preparer(name, raw_roots, Path(out), geometry, expected_counts=expected_counts,
                    skip_corrupt=skip_corrupt, seed=seed, **(options or {}))


def check_options(name: str, preparer, options: dict) -> None:
    """InputError for an option the preparer does not take (instead of a TypeError from the call)."""
    parameters = inspect.signature(preparer).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return  # the preparer checks its own **options
    allowed = sorted(set(parameters) - set(COMMON_ARGUMENTS))
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise InputError(f"preparer '{name}': unknown option(s) {unknown}; expected "
                         f"{'one of ' + str(allowed) if allowed else 'no options'}. "
                         "Fix: prepared.<store>.options in the config (config/README.md).")

