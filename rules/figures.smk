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
