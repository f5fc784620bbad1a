"""Every job's log ends with its own CPU count, and the demo benchmark reads it (Snakemake's sampled figure
misses up to 30 s of a longer job)."""
import importlib.util
import os
import time
from pathlib import Path
from types import SimpleNamespace

from lead_hsr.jobs import job_log, parse_job_cpu

REPO = Path(__file__).resolve().parents[2]


def burn_cpu(seconds: float) -> None:
    start = time.process_time()
    while time.process_time() - start < seconds:
        pass


def run_job(log: Path, seconds: float) -> None:
    with job_log(SimpleNamespace(log=[str(log)], threads=1)):
        os.write(1, b"working\n")  # fd 1: what a job's C-level output and print() reach
        burn_cpu(seconds)


def test_the_log_ends_with_the_jobs_whole_cpu_time(tmp_path):
    log = tmp_path / "logs" / "job.log"
    before = time.process_time()
    run_job(log, 0.3)
    text = log.read_text()
    assert text.startswith("working\n")
    cpu = parse_job_cpu(text)
    # the count is the process's whole CPU (this test process: imports, earlier tests), at least the burn
    assert cpu is not None and cpu >= before + 0.3 - 0.01, (cpu, before, text)


def test_a_retried_job_counts_its_last_attempt():
    text = "[lead_hsr.jobs] job CPU 5.00 s (...)\nretry\n[lead_hsr.jobs] job CPU 7.25 s (...)\n"
    assert parse_job_cpu(text) == 7.25
    assert parse_job_cpu("no line here\n") is None


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_demo_dag", REPO / "bench" / "bench_demo_dag.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_prefers_the_jobs_own_count_to_the_sampled_one(tmp_path):
    bench = load_bench()
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    for name, sampled in (("long", 15.0), ("short", 1.0)):
        tsv = tmp_path / "benchmarks" / "lead" / "stage2" / f"{name}.tsv"
        tsv.parent.mkdir(parents=True, exist_ok=True)
        tsv.write_text(header + f"40.0\t0:00:40\t100\t200\t90\t95\t0\t0\t90\t{sampled}\n")
    log = tmp_path / "logs" / "lead" / "stage2" / "long.log"
    log.parent.mkdir(parents=True)
    log.write_text("step 60/60\n[lead_hsr.jobs] job CPU 38.50 s (user 37.00, sys 1.50; ...), max RSS 1.1 GiB\n")
    rows = {Path(r["file"]).stem: r for r in bench.read_benchmarks(tmp_path)}
    assert rows["long"]["job_cpu"] == 38.5 and rows["long"]["cpu_time"] == 15.0 and rows["long"]["from_log"]
    assert rows["short"]["job_cpu"] == 1.0 and not rows["short"]["from_log"]  # no log: the sampled figure
    assert {r["family"] for r in rows.values()} == {"lead/stage2"}
