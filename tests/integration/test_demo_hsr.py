"""HSR on the demo data: runs, metrics and a table come out of the DAG with their stand-ins recorded."""
import json
import math

import yaml

from demo_dag import DEMO_RESULTS, REPO


def test_architecture_card_is_integers(demo_dir):
    card = json.loads((demo_dir / DEMO_RESULTS / "hsr" / "arch" / "demo.json").read_text())
    assert card["G"] == card["G_mapping"] + card["G_synthesis"] > 0
    assert all(isinstance(v, int) and v > 0 for v in card["hsr_heads"].values())


def test_plr_by_hsr_runs_have_finite_metrics_and_record_stand_ins(demo_dir):
    # Table 4.4: PLR on/off x HSR on/off (a reused LEAD_HSR_DEMO_DIR may hold every other run too)
    runs = ("hsr~none/hsr_levels~none", "hsr~vit_dino/hsr_levels~all")
    metrics = [demo_dir / DEMO_RESULTS / "hsr/metrics/dataset~animalface_dog/aug~ada" / f"plr~{plr}" / run /
               "metrics.json" for plr in ("on", "off") for run in runs]
    for path in metrics:
        result = json.loads(path.read_text())
        assert all(math.isfinite(result[k]) for k in ("fid", "precision", "recall", "ppl")), path
        assert "standin" in result["note"]


def test_hsr_runs_continue_their_baseline(demo_dir):
    start = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())["hsr"]["start_kimg"]
    runs = sorted((demo_dir / DEMO_RESULTS / "hsr" / "train").rglob("hsr~vit_dino/hsr_levels~*/options.json"))
    assert runs
    for options in runs:
        record = json.loads(options.read_text())
        assert record["init_from"].endswith(f"hsr~none/hsr_levels~none/network-snapshot-{float(start):g}.pt")
        assert record["hsr"]["levels"] == options.parent.name.removeprefix("hsr_levels~")


def test_table_4_4_is_written_in_three_formats(demo_dir):
    for ext in ("csv", "md", "tex"):
        text = (demo_dir / DEMO_RESULTS / "tables" / f"table_4.4.{ext}").read_text()
        assert text.count("\n") >= 4 and "57.97" in text, (ext, text)  # header + 4 rows, thesis beside ours
