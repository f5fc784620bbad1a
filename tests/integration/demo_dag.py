"""Running the demo DAG from tests: one place for the command line and the slice CI runs."""
from pathlib import Path

import yaml
from dag_runner import slice_runner

from lead_hsr.lead.arch import hypercolumn_dim

REPO = Path(__file__).resolve().parents[2]
DEMO_RESULTS = "results/demo"
R = DEMO_RESULTS
# Stage-1 hypercolumn runs are named by their real width: 960 for the demo's resnet18.
DEMO_STAGE1 = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())["lead"]["stage1"]["common"]
HC_DIM = hypercolumn_dim(DEMO_STAGE1["arch"])

# Random-init and learned stage-1 hypercolumns on every landmark dataset: "learned beats random".
HYPERCOLUMN_RUNS = [f"{R}/lead/regression/stage1~{s1}/stage2~none/dim~{HC_DIM}/proj~none/dataset~{d}/annotations~all/"
                    "seed~0/metrics.json" for s1 in ("byol", "random") for d in ("mafl", "aflw_m", "aflw_r", "300w")]
MATCHING_RUNS = [f"{R}/lead/matching/stage1~{s1}/stage2~none/dim~{HC_DIM}/proj~none/metrics.json"
                 for s1 in ("byol", "random")]
# What CI builds: every dataset, a LEAD table, a HSR table, the architecture cards, the baselines above.
# LEAD stage 2 (the features every LEAD table reports) against the same network untrained and its stage-1 teacher.
LEAD_STAGE2 = "stage1~byol/stage2~lead/dim~64/proj~256"
LEAD_MATCHING = f"{R}/lead/matching/{LEAD_STAGE2}/metrics.json"
LEAD_REGRESSION_RUNS = [f"{R}/lead/regression/{LEAD_STAGE2}/dataset~{d}/annotations~all/seed~0/metrics.json"
                        for d in ("mafl", "aflw_m", "aflw_r", "300w")]
CI_TARGETS = [LEAD_MATCHING, *LEAD_REGRESSION_RUNS, "data", f"{R}/tables/table_3.2.md", f"{R}/tables/table_4.4.md", f"{R}/hsr/arch/demo.json",
              *HYPERCOLUMN_RUNS, *MATCHING_RUNS]


# snakemake(workdir, *targets, options=(), timeout=2400) on config/demo.yaml (tests/dag_runner.py)
snakemake = slice_runner("demo.yaml", timeout=2400)
