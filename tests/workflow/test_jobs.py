"""lead_hsr.jobs: every job's log ends with its own CPU count, which the demo benchmark reads (Snakemake's sampled
figure misses up to 30 s of a longer job), and a finished job's process ends without interpreter shutdown."""
import ast
import importlib.util
import os
import subprocess
import sys
import textwrap
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


JOB_SCRIPT = """
import atexit, sys
from types import SimpleNamespace
from lead_hsr.jobs import end_job, job_log
atexit.register(lambda: print("exit handler ran", flush=True))
out, log, fail = sys.argv[1], sys.argv[2], sys.argv[3] == "fail"
with job_log(SimpleNamespace(log=[log], threads=1)):
    with open(out, "w") as handle:
        handle.write("complete output")
    print("working")
    if fail:
        raise RuntimeError("the job failed")
end_job()
"""


def run_script(tmp_path, mode: str) -> tuple[subprocess.CompletedProcess, Path, Path]:
    out, log = tmp_path / "out.txt", tmp_path / "job.log"
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(JOB_SCRIPT), str(out), str(log), mode],
                          capture_output=True, text=True, cwd=REPO)
    return done, out, log


def test_a_finished_job_ends_at_once_with_its_outputs_and_log_complete(tmp_path):
    done, out, log = run_script(tmp_path, "ok")
    assert done.returncode == 0, done.stderr
    assert out.read_text() == "complete output"
    text = log.read_text()
    assert text.startswith("working\n") and parse_job_cpu(text) is not None, text
    assert "exit handler ran" not in done.stdout + text  # shutdown skipped: that is where the time goes


def test_a_failed_job_exits_the_usual_way_with_its_traceback(tmp_path):
    done, _, log = run_script(tmp_path, "fail")
    assert done.returncode == 1
    text = log.read_text()
    assert "RuntimeError: the job failed" in text and parse_job_cpu(text) is not None, text
    assert "exit handler ran" in done.stdout  # end_job was never reached


def test_every_workflow_script_ends_its_job_after_job_log():
    """`end_job()` is each script's last statement, after its `with job_log(...)` block (fetch_weights, which
    imports no torch and reports a missing weight on the terminal, exits the usual way)."""
    for script in sorted((REPO / "workflow_scripts").glob("*.py")):
        body = ast.parse(script.read_text()).body
        if script.stem == "fetch_weights":
            continue
        assert ast.unparse(body[-1]) == "end_job()", script
        assert isinstance(body[-2], ast.With) and "job_log" in ast.unparse(body[-2].items[0]), script
