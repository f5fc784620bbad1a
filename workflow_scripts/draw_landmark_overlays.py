"""Each image of a lead.predict folder drawn with its predicted landmarks (rules/use_lead.smk)."""
from lead_hsr.data.prepare_folder import open_images
from lead_hsr.jobs import end_job, job_log
from lead_hsr.lead.predict import IMAGES_FIX, draw_overlays, read_predictions

with job_log(snakemake):
    images = open_images(snakemake.input.images, "predict", fix=IMAGES_FIX)
    try:
        draw_overlays(read_predictions(snakemake.input.csv), images, snakemake.output[0])
    finally:
        images.close()
end_job()  # outputs written and closed: skip interpreter shutdown (lead_hsr.jobs.end_job)
