# LEAD thesis figures (Figures 3.4-3.11) built from run outputs; each figure is its own target:
# `snakemake <results>/figures/fig_3.N.png`. Which runs a figure shows: config `lead.figures`.
# Also the scale-sensitivity regression runs of Figs. 3.9/3.10 (`<results>/lead/scale/<feature source>/`).
# Library: lead_hsr.metrics.lead_figures (gathering) / lead_hsr.report.lead_figures (drawing), lead_hsr.metrics.scale.
from types import SimpleNamespace

LEAD_FIGURES = LEAD["figures"]
# label -> feature source path `stage1~../stage2~../dim~../proj~..` (dim~hypercolumn -> the real width)
FIG_SOURCES = {label: feature_path(run_fields(path)) for label, path in LEAD_FIGURES["sources"].items()}
FIG_UNKNOWN = sorted(
    {*LEAD_FIGURES["matching"]["sources"], *LEAD_FIGURES["tsne"]["sources"], *LEAD_FIGURES["scale"]["sources"],
     *(LEAD_FIGURES[fig]["source"] for fig in ("clusters", "regression", "annotations", "low_light"))}
    - set(FIG_SOURCES)
)
if FIG_UNKNOWN:
    raise ValueError(f"config lead.figures: sources {FIG_UNKNOWN} are not defined under lead.figures.sources "
                     f"(defined: {sorted(FIG_SOURCES)})")
# weights of each source (`feature_weights` takes the run's wildcards)
FIG_WEIGHTS = {label: feature_weights(SimpleNamespace(**run_fields(path)))
               for label, path in FIG_SOURCES.items()}
# a regression run of a source (its predictions.npy is written beside the metrics)
FIG_REGRESSION = (f"{RESULTS}/lead/regression/{{source}}/dataset~{{dataset}}/annotations~{{annotations}}/"
                  f"seed~{{seed}}/metrics.json")
FIG_SCALE = {label: f"{RESULTS}/lead/scale/{path}/metrics.json" for label, path in FIG_SOURCES.items()}
FIG_OPTIONS = {"crop": config["geometry"]["crop"], "seed": config["seed"],
               "device": LEAD_FIGURES.get("device", "auto")}
FIG_REG, FIG_ANN, FIG_DARK = LEAD_FIGURES["regression"], LEAD_FIGURES["annotations"], LEAD_FIGURES["low_light"]


rule regress_scale:
    """Scale sensitivity: regressor on unaligned MAFL (train zoom-out 1-1.5), IOD per test zoom-out bin (1-2)."""
    input:
        weights=lambda w: feature_weights(w),
        store=prepared(LEAD["scale"]["store"]),
    output:
        metrics=f"{RESULTS}/lead/scale/{FEATURES}/metrics.json",
        predictions=f"{RESULTS}/lead/scale/{FEATURES}/predictions.npy",
        regressor=f"{RESULTS}/lead/scale/{FEATURES}/regressor.pt",  # written by every regression run
        samples=samples_of(f"{RESULTS}/lead/scale/{FEATURES}/metrics.json"),  # ... as are its per-image errors
    params:
        options=lambda w: {**regression_options(), **LEAD["scale"].get("regression", {})},
        eyes=LEAD["scale"]["store"],
    conda:
        "../envs/environment.yaml"
    log:
        log_path("lead", "scale", "stage1~{stage1}_stage2~{stage2}_dim~{dim}_proj~{proj}"),
    benchmark:
        bench_path("lead", "scale", "stage1~{stage1}_stage2~{stage2}_dim~{dim}_proj~{proj}")
    threads: gpu_threads("fit_regressor")
    resources:
        **gpu_resources("fit_regressor"),
    script:
        f"{SCRIPTS}/regress_scale.py"


