# StyleGAN2-ADA baselines and HSR runs (thesis chapter 4) and architecture cards (weights: rules/weights.smk).
# A run's path carries its identity: dataset, augmentation, path-length regularization, HSR extractor and levels.
# HSR runs start from their baseline's snapshot at `hsr.start_kimg` with fresh heads (thesis §4.3). That snapshot
# is the output of the baseline's own prefix job, so the HSR runs and the rest of the baseline train side by side.
# An HSR run starts from an imported released network instead when its dataset names one
# (`hsr.datasets.<d>.start_from`, rules/imported.smk).

wildcard_constraints:
    gan_dataset="[^/]+",
    aug="ada|none",
    plr="on|off",
    hsr="none|vit_dino|vit_random|resnet50_dino|deit|resnet50",
    hsr_levels="none|all|high|mid|low",
    preset="[^/]+",

GAN_RUN = "dataset~{gan_dataset}/aug~{aug}/plr~{plr}/hsr~{hsr}/hsr_levels~{hsr_levels}"


rule train_gan_prefix:
    """StyleGAN2-ADA baseline up to hsr.start_kimg: the snapshot its HSR runs start from, and its training state."""
    input:
        store=lambda w: prepared(HSR["datasets"][w.gan_dataset]["store"]),
    output:
        snapshot=gan_run_file(gan_start_snapshot(), hsr="none", hsr_levels="none"),
        state=gan_run_file(gan_prefix_state(), hsr="none", hsr_levels="none"),
    params:
        options=lambda w: gan_options(w, part="prefix", hsr="none", hsr_levels="none"),
        work_dir=lambda w: f"{WORK}/hsr/{GAN_RUN}/prefix".format(**{**w, "hsr": "none", "hsr_levels": "none"}),
    conda:
        "../envs/environment.yaml"
    log:
        log_path("hsr", "train", "dataset~{gan_dataset}_aug~{aug}_plr~{plr}_hsr~none_prefix"),
    benchmark:
        bench_path("hsr", "train", "dataset~{gan_dataset}_aug~{aug}_plr~{plr}_hsr~none_prefix")
    threads: gpu_threads("train_gan_prefix")
    resources:
        **gpu_resources("train_gan_prefix"),
    script:
        f"{SCRIPTS}/train_gan.py"


rule train_gan_baseline:
    """StyleGAN2-ADA baseline run (hsr~none), continued from its prefix job to its full length."""
    input:
        store=lambda w: prepared(HSR["datasets"][w.gan_dataset]["store"]),
        continue_from=gan_run_file(gan_prefix_state(), hsr="none", hsr_levels="none"),
    output:
        network=gan_run_file("network.pt", hsr="none", hsr_levels="none"),
        options=gan_run_file("options.json", hsr="none", hsr_levels="none"),
    params:
        options=lambda w: gan_options(w, hsr="none", hsr_levels="none"),
        work_dir=lambda w: f"{WORK}/hsr/{GAN_RUN}".format(**{**w, "hsr": "none", "hsr_levels": "none"}),
    conda:
        "../envs/environment.yaml"
    log:
        log_path("hsr", "train", "dataset~{gan_dataset}_aug~{aug}_plr~{plr}_hsr~none"),
    benchmark:
        bench_path("hsr", "train", "dataset~{gan_dataset}_aug~{aug}_plr~{plr}_hsr~none")
    threads: gpu_threads("train_gan")
    resources:
        **gpu_resources("train_gan"),
    script:
        f"{SCRIPTS}/train_gan.py"


rule train_gan_hsr:
    """StyleGAN2-ADA + HSR run, started from its baseline's snapshot with fresh HSR heads."""
    input:
        store=lambda w: prepared(HSR["datasets"][w.gan_dataset]["store"]),
        init_from=lambda w: gan_init_from(dict(w)),
        extractor_weights=lambda w: weight_files(hsr_extractor_weight(w.hsr)),
    output:
        network=gan_run_file("network.pt"),
        options=gan_run_file("options.json"),
    params:
        options=lambda w: gan_options(w),
        work_dir=lambda w: f"{WORK}/hsr/{GAN_RUN}".format(**w),
    conda:
        "../envs/environment.yaml"
    log:
        log_path("hsr", "train", "dataset~{gan_dataset}_aug~{aug}_plr~{plr}_hsr~{hsr}_hsr_levels~{hsr_levels}"),
    benchmark:
        bench_path("hsr", "train", "dataset~{gan_dataset}_aug~{aug}_plr~{plr}_hsr~{hsr}_hsr_levels~{hsr_levels}")
    threads: gpu_threads("train_gan")
    resources:
        **gpu_resources("train_gan"),
    script:
        f"{SCRIPTS}/train_gan.py"


ruleorder: train_gan_baseline > train_gan_hsr


rule architecture_card:
    """Parameter counts of G, D and the HSR heads of a preset (no dataset needed)."""
    output:
        report(f"{RESULTS}/hsr/arch/{{preset}}.json", category="HSR", subcategory="Architecture"),
    params:
        extractors=lambda w: list(HSR["extractors"]),
        hsr=lambda w: HSR.get("hsr", {}),
    conda:
        "../envs/environment.yaml"
    log:
        log_path("hsr", "arch_{preset}"),
    benchmark:
        bench_path("hsr", "arch_{preset}")
    resources:
        mem_mb=4000,
        runtime=10,
    script:
        f"{SCRIPTS}/architecture_card.py"

