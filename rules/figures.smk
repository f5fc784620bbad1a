# Thesis figures built from run outputs. Each figure is its own target: `snakemake <results>/figures/fig_4.2.png`.


rule fig_4_2:
    """Fig. 4.2: per-sample PPL distributions of SG2-ADA and SG2-ADA + HSR (kept 1st-99th percentile)."""
    input:
        baseline=f"{RESULTS}/hsr/metrics/{HSR['figures']['ppl_run']}/hsr~none/hsr_levels~none/ppl_distances.npy",
        hsr=f"{RESULTS}/hsr/metrics/{HSR['figures']['ppl_run']}/hsr~vit_dino/hsr_levels~all/ppl_distances.npy",
    output:
        report(f"{RESULTS}/figures/fig_4.2.png", caption="captions/fig_4.2.rst", category="Figures"),
    conda:
        "../envs/environment.yaml"
    log:
        log_path("figures", "fig_4.2"),
    benchmark:
        bench_path("figures", "fig_4.2")
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        f"{SCRIPTS}/fig_ppl_distribution.py"


# ---- chapter 4 (HSR) figures: each compares a baseline run with its HSR run (config hsr.figures) ----
HSR_FIGURES = HSR["figures"]
PPL_SAMPLE_FILES = dict(network=("train", "network.pt"), metrics=("metrics", "metrics.json"),
                        distances=("metrics", "ppl_distances.npy"))
ALS_CLASSIFIER = f"{RESULTS}/hsr/attributes/classifier.pt"
# Fig. 4.6: per dataset of hsr.figures.worst_runs, both networks and the prepared store
WORST_INPUTS = {
    **{key: path for i, run in enumerate(HSR_FIGURES["worst_runs"])
       for key, path in hsr_pair_inputs(run, f"run{i}_", network=("train", "network.pt")).items()},
    **{f"run{i}_store": prepared(HSR["datasets"][run_fields(run)["dataset"]]["store"])
       for i, run in enumerate(HSR_FIGURES["worst_runs"])}}


rule fig_4_1:
    """Fig. 4.1: bottom-10%-ile PPL interpolations and attribute-edit transitions, baseline vs HSR."""
    input:
        **hsr_pair_inputs(HSR_FIGURES["ppl_run"], **PPL_SAMPLE_FILES),
        **hsr_pair_inputs(HSR_FIGURES["als_run"], "als_", network=("train", "network.pt")),
        classifier=ALS_CLASSIFIER,
    output:
        report(f"{RESULTS}/figures/fig_4.1.png", caption="captions/fig_4.1.rst", category="Figures"),
    params:
        labels=hsr_pair_labels(HSR_FIGURES["ppl_run"]),
        als_labels=hsr_pair_labels(HSR_FIGURES["als_run"]),
        options={"interpolation": hsr_figure_options("interpolation", pairs=HSR_FIGURES["panel_pairs"]),
                 "edits": hsr_figure_options("edits")},
    conda:
        "../envs/environment.yaml"
    log:
        log_path("figures", "fig_4.1"),
    benchmark:
        bench_path("figures", "fig_4.1")
    resources:
        mem_mb=8000,
        runtime=60,
    script:
        f"{SCRIPTS}/fig_hsr_panel.py"


rule fig_4_3:
    """Fig. 4.3: the HSR architecture of the configured HSR run (from its options.json, no weights loaded)."""
    input:
        options=f"{RESULTS}/hsr/train/{HSR_FIGURES['ppl_run']}/{FIGURE_SIDES['hsr']}/options.json",
    output:
        report(f"{RESULTS}/figures/fig_4.3.png", caption="captions/fig_4.3.rst", category="Figures"),
    conda:
        "../envs/environment.yaml"
    log:
        log_path("figures", "fig_4.3"),
    benchmark:
        bench_path("figures", "fig_4.3")
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        f"{SCRIPTS}/fig_hsr_overview.py"


rule fig_4_4:
    """Fig. 4.4: W interpolations of top-10%-ile pairs by per-sample PPL (the smoothest), baseline vs HSR."""
    input:
        **hsr_pair_inputs(HSR_FIGURES["ppl_run"], **PPL_SAMPLE_FILES),
    output:
        report(f"{RESULTS}/figures/fig_4.4.png", caption="captions/fig_4.4.rst", category="Figures"),
    params:
        band="top",
        labels=hsr_pair_labels(HSR_FIGURES["ppl_run"]),
        options=hsr_figure_options("interpolation"),
    conda:
        "../envs/environment.yaml"
    log:
        log_path("figures", "fig_4.4"),
    benchmark:
        bench_path("figures", "fig_4.4")
    resources:
        mem_mb=8000,
        runtime=30,
    script:
        f"{SCRIPTS}/fig_ppl_interpolations.py"


rule fig_4_5:
    """Fig. 4.5: W interpolations of bottom-10%-ile pairs by per-sample PPL (the least smooth), baseline vs HSR."""
    input:
        **hsr_pair_inputs(HSR_FIGURES["ppl_run"], **PPL_SAMPLE_FILES),
    output:
        report(f"{RESULTS}/figures/fig_4.5.png", caption="captions/fig_4.5.rst", category="Figures"),
    params:
        band="bottom",
        labels=hsr_pair_labels(HSR_FIGURES["ppl_run"]),
        options=hsr_figure_options("interpolation"),
    conda:
        "../envs/environment.yaml"
    log:
        log_path("figures", "fig_4.5"),
    benchmark:
        bench_path("figures", "fig_4.5")
    resources:
        mem_mb=8000,
        runtime=30,
    script:
        f"{SCRIPTS}/fig_ppl_interpolations.py"