rule fig_3_4:
    """Fig. 3.4: landmarks of a frontal reference matched into queries of increasing head yaw, per method."""
    input:
        weights=[FIG_WEIGHTS[label] for label in LEAD_FIGURES["matching"]["sources"]],
        store=prepared(LEAD["matching"]["store"]),
    output:
        report(f"{RESULTS}/figures/fig_3.4.png", caption="captions/fig_3.4.rst", category="Figures"),
    params:
        labels=LEAD_FIGURES["matching"]["sources"],
        eyes=LEAD["matching"]["store"],
        options={**FIG_OPTIONS, "queries": LEAD_FIGURES["matching"]["queries"]},
    conda:
        "../envs/environment.yaml"
    log:
        log_path("figures", "fig_3.4"),
    benchmark:
        bench_path("figures", "fig_3.4")
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        f"{SCRIPTS}/fig_matching.py"


rule fig_3_5:
    """Fig. 3.5: t-SNE of stage-1 feature maps (LEAD BYOL vs CL MoCo), coloured by 9 k-means parts."""
    input:
        weights=[FIG_WEIGHTS[label] for label in LEAD_FIGURES["tsne"]["sources"]],
        store=prepared(LEAD_FIGURES["tsne"]["store"]),
    output:
        report(f"{RESULTS}/figures/fig_3.5.png", caption="captions/fig_3.5.rst", category="Figures"),
    params:
        labels=LEAD_FIGURES["tsne"]["sources"],
        options={**FIG_OPTIONS, **LEAD_FIGURES["tsne"]},
    conda:
        "../envs/environment.yaml"
    log:
        log_path("figures", "fig_3.5"),
    benchmark:
        bench_path("figures", "fig_3.5")
    resources:
        mem_mb=8000,
        runtime=60,
    script:
        f"{SCRIPTS}/fig_tsne.py"


rule fig_3_6:
    """Fig. 3.6: the k-means parts of Fig. 3.5 (same source, sample, seed) shown on reference images."""
    input:
        weights=FIG_WEIGHTS[LEAD_FIGURES["clusters"]["source"]],
        store=prepared(LEAD_FIGURES["tsne"]["store"]),
    output:
        report(f"{RESULTS}/figures/fig_3.6.png", caption="captions/fig_3.6.rst", category="Figures"),
    params:
        options={**FIG_OPTIONS, **LEAD_FIGURES["tsne"], "references": LEAD_FIGURES["clusters"]["references"]},
    conda:
        "../envs/environment.yaml"
    log:
        log_path("figures", "fig_3.6"),
    benchmark:
        bench_path("figures", "fig_3.6")
    resources:
        mem_mb=8000,
        runtime=60,
    script:
        f"{SCRIPTS}/fig_cluster_masks.py"


rule fig_3_7:
    """Fig. 3.7: regression predictions on test images of every landmark dataset."""
    input:
        metrics=[FIG_REGRESSION.format(source=FIG_SOURCES[FIG_REG["source"]], dataset=d, annotations="all", seed=0)
                 for d in FIG_REG["datasets"]],
        predictions=[FIG_REGRESSION.format(source=FIG_SOURCES[FIG_REG["source"]], dataset=d, annotations="all",
                                           seed=0).replace("metrics.json", "predictions.npy")
                     for d in FIG_REG["datasets"]],
        stores=[prepared(LEAD["datasets"][d]["store"]) for d in FIG_REG["datasets"]],
    output:
        report(f"{RESULTS}/figures/fig_3.7.png", caption="captions/fig_3.7.rst", category="Figures"),
    params:
        labels=[d.upper() for d in FIG_REG["datasets"]],
        eyes=[LEAD["datasets"][d]["store"] for d in FIG_REG["datasets"]],
        options={**FIG_OPTIONS, "images": FIG_REG["images"]},
    conda:
        "../envs/environment.yaml"
    log:
        log_path("figures", "fig_3.7"),
    benchmark:
        bench_path("figures", "fig_3.7")
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        f"{SCRIPTS}/fig_regression.py"


