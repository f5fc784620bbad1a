# Using a trained network (docs/use_gan.md): `snakemake <results>/hsr/generate/<run>/<product>` trains or imports
# the network first, then writes the product with `python -m lead_hsr.gan.generate`'s code. <run> is a training
# run's path (dataset~../aug~../plr~../hsr~../hsr_levels~..) or imported~<name> (hsr.imported); seeds, truncation
# and the rest come from config `hsr.generate` (each key optional; the command's defaults otherwise).

wildcard_constraints:
    gen_run="dataset~[^/]+/aug~[^/]+/plr~[^/]+/hsr~[^/]+/hsr_levels~[^/]+|imported~[^/]+",
    video_format="mp4|gif",


rule generate_images:
    """seed%04d.png per seed of hsr.generate.images (truncation, noise mode as the official generate.py)."""
    input:
        network=generated_network,
    output:
        directory(f"{GENERATED}/images"),
    params:
        product="images",
        options=HSR.get("generate", {}),
    conda:
        "../envs/environment.yaml"
    log:
        generate_log("images"),
    benchmark:
        generate_bench("images"),
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        f"{SCRIPTS}/generate.py"


rule generate_grid:
    """grid.png of the seeds of hsr.generate.grid."""
    input:
        network=generated_network,
    output:
        f"{GENERATED}/grid.png",
    params:
        product="grid",
        options=HSR.get("generate", {}),
    conda:
        "../envs/environment.yaml"
    log:
        generate_log("grid"),
    benchmark:
        generate_bench("grid"),
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        f"{SCRIPTS}/generate.py"


rule generate_truncation:
    """truncation.png: a row per seed, a column per truncation psi (hsr.generate.truncation)."""
    input:
        network=generated_network,
    output:
        f"{GENERATED}/truncation.png",
    params:
        product="truncation",
        options=HSR.get("generate", {}),
    conda:
        "../envs/environment.yaml"
    log:
        generate_log("truncation"),
    benchmark:
        generate_bench("truncation"),
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        f"{SCRIPTS}/generate.py"


rule generate_mixing:
    """Style mixing as the official style_mixing.py: <row>-<col>.png and grid.png (hsr.generate.mixing)."""
    input:
        network=generated_network,
    output:
        directory(f"{GENERATED}/mixing"),
    params:
        product="mixing",
        options=HSR.get("generate", {}),
    conda:
        "../envs/environment.yaml"
    log:
        generate_log("mixing"),
    benchmark:
        generate_bench("mixing"),
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        f"{SCRIPTS}/generate.py"


rule generate_video:
    """interpolation.mp4 (imageio-ffmpeg) or .gif (Pillow) along W lines through hsr.generate.video's seeds."""
    input:
        network=generated_network,
    output:
        f"{GENERATED}/interpolation.{{video_format}}",
    params:
        product="video",
        options=HSR.get("generate", {}),
    conda:
        "../envs/environment.yaml"
    log:
        generate_log("video_{video_format}"),
    benchmark:
        generate_bench("video_{video_format}"),
    resources:
        mem_mb=4000,
        runtime=60,
    script:
        f"{SCRIPTS}/generate.py"