rule fig_4_6:
    """Fig. 4.6: per dataset, the generated images farthest (Mahalanobis) from the real feature moments."""
    input:
        **WORST_INPUTS,
        weights=weight_files(fid_weight()),
    output:
        report(f"{RESULTS}/figures/fig_4.6.png", caption="captions/fig_4.6.rst", category="Figures"),
    params:
        datasets=[run_fields(run)["dataset"] for run in HSR_FIGURES["worst_runs"]],
        labels=[hsr_pair_labels(run) for run in HSR_FIGURES["worst_runs"]],
        options=hsr_figure_options("mahalanobis", extractor=HSR["metrics"]["fid"]["extractor"],
                                   standin=HSR["metrics"]["fid"].get("standin")),
        cache=f"{WORK}/feature_cache",
        weights_cache=lambda w, input: weights_cache_of(input.weights),
    conda:
        "../envs/environment.yaml"
    log:
        log_path("figures", "fig_4.6"),
    benchmark:
        bench_path("figures", "fig_4.6")
    threads: gpu_threads("gan_metrics")
    resources:
        **gpu_resources("gan_metrics"),
    script:
        f"{SCRIPTS}/fig_worst_mahalanobis.py"


rule fig_4_7:
    """Fig. 4.7: images of samples from the bottom 10%-ile by per-sample PPL, baseline vs HSR."""
    input:
        **hsr_pair_inputs(HSR_FIGURES["ppl_run"], **PPL_SAMPLE_FILES),
    output:
        report(f"{RESULTS}/figures/fig_4.7.png", caption="captions/fig_4.7.rst", category="Figures"),
    params:
        labels=hsr_pair_labels(HSR_FIGURES["ppl_run"]),
        options=hsr_figure_options("worst_ppl"),
    conda:
        "../envs/environment.yaml"
    log:
        log_path("figures", "fig_4.7"),
    benchmark:
        bench_path("figures", "fig_4.7")
    resources:
        mem_mb=8000,
        runtime=30,
    script:
        f"{SCRIPTS}/fig_worst_ppl.py"


rule fig_4_8:
    """Fig. 4.8: the generator's intermediate RGB (ToRGB skip sum) per resolution, baseline vs HSR."""
    input:
        **hsr_pair_inputs(HSR_FIGURES["ppl_run"], network=("train", "network.pt")),
    output:
        report(f"{RESULTS}/figures/fig_4.8.png", caption="captions/fig_4.8.rst", category="Figures"),
    params:
        labels=hsr_pair_labels(HSR_FIGURES["ppl_run"]),
        options=hsr_figure_options("intermediate_rgb"),
    conda:
        "../envs/environment.yaml"
    log:
        log_path("figures", "fig_4.8"),
    benchmark:
        bench_path("figures", "fig_4.8")
    resources:
        mem_mb=8000,
        runtime=10,
    script:
        f"{SCRIPTS}/fig_intermediate_rgb.py"


rule fig_4_9:
    """Fig. 4.9: attribute scores s_t along ALS interpolation pairs with the transition images, baseline vs HSR."""
    input:
        **hsr_pair_inputs(HSR_FIGURES["als_run"], network=("train", "network.pt")),
        classifier=ALS_CLASSIFIER,
    output:
        report(f"{RESULTS}/figures/fig_4.9.png", caption="captions/fig_4.9.rst", category="Figures"),
    params:
        mode="interpolation",
        labels=hsr_pair_labels(HSR_FIGURES["als_run"]),
        options=hsr_figure_options("linearity"),
    conda:
        "../envs/environment.yaml"
    log:
        log_path("figures", "fig_4.9"),
    benchmark:
        bench_path("figures", "fig_4.9")
    resources:
        mem_mb=8000,
        runtime=30,
    script:
        f"{SCRIPTS}/fig_attribute_linearity.py"


rule fig_4_11:
    """Fig. 4.11: attribute edits (w0 -> w0 + a d) of sampled latents or projected photos, baseline vs HSR."""
    input:
        **hsr_pair_inputs(HSR_FIGURES["als_run"], network=("train", "network.pt")),
        classifier=ALS_CLASSIFIER,
        photos=edit_photos(),
        weights=weight_files(edit_projection_weight()),
    output:
        report(f"{RESULTS}/figures/fig_4.11.png", caption="captions/fig_4.11.rst", category="Figures"),
    params:
        mode="edit",
        labels=hsr_pair_labels(HSR_FIGURES["als_run"]),
        options=hsr_figure_options("edits"),
        weights_cache=lambda w, input: weights_cache_of(input.weights),
    conda:
        "../envs/environment.yaml"
    log:
        log_path("figures", "fig_4.11"),
    benchmark:
        bench_path("figures", "fig_4.11")
    resources:
        mem_mb=8000,
        runtime=60,
    script:
        f"{SCRIPTS}/fig_attribute_linearity.py"
