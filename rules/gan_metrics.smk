# GAN evaluation: FID, precision/recall and PPL per run; attribute classifiers and ALS (Fig. 4.10).


rule gan_metrics:
    """FID, precision/recall and PPL (with per-sample distances) of one GAN run."""
    input:
        network=gan_run_file("network.pt"),
        store=lambda w: prepared(HSR["datasets"][w.gan_dataset]["store"]),
        weights=weight_files(*gan_metrics_weights()),
    output:
        metrics=f"{RESULTS}/hsr/metrics/{GAN_RUN}/metrics.json",
        ppl=f"{RESULTS}/hsr/metrics/{GAN_RUN}/ppl_distances.npy",
        samples=samples_of(f"{RESULTS}/hsr/metrics/{GAN_RUN}/metrics.json"),  # FID replicates, per-sample P/R, PPL
    params:
        options=lambda w, output: gan_metric_options(output.metrics),
        cache=f"{WORK}/feature_cache",
        weights_cache=lambda w, input: weights_cache_of(input.weights),
    conda:
        "../envs/environment.yaml"
    log:
        log_path("hsr", "metrics", "dataset~{gan_dataset}_aug~{aug}_plr~{plr}_hsr~{hsr}_hsr_levels~{hsr_levels}"),
    benchmark:
        bench_path("hsr", "metrics", "dataset~{gan_dataset}_aug~{aug}_plr~{plr}_hsr~{hsr}_hsr_levels~{hsr_levels}")
    threads: gpu_threads("gan_metrics")
    resources:
        **gpu_resources("gan_metrics"),
    script:
        f"{SCRIPTS}/gan_metrics.py"


rule train_attribute_classifiers:
    """Attribute classifiers for ALS, trained by the pipeline on CelebA's list_attr_celeba.txt (DESIGN §7)."""
    input:
        prepared(HSR["als"]["store"]),
    output:
        f"{RESULTS}/hsr/attributes/classifier.pt",
    params:
        options=HSR["als"]["classifier"],
    conda:
        "../envs/environment.yaml"
    log:
        log_path("hsr", "attribute_classifiers"),
    benchmark:
        bench_path("hsr", "attribute_classifiers")
    threads: gpu_threads("train_attribute_classifiers")
    resources:
        **gpu_resources("train_attribute_classifiers"),
    script:
        f"{SCRIPTS}/train_attribute_classifiers.py"


rule gan_als:
    """Attribute Linearity Score of one GAN run, with the attribute classifiers."""
    input:
        network=gan_run_file("network.pt"),
        classifier=f"{RESULTS}/hsr/attributes/classifier.pt",
    output:
        f"{RESULTS}/hsr/metrics/{GAN_RUN}/als.json",
        samples=samples_of(f"{RESULTS}/hsr/metrics/{GAN_RUN}/als.json"),  # per-pair ALS (orderings)
    params:
        options=lambda w: {**HSR["als"]["metric"], "seed": config["seed"]},
    conda:
        "../envs/environment.yaml"
    log:
        log_path("hsr", "als", "dataset~{gan_dataset}_aug~{aug}_plr~{plr}_hsr~{hsr}_hsr_levels~{hsr_levels}"),
    benchmark:
        bench_path("hsr", "als", "dataset~{gan_dataset}_aug~{aug}_plr~{plr}_hsr~{hsr}_hsr_levels~{hsr_levels}")
    threads: gpu_threads("gan_metrics")
    resources:
        **gpu_resources("gan_metrics"),
    script:
        f"{SCRIPTS}/gan_als.py"
