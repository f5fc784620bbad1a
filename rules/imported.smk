# Released StyleGAN2-ADA / HSR networks (config `hsr.imported`), imported without the official code
# (lead_hsr.gan.checkpoints) and evaluated by the same metric code as our runs: a table row names one with
# `run: {imported: <name>}`; an HSR run starts from one with `hsr.datasets.<d>.start_from: <name>`.

wildcard_constraints:
    imported="[^/]+",


rule import_gan_checkpoint:
    """Import a released StyleGAN2-ADA / HSR pickle (hsr.imported) into our network format."""
    input:
        lambda w: imported_spec(w.imported)["pickle"],
    output:
        f"{RESULTS}/hsr/imported/{{imported}}/network.pt",
    params:
        expect_preset=lambda w: imported_spec(w.imported).get("expect_preset"),
        drop_hsr_heads=lambda w: bool(imported_spec(w.imported).get("drop_hsr_heads")),
    conda:
        "../envs/environment.yaml"
    log:
        log_path("hsr", "import_{imported}"),
    benchmark:
        bench_path("hsr", "import_{imported}")
    resources:
        mem_mb=8000,
        runtime=30,
    script:
        f"{SCRIPTS}/import_gan_checkpoint.py"


rule gan_metrics_imported:
    """FID, precision/recall and PPL of an imported released network (a table row beside our runs)."""
    input:
        network=imported_network("{imported}"),
        store=lambda w: prepared(HSR["datasets"][imported_spec(w.imported)["dataset"]]["store"]),
        weights=weight_files(*gan_metrics_weights()),
    output:
        metrics=f"{RESULTS}/hsr/metrics/imported~{{imported}}/metrics.json",
        ppl=f"{RESULTS}/hsr/metrics/imported~{{imported}}/ppl_distances.npy",
        samples=samples_of(f"{RESULTS}/hsr/metrics/imported~{{imported}}/metrics.json"),
    params:
        options=lambda w, output: gan_metric_options(output.metrics),
        cache=f"{WORK}/feature_cache",
        weights_cache=lambda w, input: weights_cache_of(input.weights),
    conda:
        "../envs/environment.yaml"
    log:
        log_path("hsr", "metrics", "imported~{imported}"),
    benchmark:
        bench_path("hsr", "metrics", "imported~{imported}")
    threads: gpu_threads("gan_metrics")
    resources:
        **gpu_resources("gan_metrics"),
    script:
        f"{SCRIPTS}/gan_metrics.py"


rule gan_als_imported:
    """Attribute Linearity Score of an imported released network."""
    input:
        network=imported_network("{imported}"),
        classifier=f"{RESULTS}/hsr/attributes/classifier.pt",
    output:
        f"{RESULTS}/hsr/metrics/imported~{{imported}}/als.json",
        samples=samples_of(f"{RESULTS}/hsr/metrics/imported~{{imported}}/als.json"),
    params:
        options=lambda w: {**HSR["als"]["metric"], "seed": config["seed"]},
    conda:
        "../envs/environment.yaml"
    log:
        log_path("hsr", "als", "imported~{imported}"),
    benchmark:
        bench_path("hsr", "als", "imported~{imported}")
    threads: gpu_threads("gan_metrics")
    resources:
        **gpu_resources("gan_metrics"),
    script:
        f"{SCRIPTS}/gan_als.py"
