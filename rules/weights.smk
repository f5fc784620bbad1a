# Pretrained weights as files of the DAG. Every job that loads one declares its cache file as an input (unless the
# config selects a stand-in; helpers in rules/common.smk). The configured weights the cache lacks are the outputs
# of ONE fetch job, run on the login node (compute nodes are often offline): without internet it fails at once,
# naming every missing weight, and no job that needs one can start. With every weight present nothing is planned.

MISSING_WEIGHTS = [name for name in configured_weights() if not Path(weight_files(name)[0]).is_file()]


rule fetch_weights:
    """Download the configured pretrained weights the cache lacks (a localrule: it runs on the login node)."""
    output:
        weight_files(*MISSING_WEIGHTS),
    params:
        names=MISSING_WEIGHTS,
        cache=lambda w, output: weights_cache_of(output),
    conda:
        "../envs/environment.yaml"
    log:
        log_path("fetch_weights"),
    priority: 100
    script:
        f"{SCRIPTS}/fetch_weights.py"
