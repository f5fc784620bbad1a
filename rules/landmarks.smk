# Landmark evaluation of every feature source the tables need: regression with all annotations, few-shot
# regression (counts x seeds, one job per feature source and dataset), and matching on MAFL test pairs.
# Every regression run writes its test predictions (`predictions.npy`, for the figures) and its fitted regressor
# (`regressor.pt`, for a landmark model export: rules/use_lead.smk) beside its metrics.
# Library: lead_hsr.metrics.landmarks. A feature source is `stage1~/stage2~/dim~/proj~` (stage2 none = the
# stage-1 hypercolumns).

FEATURES = "stage1~{stage1}/stage2~{stage2}/dim~{dim}/proj~{proj}"


rule regress_all:
    """Landmark regressor on frozen features with all annotations of one dataset (IOD error, predictions)."""
    input:
        weights=lambda w: feature_weights(w),
        store=lambda w: prepared(LEAD["datasets"][w.dataset]["store"]),
    output:  # one-element lists, like regress_fewshot's: the script always gets lists (params.runs order)
        metrics=[f"{RESULTS}/lead/regression/{FEATURES}/dataset~{{dataset}}/annotations~all/seed~0/metrics.json"],
        predictions=[f"{RESULTS}/lead/regression/{FEATURES}/dataset~{{dataset}}/annotations~all/seed~0/predictions.npy"],
        regressors=[f"{RESULTS}/lead/regression/{FEATURES}/dataset~{{dataset}}/annotations~all/seed~0/regressor.pt"],
        samples=[samples_of(f"{RESULTS}/lead/regression/{FEATURES}/dataset~{{dataset}}/annotations~all/seed~0/metrics.json")],
    params:
        options=lambda w: regression_options(),
        normaliser=lambda w: landmark_normaliser(w.dataset),
        runs=[("all", 0)],
    conda:
        "../envs/environment.yaml"
    log:
        log_path("lead", "regression", "stage1~{stage1}_stage2~{stage2}_dim~{dim}_proj~{proj}_{dataset}_all"),
    benchmark:
        bench_path("lead", "regression", "stage1~{stage1}_stage2~{stage2}_dim~{dim}_proj~{proj}_{dataset}_all")
    threads: gpu_threads("fit_regressor")
    resources:
        **gpu_resources("fit_regressor"),
    script:
        f"{SCRIPTS}/regress.py"


rule regress_fewshot:
    """Few-shot landmark regressors on frozen features: every annotation count x seed of one dataset."""
    input:
        weights=lambda w: feature_weights(w),
        store=lambda w: prepared(LEAD["datasets"][w.dataset]["store"]),
    output:
        metrics=fewshot_outputs(),
        predictions=fewshot_outputs("predictions.npy"),
        regressors=fewshot_outputs("regressor.pt"),
        samples=[samples_of(path) for path in fewshot_outputs()],
    params:
        options=lambda w: regression_options(),
        normaliser=lambda w: landmark_normaliser(w.dataset),
        runs=fewshot_runs(),
    conda:
        "../envs/environment.yaml"
    log:
        log_path("lead", "regression", "stage1~{stage1}_stage2~{stage2}_dim~{dim}_proj~{proj}_{dataset}_fewshot"),
    benchmark:
        bench_path("lead", "regression", "stage1~{stage1}_stage2~{stage2}_dim~{dim}_proj~{proj}_{dataset}_fewshot")
    threads: gpu_threads("fit_regressor")
    resources:
        **gpu_resources("fit_regressor"),
    script:
        f"{SCRIPTS}/regress.py"


rule match_landmarks:
    """Landmark matching of one feature source on MAFL test pairs (same and different identities)."""
    input:
        weights=lambda w: feature_weights(w),
        store=prepared(LEAD["matching"]["store"]),
    output:
        f"{RESULTS}/lead/matching/{FEATURES}/metrics.json",
        samples=samples_of(f"{RESULTS}/lead/matching/{FEATURES}/metrics.json"),  # per-pair errors (orderings)
    params:
        options=lambda w: {**LEAD["matching"], "crop": config["geometry"]["crop"], "seed": config["seed"]},
    conda:
        "../envs/environment.yaml"
    log:
        log_path("lead", "matching", "stage1~{stage1}_stage2~{stage2}_dim~{dim}_proj~{proj}"),
    benchmark:
        bench_path("lead", "matching", "stage1~{stage1}_stage2~{stage2}_dim~{dim}_proj~{proj}")
    threads: gpu_threads("fit_regressor")
    resources:
        **gpu_resources("fit_regressor"),
    script:
        f"{SCRIPTS}/match_landmarks.py"
