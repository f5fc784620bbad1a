# Using LEAD outside the tables: a regression run exported as one landmark model file (+ MODEL_CARD.md), and
# landmarks predicted on a configured folder of images (config `lead.predict`; docs/use_lead.md). Targets:
# `<results>/lead/models/<run>/model.pt` for any regression run, `predictions` for every `lead.predict` entry.
# Library: lead_hsr.metrics.landmark_model (export), lead_hsr.lead.predict (prediction, overlays); path helpers:
# rules/common.smk (landmark_model_path, predictions_targets).

localrules:
    predictions,


rule predictions:
    """Landmarks of every folder configured under lead.predict (and the models they need)."""
    input:
        predictions_targets(),


rule export_landmark_model:
    """One regression run as a self-contained landmark model (features + regressor + geometry) and its card."""
    input:
        weights=lambda w: feature_weights(w),
        metrics=f"{RESULTS}/lead/regression/{MODEL_RUN}/metrics.json",
        regressor=f"{RESULTS}/lead/regression/{MODEL_RUN}/regressor.pt",
        store=lambda w: prepared(LEAD["datasets"][w.dataset]["store"]),
    output:
        model=f"{RESULTS}/lead/models/{MODEL_RUN}/model.pt",
        card=f"{RESULTS}/lead/models/{MODEL_RUN}/MODEL_CARD.md",
    params:
        normaliser=lambda w: landmark_normaliser(w.dataset),
        geometry={key: config["geometry"][key] for key in ("resize", "crop")},
        config_files=recorded_config_files(),
    conda:
        "../envs/environment.yaml"
    log:
        log_path("lead", "models", "stage1~{stage1}_stage2~{stage2}_dim~{dim}_proj~{proj}_{dataset}_{annotations}_{seed}"),
    script:
        f"{SCRIPTS}/export_landmark_model.py"


rule predict_landmarks:
    """Landmarks on one configured folder of images (lead.predict.<name>): CSV in original image pixels."""
    input:
        model=lambda w: landmark_model_path(w.name),
        images=lambda w: LEAD_PREDICT[w.name]["images"],
        boxes=lambda w: LEAD_PREDICT[w.name].get("boxes", []),
    output:
        csv=f"{RESULTS}/lead/predictions/{{name}}/predictions.csv",
    params:
        device=LEAD["regression"].get("device", "cpu"),
    conda:
        "../envs/environment.yaml"
    log:
        log_path("lead", "predictions", "{name}"),
    script:
        f"{SCRIPTS}/predict_landmarks.py"


rule draw_landmark_overlays:
    """Each image of a lead.predict folder drawn with its predicted landmarks (one PNG per image)."""
    input:
        csv=f"{RESULTS}/lead/predictions/{{name}}/predictions.csv",
        images=lambda w: LEAD_PREDICT[w.name]["images"],
    output:
        directory(f"{RESULTS}/lead/predictions/{{name}}/overlays"),
    conda:
        "../envs/environment.yaml"
    log:
        log_path("lead", "predictions", "{name}_overlays"),
    script:
        f"{SCRIPTS}/draw_landmark_overlays.py"
