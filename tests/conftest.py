"""Shared pytest set-up: keep torch to one thread per test process (2-core CI), repo root importable."""
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Dry runs of config/config.yaml plan the paper DAG without its datasets (rules/common.smk checks real raw roots
# at DAG build otherwise; tests/workflow/test_raw_check.py tests that check with this unset).
os.environ.setdefault("LEAD_HSR_SKIP_RAW_CHECK", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # the config/workflow tests do not need torch
    pass
