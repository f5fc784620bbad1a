"""Any one table or ablation is its own target: asking for it schedules only what it needs (dry runs, no data)."""
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LEAD_RULES = {"train_stage1", "train_stage2", "regress_all", "regress_fewshot", "match_landmarks"}
GAN_RULES = {"train_gan_prefix", "train_gan_baseline", "train_gan_hsr", "gan_metrics", "gan_als",
             "train_attribute_classifiers"}


def scheduled_rules(tmp_path, *targets: str) -> dict[str, int]:
    """rule -> job count of a paper-config dry run for `targets` in an empty directory."""
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--quiet", "rules", "--directory", str(tmp_path), "--snakefile",
         str(REPO / "Snakefile"), "--configfile", str(REPO / "config" / "config.yaml"), "--", *targets],
        capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [line.split() for line in out.stdout.splitlines()]
    return {row[0]: int(row[1]) for row in rows if len(row) == 2 and row[1].isdigit() and row[0] != "total"}


@pytest.mark.parametrize("table,needs,never", [
    ("table_3.5", LEAD_RULES & {"regress_fewshot"}, GAN_RULES | {"match_landmarks"}),
    ("table_3.1", {"match_landmarks"}, GAN_RULES),
    ("table_4.2", {"train_gan_baseline", "train_gan_hsr", "gan_metrics"}, LEAD_RULES),
])
def test_one_table_schedules_only_its_own_runs(tmp_path, table, needs, never):
    rules = scheduled_rules(tmp_path, f"results/paper/tables/{table}.md")
    assert rules.get("table") == 1, rules
    assert needs <= set(rules), rules
    assert not never & set(rules), rules


def test_one_ablation_run_is_addressable(tmp_path):
    # Table 3.3's 128-d LEAD stage 2 with a 256-d projection head, evaluated on AFLW_M with all annotations
    run = ("results/paper/lead/regression/stage1~byol/stage2~lead/dim~128/proj~256/dataset~aflw_m/"
           "annotations~all/seed~0/metrics.json")
    rules = scheduled_rules(tmp_path, run)
    assert rules["train_stage1"] == 1 and rules["train_stage2"] == 1 and rules["regress_all"] == 1, rules
    assert "table" not in rules and not GAN_RULES & set(rules)
