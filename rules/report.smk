# Tables (generic aggregation of run metric JSONs from config/tables.yaml), training curves and the HTML report.

wildcard_constraints:
    table=r"(table|fig)_[0-9]+\.[0-9]+|own_[A-Za-z0-9_]+",


rule table:
    """Any thesis table: ours beside the thesis's numbers, as CSV, Markdown and LaTeX."""
    input:
        lambda w: [p for paths in table_inputs(w.table).values() for p in paths],
    output:
        csv=report(f"{RESULTS}/tables/{{table}}.csv", category="Tables", labels={"table": "{table}"}),
        md=f"{RESULTS}/tables/{{table}}.md",
        tex=f"{RESULTS}/tables/{{table}}.tex",
    params:
        runs=lambda w: table_inputs(w.table),
        tables_yaml=lambda w: TABLE_FILES[w.table],
        footnote=config["report"].get("footnote"),
    conda:
        "../envs/environment.yaml"
    log:
        log_path("tables", "{table}"),
    benchmark:
        bench_path("tables", "{table}")
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        f"{SCRIPTS}/table.py"


rule training_curves:
    """One training-curve figure per training run of this DAG (not another config's leftovers), for the report."""
    # The job plans its inputs' DAG again (lead_hsr.dag.training_work_dirs) to know which runs are this config's.
    input:
        results_targets(),    # after every training run the config needs has finished
    output:
        report(
            directory(training_curves_dir()),
            patterns=["{run}.png"],
            caption="captions/training_curves.rst",
            category="Training curves",
        ),
    params:
        work_root=WORK,
        snakefile=workflow.main_snakefile,
    conda:
        "../envs/environment.yaml"
    log:
        log_path("training_curves"),
    benchmark:
        bench_path("training_curves")
    resources:
        mem_mb=2000,
        runtime=30,
    script:
        f"{SCRIPTS}/training_curves.py"


rule orderings:
    """Which of the thesis's orderings hold in this run (config/tables.yaml `orderings:`), with both sides' numbers."""
    input:
        lambda w: [p for paths in orderings_inputs().values() for p in paths],
        samples=lambda w: orderings_samples(),
    output:
        csv=report(f"{RESULTS}/tables/orderings.csv", category="Tables", labels={"table": "orderings (read first)"}),
        md=f"{RESULTS}/tables/orderings.md",
    params:
        orderings=reported_orderings(),
        paths=lambda w: orderings_inputs(),
        tables_yaml=TABLES_YAML,
        footnote=config["report"].get("footnote"),
    conda:
        "../envs/environment.yaml"
    log:
        log_path("tables", "orderings"),
    benchmark:
        bench_path("tables", "orderings")
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        f"{SCRIPTS}/orderings.py"
