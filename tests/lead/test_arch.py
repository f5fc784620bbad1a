"""Backbone widths (torch-free, read at DAG parse time) and the `dim~` of stage-1 hypercolumn sources."""
import sys

import pytest
import torch

from lead_hsr.errors import InputError
from lead_hsr.lead.arch import HYPERCOLUMN, feature_dim, hypercolumn_dim
from lead_hsr.lead.backbones import build_backbone
from lead_hsr.lead.hypercolumns import hypercolumns


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_hypercolumn_dim_is_what_the_network_outputs(arch):
    net = build_backbone(arch).eval()
    with torch.no_grad():
        assert hypercolumns(net(torch.randn(1, 3, 32, 32)), 8).shape[1] == hypercolumn_dim(arch)


def test_hypercolumn_sources_are_named_by_their_real_width():
    assert feature_dim("none", HYPERCOLUMN, "resnet18") == 960
    assert feature_dim("none", HYPERCOLUMN, "resnet50") == 3840
    assert feature_dim("none", "960", "resnet18") == 960  # a path's own (right) number is accepted
    assert feature_dim("lead", "64", "resnet18") == 64  # stage-2 runs keep their dimension
    with pytest.raises(InputError, match="960-d for resnet18; use dim~960"):
        feature_dim("none", "3840", "resnet18")
    with pytest.raises(InputError, match="needs stage2 none"):
        feature_dim("lead", HYPERCOLUMN, "resnet18")
    with pytest.raises(InputError, match="unknown backbone arch 'vgg'"):
        hypercolumn_dim("vgg")


def test_arch_module_is_parse_time_safe():
    # The Snakefile imports it: no torch (checked in a fresh interpreter).
    import subprocess
    code = "import sys, lead_hsr.lead.arch; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
