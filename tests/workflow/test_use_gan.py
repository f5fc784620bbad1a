"""Using a network from the DAG (rules/use_gan.smk) and Fig. 4.11 on a folder of photos: dry runs of the demo config
plus an overlay, no data."""
import re
import subprocess
import sys
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[2]
BASELINE = "dataset~ffhq10k/aug~ada/plr~on/hsr~none/hsr_levels~none"
HSR_RUN = "dataset~ffhq10k/aug~ada/plr~on/hsr~vit_dino/hsr_levels~all"


def dry_run(tmp_path, overlay: str, *targets: str) -> subprocess.CompletedProcess:
    (tmp_path / "overlay.yaml").write_text(overlay)
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--directory", str(tmp_path), "--snakefile", str(REPO / "Snakefile"),
         "--configfile", str(REPO / "config/demo.yaml"), str(tmp_path / "overlay.yaml"), "--", *targets],
        capture_output=True, text=True, cwd=REPO)


def jobs(stdout: str) -> dict[str, list[dict]]:
    """rule -> its planned jobs' fields (input, output, ...) from a dry run's listing."""
    planned = {}
    for block in re.split(r"\n(?=rule \w+:)", stdout):
        head = re.match(r"rule (\w+):", block.strip())
        if head:
            fields = dict(re.findall(r"^\s+(\w+): (.*)$", block, re.M))
            planned.setdefault(head.group(1), []).append(fields)
    return planned


def test_generate_targets_train_or_import_the_network_first_and_fig_4_11_reads_the_photos(tmp_path):
    (tmp_path / "photos/holiday").mkdir(parents=True)
    for name in ("a.png", "holiday/b.jpg"):
        Image.new("RGB", (40, 30), (120, 80, 40)).save(tmp_path / "photos" / name)
    (tmp_path / "photos/readme.txt").write_text("not an image")
    (tmp_path / "released.pkl").write_bytes(b"stand-in")
    overlay = (f"hsr:\n  figures:\n    edits: {{source: {tmp_path / 'photos'}}}\n"
               f"  imported:\n    released: {{pickle: {tmp_path / 'released.pkl'}, dataset: ffhq10k}}\n")
    generated = "results/demo/hsr/generate"
    targets = [f"{generated}/{BASELINE}/grid.png", f"{generated}/{BASELINE}/images", f"{generated}/{BASELINE}/mixing",
               f"{generated}/{HSR_RUN}/truncation.png", f"{generated}/imported~released/interpolation.gif",
               "results/demo/figures/fig_4.11.png"]
    out = dry_run(tmp_path, overlay, *targets)
    assert out.returncode == 0, out.stderr[-3000:]
    planned = jobs(out.stdout)
    for rule, run in (("generate_grid", BASELINE), ("generate_images", BASELINE), ("generate_mixing", BASELINE),
                      ("generate_truncation", HSR_RUN)):
        assert [job["input"] for job in planned[rule]] == [f"results/demo/hsr/train/{run}/network.pt"], rule
    assert planned["generate_video"][0]["input"] == "results/demo/hsr/imported/released/network.pt"
    # the networks are built first: both training jobs and the import are in the plan
    assert {"train_gan_baseline", "train_gan_hsr", "import_gan_checkpoint"} <= set(planned), sorted(planned)
    assert "gan_metrics" not in planned  # nothing a generate target does not need
    figure_inputs = planned["fig_4_11"][0]["input"].split(", ")
    assert [p for p in figure_inputs if "photos" in p] == [str(tmp_path / "photos/a.png"),
                                                          str(tmp_path / "photos/holiday/b.jpg")]


def test_a_missing_photo_folder_is_named_at_parse_time(tmp_path):
    out = dry_run(tmp_path, f"hsr:\n  figures:\n    edits: {{source: {tmp_path / 'no_such'}}}\n",
                  "results/demo/figures/fig_4.11.png")
    assert out.returncode != 0
    assert f"{tmp_path / 'no_such'}: not a folder (hsr.figures.edits.source)" in out.stdout + out.stderr


def test_schema_blocks_match_the_code():
    import dataclasses

    import yaml

    from lead_hsr.gan import generate, project
    from lead_hsr.metrics import edit
    from lead_hsr.perceptual import LPIPS_DISTANCES

    hsr = yaml.safe_load((REPO / "config/schema.yaml").read_text())["properties"]["hsr"]["properties"]
    blocks = hsr["generate"]["properties"]
    assert set(blocks) - {"noise_mode", "trunc", "device"} == set(generate.PRODUCTS)
    assert blocks["noise_mode"]["enum"] == list(generate.NOISE_MODES)
    projection = hsr["figures"]["properties"]["edits"]["properties"]["projection"]["properties"]
    assert set(projection) == ({f.name for f in dataclasses.fields(project.ProjectorSettings)}
                               | set(edit.PROJECTION_EXTRA_KEYS))
    assert projection["lpips"]["enum"] == list(LPIPS_DISTANCES)
    # every key of a product block is an option of that product's command line
    example = {"seeds": "0-1", "columns": 2, "psis": [1, 0.5], "rows": "0-1", "cols": "2", "styles": "0-1",
               "frames_per_seed": 2, "fps": 5}
    for product in generate.PRODUCTS:
        options = {"noise_mode": "const", "trunc": 0.7, "device": "cpu",
                   product: {key: example[key] for key in blocks[product]["properties"]}}
        parsed = generate._parser().parse_args(generate.product_argv(product, "net.pt", "out", options))
        assert all(getattr(parsed, key) is not None for key in blocks[product]["properties"]), product


def test_a_generate_target_runs_on_an_existing_network(tmp_path):
    """A real run: an imported network already in place (newer than its pickle), so only the generate job runs."""
    import os
    import time

    sys.path.insert(0, str(REPO / "tests" / "gan"))
    from test_generate import save_tiny_network

    network = tmp_path / "results/demo/hsr/imported/released/network.pt"
    network.parent.mkdir(parents=True)
    save_tiny_network(network)
    (tmp_path / "released.pkl").write_bytes(b"stand-in: older than its import")
    os.utime(tmp_path / "released.pkl", (time.time() - 3600,) * 2)
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(f"hsr:\n  imported:\n    released: {{pickle: {tmp_path / 'released.pkl'}, dataset: ffhq10k}}\n"
                       "  generate: {grid: {seeds: 0-5, columns: 3}}\n")
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "1", "--directory", str(tmp_path), "--snakefile",
         str(REPO / "Snakefile"), "--configfile", str(REPO / "config/demo.yaml"), str(overlay), "--",
         "results/demo/hsr/generate/imported~released/grid.png"],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert "generate_grid" in out.stderr and "import_gan_checkpoint" not in out.stderr
    grid = Image.open(tmp_path / "results/demo/hsr/generate/imported~released/grid.png")
    assert grid.size == (3 * 16, 2 * 16)  # 6 seeds in rows of 3 of the tiny 16 px network
    assert (tmp_path / "results/demo/logs/hsr/generate/imported~released_grid.log").is_file()