rule fig_3_8:
    """Fig. 3.8: predictions of the few-shot regressors (first seed) per number of annotations, and all."""
    input:
        metrics=[FIG_REGRESSION.format(source=FIG_SOURCES[FIG_ANN["source"]], dataset=FIG_ANN["dataset"],
                                       annotations=count, seed=seed)
                 for count, seed in [(c, LEAD["fewshot"]["seeds"][0]) for c in LEAD["fewshot"]["counts"]]
                 + [("all", 0)]],
        predictions=[FIG_REGRESSION.format(source=FIG_SOURCES[FIG_ANN["source"]], dataset=FIG_ANN["dataset"],
                                           annotations=count, seed=seed).replace("metrics.json", "predictions.npy")
                     for count, seed in [(c, LEAD["fewshot"]["seeds"][0]) for c in LEAD["fewshot"]["counts"]]
                     + [("all", 0)]],
        store=prepared(LEAD["datasets"][FIG_ANN["dataset"]]["store"]),
    output:
        report(f"{RESULTS}/figures/fig_3.8.png", caption="captions/fig_3.8.rst", category="Figures"),
    params:
        labels=[f"{count} annotation{'s' if count > 1 else ''}" for count in LEAD["fewshot"]["counts"]]
        + ["all annotations"],
        eyes=LEAD["datasets"][FIG_ANN["dataset"]]["store"],
        options={**FIG_OPTIONS, "images": FIG_ANN["images"]},
    conda:
        "../envs/environment.yaml"
    log:
        log_path("figures", "fig_3.8"),
    benchmark:
        bench_path("figures", "fig_3.8")
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        f"{SCRIPTS}/fig_annotations.py"


rule fig_3_9:
    """Fig. 3.9: IOD error per zoom-out bin on unaligned MAFL (seen 1-1.5 vs unseen 1.5-2), per method."""
    input:
        metrics=[FIG_SCALE[label] for label in LEAD_FIGURES["scale"]["sources"]],
    output:
        report(f"{RESULTS}/figures/fig_3.9.png", caption="captions/fig_3.9.rst", category="Figures"),
    params:
        labels=LEAD_FIGURES["scale"]["sources"],
    conda:
        "../envs/environment.yaml"
    log:
        log_path("figures", "fig_3.9"),
    benchmark:
        bench_path("figures", "fig_3.9")
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        f"{SCRIPTS}/fig_scale.py"


rule fig_3_10:
    """Fig. 3.10: predictions of the scale runs on test images across the zoom-out range."""
    input:
        metrics=[FIG_SCALE[label] for label in LEAD_FIGURES["scale"]["sources"]],
        predictions=[FIG_SCALE[label].replace("metrics.json", "predictions.npy")
                     for label in LEAD_FIGURES["scale"]["sources"]],
        store=prepared(LEAD["scale"]["store"]),
    output:
        report(f"{RESULTS}/figures/fig_3.10.png", caption="captions/fig_3.10.rst", category="Figures"),
    params:
        labels=LEAD_FIGURES["scale"]["sources"],
        eyes=LEAD["scale"]["store"],
        options={**FIG_OPTIONS, "images": LEAD_FIGURES["scale"]["images"]},
    conda:
        "../envs/environment.yaml"
    log:
        log_path("figures", "fig_3.10"),
    benchmark:
        bench_path("figures", "fig_3.10")
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        f"{SCRIPTS}/fig_scale_examples.py"


rule fig_3_11:
    """Fig. 3.11: regression predictions on the darkest test images (low light)."""
    input:
        metrics=FIG_REGRESSION.format(source=FIG_SOURCES[FIG_DARK["source"]], dataset=FIG_DARK["dataset"],
                                      annotations="all", seed=0),
        predictions=FIG_REGRESSION.format(source=FIG_SOURCES[FIG_DARK["source"]], dataset=FIG_DARK["dataset"],
                                          annotations="all", seed=0).replace("metrics.json", "predictions.npy"),
        store=prepared(LEAD["datasets"][FIG_DARK["dataset"]]["store"]),
    output:
        report(f"{RESULTS}/figures/fig_3.11.png", caption="captions/fig_3.11.rst", category="Figures"),
    params:
        eyes=LEAD["datasets"][FIG_DARK["dataset"]]["store"],
        options={**FIG_OPTIONS, "images": FIG_DARK["images"]},
    conda:
        "../envs/environment.yaml"
    log:
        log_path("figures", "fig_3.11"),
    benchmark:
        bench_path("figures", "fig_3.11")
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        f"{SCRIPTS}/fig_low_light.py"
