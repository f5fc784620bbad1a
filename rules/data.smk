# Raw data (synthetic renderer for the demo), preparation into the prepared store, and a look at each store.


rule generate_synthetic:
    """Demo only: render one synthetic raw dataset in its official on-disk layout."""
    input:
        unpack(lambda w: synthetic_depends(w.dataset)),
    output:
        directory(f"{SYNTHETIC.get('root', 'synthetic')}/{{dataset}}"),
    params:
        spec=lambda w: SYNTHETIC["datasets"][w.dataset],
        seed=SYNTHETIC.get("seed", 0),
    conda:
        "../envs/environment.yaml"
    log:
        log_path("data", "synthetic_{dataset}"),
    benchmark:
        bench_path("data", "synthetic_{dataset}")
    resources:
        mem_mb=2000,
        runtime=30,
    script:
        f"{SCRIPTS}/generate_synthetic.py"


rule prepare_dataset:
    """Prepare one store from its raw dataset (crop, resize, splits, landmarks if any) into the prepared format."""
    input:
        lambda w: raw_inputs(w.store),
    output:
        directory(prepared("{store}")),
    params:
        preparer=lambda w: preparer_of(w.store),
        raw_roots=lambda w: raw_roots_of(w.store),
        spec=lambda w: config["prepared"][w.store],
        geometry=config["geometry"],
        skip_corrupt=config["skip_corrupt"],
        seed=config["seed"],
    conda:
        "../envs/environment.yaml"
    log:
        log_path("data", "prepare_{store}"),
    benchmark:
        bench_path("data", "prepare_{store}")
    resources:
        mem_mb=8000,
        runtime=240,
    script:
        f"{SCRIPTS}/prepare_dataset.py"


rule data_figure:
    """Preview figure of one prepared store (sample images, with their landmarks where the store has them)."""
    input:
        prepared("{store}"),
    output:
        report(
            f"{RESULTS}/figures/data_{{store}}.png",
            caption="captions/data_figure.rst",
            category="Data",
            subcategory="{store}",
        ),
    conda:
        "../envs/environment.yaml"
    log:
        log_path("data", "figure_{store}"),
    benchmark:
        bench_path("data", "figure_{store}")
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        f"{SCRIPTS}/data_figure.py"


rule data:
    """Every prepared store and its preview figure (`snakemake data`)."""
    input:
        data_targets(),


rule own_data:
    """Your own data: every `image_folder*` store, its preview, and the tables of `report.own_tables`."""
    input:
        own_data_targets(),
