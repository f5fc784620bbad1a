"""The default target draws the training curves once, after every result (dry run of the demo config), of the
runs its DAG trains only (lead_hsr.dag.training_work_dirs; the real job on stand-in inputs)."""
import re
import subprocess
import sys
from pathlib import Path

import torch

from lead_hsr.dag import planned_dag, training_work_dirs
from lead_hsr.train import RunConfig, train

REPO = Path(__file__).resolve().parents[2]


def test_all_plans_one_training_curves_job_after_every_training(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "--dag", "--directory", str(tmp_path), "--snakefile",
         str(REPO / "Snakefile"), "--configfile", str(REPO / "config" / "demo.yaml")],
        capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    rules = dict(re.findall(r'^\s*(\d+)\[label = "([^"\\]+)', out.stdout, re.M))
    curves = [node for node, rule in rules.items() if rule == "training_curves"]
    assert len(curves) == 1
    edges = re.findall(r"^\s*(\d+) -> (\d+)", out.stdout, re.M)
    ancestors, frontier = set(), {curves[0]}
    while frontier:
        frontier = {a for a, b in edges if b in frontier} - ancestors
        ancestors |= frontier
    trainers = {node for node, rule in rules.items() if rule.startswith("train_")}
    assert len(trainers) > 10 and trainers <= ancestors          # drawn after every training run has finished
    assert {rules[b] for a, b in edges if a == curves[0]} == {"all"}


def _planned_training_jobs(out: str) -> int:
    """Jobs of the rules that train through lead_hsr.train in `snakemake -n`'s job stats (printed twice)."""
    stats = out.split("Job stats:")[1]
    return sum(int(n) for n in re.findall(r"^train_(?:stage1|stage2|gan_prefix|gan_baseline|gan_hsr)\s+(\d+)$",
                                          stats, re.M))


def test_training_work_dirs_are_the_work_dirs_of_the_dags_training_jobs(tmp_path):
    work_dirs = training_work_dirs(configfiles=[REPO / "config" / "demo.yaml"], workdir=tmp_path)
    dry = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--directory", str(tmp_path), "--snakefile",
                          str(REPO / "Snakefile"), "--configfile", str(REPO / "config" / "demo.yaml")],
                         capture_output=True, text=True, cwd=REPO)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert len(work_dirs) == _planned_training_jobs(dry.stdout) > 10        # one per training job, all of them
    names = {p.relative_to("work/demo").as_posix() for p in work_dirs}
    assert {"lead/stage1/stage1~byol", "lead/stage2/stage1~byol/stage2~lead/dim~64/proj~256",
            "hsr/dataset~ffhq10k/aug~ada/plr~on/hsr~none/hsr_levels~none/prefix",
            "hsr/dataset~ffhq10k/aug~ada/plr~on/hsr~vit_dino/hsr_levels~all"} <= names
    # a narrower target: only the runs it needs (stage-1 BYOL, then LEAD stage 2 on it)
    lead = training_work_dirs(["results/demo/lead/stage2/stage1~byol/stage2~lead/dim~64/proj~256/weights.pt"],
                              configfiles=[REPO / "config" / "demo.yaml"], workdir=tmp_path)
    assert [p.relative_to("work/demo").as_posix() for p in lead] == [
        "lead/stage1/stage1~byol", "lead/stage2/stage1~byol/stage2~lead/dim~64/proj~256"]


def _logged_run(work_dir: Path) -> None:
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.1)

    def step_fn(step):
        loss = (param - 1) ** 2
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    train(RunConfig(work_dir, 4, checkpoint_every=2, log_every=1, tensorboard=False), {"opt": opt}, step_fn)


def test_the_rule_draws_the_runs_of_this_dag_not_leftovers_of_another_config(tmp_path):
    """The real training_curves job on the demo config, its inputs stood in by empty files (only that rule may run),
    in a work_dir holding one run of this DAG and two another config left there."""
    demo = ["--configfile", str(REPO / "config" / "demo.yaml")]
    with planned_dag(["results/demo/training_curves"], configfiles=[REPO / "config" / "demo.yaml"],
                     workdir=tmp_path) as dag:
        inputs = [str(path) for job in dag.jobs if job.rule.name == "training_curves" for path in job.input]
    assert len(inputs) > 10
    for path in map(tmp_path.joinpath, inputs):
        if path.suffix:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        else:                                          # a prepared store: a directory
            path.mkdir(parents=True, exist_ok=True)
    _logged_run(tmp_path / "work/demo/lead/stage1/stage1~byol")                      # trained by this DAG
    _logged_run(tmp_path / "work/demo/lead/stage2/stage1~byol/stage2~lead/dim~32/proj~256")   # dim 32: not here
    _logged_run(tmp_path / "work/demo/hsr/dataset~gone/aug~ada/plr~on/hsr~none/hsr_levels~none")
    out = subprocess.run([sys.executable, "-m", "snakemake", "--directory", str(tmp_path), "--snakefile",
                          str(REPO / "Snakefile"), *demo, "--cores", "1", "--allowed-rules", "training_curves",
                          "--", "results/demo/training_curves"], capture_output=True, text=True, cwd=REPO)
    log = tmp_path / "results/demo/logs/training_curves.log"
    assert out.returncode == 0, out.stderr[-3000:] + (log.read_text()[-3000:] if log.exists() else "")
    drawn = sorted(p.name for p in (tmp_path / "results/demo/training_curves").glob("*.png"))
    assert drawn == ["lead__stage1__stage1~byol.png"]
