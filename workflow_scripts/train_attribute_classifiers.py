"""Train the ALS attribute classifiers on the prepared CelebA attribute store."""
from lead_hsr.jobs import end_job, job_log
from lead_hsr.metrics.attributes import train_attribute_classifiers

with job_log(snakemake):
    summary = train_attribute_classifiers(snakemake.input[0], snakemake.output[0], snakemake.params.options)
    print("validation accuracy per attribute:", summary["val_accuracy"])
end_job()  # outputs written and closed: skip interpreter shutdown (lead_hsr.jobs.end_job)
