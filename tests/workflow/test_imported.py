"""Released official networks in the DAG (rules/imported.smk): dry runs of the paper config plus an overlay."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HSR_RUN = "results/paper/hsr/train/dataset~ffhq140k/aug~none/plr~on/hsr~vit_dino/hsr_levels~all/network.pt"


def scheduled_rules(tmp_path, overlay: str, *targets: str) -> dict[str, int]:
    (tmp_path / "overlay.yaml").write_text(overlay)
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--quiet", "rules", "--directory", str(tmp_path), "--snakefile",
         str(REPO / "Snakefile"), "--configfile", str(REPO / "config" / "config.yaml"), str(tmp_path / "overlay.yaml"),
         "--", *targets], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [line.split() for line in out.stdout.splitlines()]
    return {row[0]: int(row[1]) for row in rows if len(row) == 2 and row[1].isdigit() and row[0] != "total"}


def test_released_network_metrics_and_an_hsr_run_started_from_it(tmp_path):
    (tmp_path / "released.pkl").write_bytes(b"stand-in")
    overlay = (f"hsr:\n  imported:\n    released: {{pickle: {tmp_path / 'released.pkl'}, dataset: ffhq140k}}\n"
               "  datasets:\n    ffhq140k: {store: ffhq_70k, start_from: released}\n")
    rules = scheduled_rules(tmp_path, overlay, "results/paper/hsr/metrics/imported~released/metrics.json", HSR_RUN)
    assert rules.get("import_gan_checkpoint") == 1 and rules.get("gan_metrics_imported") == 1, rules
    assert rules.get("train_gan_hsr") == 1, rules
    assert "train_gan_prefix" not in rules and "train_gan_baseline" not in rules, rules   # no 500-kimg prefix


def test_without_start_from_the_hsr_run_still_needs_its_baseline_prefix(tmp_path):
    rules = scheduled_rules(tmp_path, "hsr: {imported: {}}\n", HSR_RUN)
    assert rules.get("train_gan_prefix") == 1 and "import_gan_checkpoint" not in rules, rules
    assert "train_gan_baseline" not in rules, rules  # the rest of the baseline is not needed by its HSR runs
