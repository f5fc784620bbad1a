"""Backbone widths, torch-free: the Snakefile reads them at parse time to name the stage-1 hypercolumn runs
(`stage2~none/dim~<hypercolumn_dim>`), and `backbones` builds the networks from the same table."""

from __future__ import annotations

from lead_hsr.errors import InputError

DEFAULT_ARCH = "resnet50"  # the thesis's backbone (DESIGN §5); the demo selects resnet18
# Channels of layer1..layer4 per architecture (torchvision definitions).
STAGE_DIMS: dict[str, tuple[int, int, int, int]] = {
    "resnet18": (64, 128, 256, 512),
    "resnet34": (64, 128, 256, 512),
    "resnet50": (256, 512, 1024, 2048),
}


def check_arch(arch: str) -> str:
    if arch not in STAGE_DIMS:
        raise InputError(f"unknown backbone arch {arch!r}; expected one of {sorted(STAGE_DIMS)} "
                         "(set `arch` in the LEAD options of the config).")
    return arch


def hypercolumn_dim(arch: str) -> int:
    """Channels of a hypercolumn (all four stages concatenated): 3840 for resnet50, 960 for resnet18/34."""
    return sum(STAGE_DIMS[check_arch(arch)])


HYPERCOLUMN = "hypercolumn"  # the `dim` of a stage-1 hypercolumn source in config files; paths get the number


def feature_dim(stage2: str, dim: str | int, stage1_arch: str) -> int:
    """The `dim~` of a feature source's path. `stage2~none` is the stage-1 network's hypercolumns, whose width
    the backbone decides: `dim` is then `hypercolumn` (or that very number); stage-2 runs keep their own."""
    width = hypercolumn_dim(stage1_arch)
    if stage2 == "none":
        if str(dim) not in (HYPERCOLUMN, str(width)):
            raise InputError(f"feature source stage2~none/dim~{dim}: stage2~none means the stage-1 hypercolumns, "
                             f"which are {width}-d for {stage1_arch}; use dim~{width} (in config files: "
                             f"dim~{HYPERCOLUMN} or dim: {HYPERCOLUMN}).")
        return width
    if str(dim) == HYPERCOLUMN:
        raise InputError(f"dim {HYPERCOLUMN!r} names the stage-1 hypercolumns and needs stage2 none (got stage2 "
                         f"{stage2!r}); give a stage-2 run its feature dimension, e.g. 64.")
    return int(dim)
