"""Result paths say what they hold: stage-1 hypercolumn runs carry their real width (dim~960 for the demo's
resnet18, dim~3840 for the paper's resnet50), and the paper config picks devices like everywhere else."""
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def dry_run(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", "-n", "--directory", str(tmp_path), "--snakefile",
                           str(REPO / "Snakefile"), *args], capture_output=True, text=True, cwd=REPO)


def hypercolumn_dims(text: str) -> set[str]:
    return {word.split("stage2~none/")[1].split("/")[0] for word in text.split() if "stage2~none/dim~" in word}


def test_hypercolumn_runs_are_named_by_their_width(tmp_path):
    # Table 3.1 reads hypercolumn matching runs, Fig. 3.5 the hypercolumn feature maps (config lead.figures)
    targets = ["tables/table_3.1.md", "figures/fig_3.5.png"]
    demo = dry_run(tmp_path, "--configfile", str(REPO / "config/demo.yaml"), "--",
                   *(f"results/demo/{t}" for t in targets))
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert hypercolumn_dims(demo.stdout) == {"dim~960"}
    paper = dry_run(tmp_path, "--", *(f"results/paper/{t}" for t in targets))
    assert paper.returncode == 0, paper.stderr[-3000:]
    assert hypercolumn_dims(paper.stdout) == {"dim~3840"}


def test_a_wrong_hypercolumn_width_is_refused(tmp_path):
    out = dry_run(tmp_path, "--configfile", str(REPO / "config/demo.yaml"), "--",
                  "results/demo/lead/matching/stage1~byol/stage2~none/dim~3840/proj~none/metrics.json")
    assert out.returncode != 0
    assert "960-d for resnet18; use dim~960" in out.stderr + out.stdout


def devices(node, where=""):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "device":
                yield f"{where}.{key}".lstrip("."), value
            else:
                yield from devices(value, f"{where}.{key}")


def test_every_paper_device_is_auto():
    found = dict(devices(yaml.safe_load((REPO / "config/config.yaml").read_text())))
    assert "hsr.als.classifier.device" in found and len(found) > 8, found
    assert {key: value for key, value in found.items() if value != "auto"} == {}
