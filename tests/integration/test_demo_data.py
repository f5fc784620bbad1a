"""Data part of the demo DAG: synthetic raw layouts -> prepared stores -> preview figures."""

import numpy as np
import yaml

from lead_hsr.data.store import open_store
from demo_dag import DEMO_RESULTS, REPO, snakemake


def demo_config():
    return yaml.safe_load((REPO / "config" / "demo.yaml").read_text())


def test_every_store_has_the_declared_counts(demo_dir):
    for name, spec in demo_config()["prepared"].items():
        store = open_store(demo_dir / DEMO_RESULTS / "data" / "prepared" / name)
        counts = store.table["split"].value_counts().to_dict()
        manifest_counts = store.manifest["counts"]
        assert sum(counts.values()) == len(store.images) > 0
        assert counts == {k: v for k, v in manifest_counts.items() if v}, name
        assert (demo_dir / DEMO_RESULTS / "figures" / f"data_{name}.png").stat().st_size > 10_000


def test_landmark_stores_have_landmarks_inside_the_image(demo_dir):
    for name in ("mafl", "aflw_m", "aflw_r", "w300", "mafl_unaligned"):
        store = open_store(demo_dir / DEMO_RESULTS / "data" / "prepared" / name)
        size = store.images.shape[1]
        assert store.images.shape[1:] == (88, 88, 3)
        points = store.landmarks
        assert points.shape[1] == (68 if name == "w300" else 5)
        assert np.isfinite(points).all()
        assert (points > -0.1 * size).all() and (points < 1.1 * size).all()


def test_gan_stores_are_at_the_demo_resolution(demo_dir):
    for name in ("ffhq_1k", "lsun_church", "animalface_dog", "cub"):
        store = open_store(demo_dir / DEMO_RESULTS / "data" / "prepared" / name)
        assert store.images.shape[1:] == (32, 32, 3)
        assert store.images.dtype == np.uint8


def test_rerun_is_a_no_op(demo_dir):
    out = snakemake(demo_dir, "data", options=("-n",))
    assert out.returncode == 0
    assert "Nothing to be done" in out.stdout + out.stderr


def test_html_report_shows_the_figures_and_tables(demo_dir):
    report = demo_dir / "report.html"
    out = snakemake(demo_dir, "data", f"{DEMO_RESULTS}/tables/table_3.2.csv", options=("--report", str(report)))
    assert out.returncode == 0, out.stderr[-4000:]
    html = report.read_text(errors="replace")
    assert "data_mafl.png" in html and "table_3.2.csv" in html
