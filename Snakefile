# lead-hsr: one DAG from raw datasets to every table and figure of the thesis.
# Paper scale:  snakemake --profile profiles/slurm                      (config/config.yaml)
# Demo (CPU):   snakemake --profile profiles/local --configfile config/demo.yaml
# This file only wires things together; it must parse fast and never import torch (DESIGN §2.3).
import sys

sys.path.insert(0, workflow.basedir)
from lead_hsr.config import check_yaml_files, validate_config

# YAML syntax errors with file:line:column before Snakemake's own loader reads the file (it names neither)
check_yaml_files([f"{workflow.basedir}/config/config.yaml"])


configfile: f"{workflow.basedir}/config/config.yaml"


# every key, type, range and cross-key constraint, each message naming the file the bad value came from
validate_config(
    config,
    f"{workflow.basedir}/config/schema.yaml",
    config_files=[f"{workflow.basedir}/config/config.yaml", *workflow.overwrite_configfiles],
    overrides=workflow.config_settings.config,
)


include: "rules/common.smk"
include: "rules/weights.smk"
include: "rules/data.smk"
include: "rules/lead.smk"
include: "rules/landmarks.smk"
include: "rules/use_lead.smk"
include: "rules/hsr.smk"
include: "rules/gan_metrics.smk"
include: "rules/imported.smk"
include: "rules/use_gan.smk"
include: "rules/report.smk"
include: "rules/figures.smk"
include: "rules/figures_lead.smk"


rule all:
    """Every table, figure and data preview of the configuration (the default target)."""
    input:
        all_targets(),
    default_target: True
