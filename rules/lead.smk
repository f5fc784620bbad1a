# LEAD training: stage 1 (BYOL / MoCo / random-init baseline) and stage 2 (LEAD, CL, CL objective on the
# FPN, NMF). Library: lead_hsr.lead.stage1 / stage2. Checkpoints live under WORK (undeclared: resume on retry).

wildcard_constraints:
    stage1="byol|moco|random",
    stage2="none|lead|cl|cl_fpn|nmf",  # none: the stage-1 hypercolumns (evaluation only)
    dim="[0-9]+",
    proj="none|[0-9]+",


rule train_stage1:
    """LEAD stage 1: BYOL / MoCo self-supervised backbone training (random: the random-init baseline)."""
    input:
        prepared(config["lead"]["ssl_store"]),
    output:
        weights=stage1_weights("{stage1}"),
        options=stage1_weights("{stage1}").replace(".pt", ".json"),
    params:
        options=lambda w: stage1_options(w.stage1),
        work_dir=lambda w: f"{WORK}/lead/stage1/stage1~{w.stage1}",
    conda:
        "../envs/environment.yaml"
    log:
        log_path("lead", "stage1~{stage1}"),
    benchmark:
        bench_path("lead", "stage1~{stage1}")
    threads: gpu_threads("train_stage1")
    resources:
        **gpu_resources("train_stage1"),
    script:
        f"{SCRIPTS}/train_stage1.py"


rule train_stage2:
    """LEAD stage 2: dense correspondence training (LEAD, CL, CL on the FPN, NMF) on stage-1 features."""
    input:
        store=prepared(config["lead"]["ssl_store"]),
        stage1=stage1_weights("{stage1}"),
    output:
        weights=stage2_weights("{stage1}", "{stage2}", "{dim}", "{proj}"),
        options=stage2_weights("{stage1}", "{stage2}", "{dim}", "{proj}").replace(".pt", ".json"),
    params:
        options=lambda w: stage2_options(w.stage2, w.dim, w.proj),
        work_dir=lambda w: f"{WORK}/lead/stage2/stage1~{w.stage1}/stage2~{w.stage2}/dim~{w.dim}/proj~{w.proj}",
    conda:
        "../envs/environment.yaml"
    log:
        log_path("lead", "stage2", "stage1~{stage1}_stage2~{stage2}_dim~{dim}_proj~{proj}"),
    benchmark:
        bench_path("lead", "stage2", "stage1~{stage1}_stage2~{stage2}_dim~{dim}_proj~{proj}")
    threads: gpu_threads("train_stage2")
    resources:
        **gpu_resources("train_stage2"),
    script:
        f"{SCRIPTS}/train_stage2.py"
