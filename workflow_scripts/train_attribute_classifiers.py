"""Train the ALS attribute classifiers on the prepared CelebA attribute store."""
from lead_hsr.jobs import job_log
from lead_hsr.metrics.attributes import train_attribute_classifiers

with job_log(snakemake):
    summary = train_attribute_classifiers(snakemake.input[0], snakemake.output[0], snakemake.params.options)
    print("validation accuracy per attribute:", summary["val_accuracy"])
