"""`python -m lead_hsr.runs <target>`: the results a table or figure reads, from Snakemake's own DAG."""
import subprocess
import sys
from pathlib import Path

import pytest

from lead_hsr import dag as dag_module
from lead_hsr.dag import SNAKEMAKE_INTERNALS, missing_snakemake_internals
from lead_hsr.runs import main, needed_runs, row_labels
from lead_hsr.report.spec import load_tables

REPO = Path(__file__).resolve().parents[2]
TABLE = "results/paper/tables/table_3.3.md"


def dry_run_outputs(tmp_path, target: str) -> str:
    """The plain `snakemake -n` listing of the target's jobs (inputs, outputs): the independent reference."""
    out = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--directory", str(tmp_path), "--snakefile",
                          str(REPO / "Snakefile"), "--", target], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_a_table_lists_one_result_per_row_with_its_rule(tmp_path):
    runs = needed_runs([TABLE], workdir=tmp_path)[TABLE]
    # Table 3.3: five LEAD stage-2 ablations (dim x projection head), each matched on MAFL
    spec = load_tables(REPO / "config/tables.yaml")["table_3.3"]
    assert [run.label for run in runs] == [" | ".join(map(str, row["label"])) for row in spec["rows"]
                                           if not row.get("quoted")]
    assert {run.rule for run in runs} == {"match_landmarks"} and not any(run.built for run in runs)
    listing = dry_run_outputs(tmp_path, TABLE)
    assert listing.count("rule match_landmarks:") == len(runs) == 5
    for run in runs:
        assert f"output: {run.path}" in listing, run.path
    assert "results/paper/lead/matching/stage1~byol/stage2~lead/dim~128/proj~256/metrics.json" in {
        run.path for run in runs}


def test_hypercolumn_rows_and_labels_of_another_table(tmp_path):
    runs = needed_runs(["results/paper/tables/table_3.1.md"], workdir=tmp_path)
    by_label = {run.label: run.path for run in runs["results/paper/tables/table_3.1.md"]}
    assert by_label["LEAD (ours) | 3840"] == ("results/paper/lead/matching/stage1~byol/stage2~none/dim~3840/"
                                             "proj~none/metrics.json")


def test_built_results_are_told_apart(tmp_path):
    # A toy workflow: the figure reads two runs, one of which is already built.
    (tmp_path / "Snakefile").write_text(
        'rule run:\n    output: "runs/{i}.json"\n    shell: "touch {output}"\n\n'
        'rule fig:\n    input: metrics=expand("runs/{i}.json", i=[1, 2])\n    output: "fig.png"\n'
        '    shell: "touch {output}"\n')
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "1.json").write_text("{}")
    runs = needed_runs(["fig.png"], workdir=tmp_path, snakefile=tmp_path / "Snakefile")["fig.png"]
    assert [(run.label, run.rule, run.built, run.path) for run in runs] == [
        ("metrics", "run", True, "runs/1.json"), ("metrics", "run", False, "runs/2.json")]


def test_row_labels_name_columns_that_are_runs():
    labels = row_labels(REPO / "config/tables.yaml", "table_3.5")  # columns = annotation counts
    assert any(label.endswith("[1]") for label in labels.values()), labels


def test_command_line(tmp_path, capsys):
    assert main([TABLE, "--directory", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{TABLE} reads 5 results:") and "--forcerun <rule>" in out
    assert main(["results/paper/tables/table_9.9.md", "--directory", str(tmp_path)]) == 1
    assert "table_9.9" in capsys.readouterr().err


def test_the_snakemake_internals_it_uses_are_there():
    """No public Snakemake interface hands out a planned DAG's jobs with their params and input names
    (lead_hsr/dag.py says why), so it uses internals; an upgrade that moves one fails here, naming it."""
    assert missing_snakemake_internals() == []
    assert {name for _, _, name in SNAKEMAKE_INTERNALS} >= {"_workflow", "_prepare_dag", "_build_dag"}


def test_a_moved_internal_is_named_before_any_planning(tmp_path, monkeypatch):
    monkeypatch.setattr(dag_module, "SNAKEMAKE_INTERNALS",
                        SNAKEMAKE_INTERNALS + (("snakemake.dag", "DAG", "renamed_in_a_later_snakemake"),))
    with pytest.raises(RuntimeError, match=r"lacks: snakemake\.dag\.DAG\.renamed_in_a_later_snakemake\. Install"):
        needed_runs([TABLE], workdir=tmp_path)
    monkeypatch.setattr(dag_module, "PREPARE_DAG_ARGUMENTS", {**dag_module.PREPARE_DAG_ARGUMENTS, "gone": 1})
    monkeypatch.setattr(dag_module, "SNAKEMAKE_INTERNALS", SNAKEMAKE_INTERNALS)
    assert missing_snakemake_internals() == ["snakemake.workflow.Workflow._prepare_dag(gone=)"]
