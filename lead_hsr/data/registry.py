"""Which raw datasets each preparer reads, and where each raw dataset comes from.

Light on purpose (no torch, no numpy): the Snakefile imports it at parse time to wire prep rules to their raw
inputs (and to check real raw roots against `lead_hsr.data.layouts`), and error messages use OFFICIAL_SOURCES
to tell the user where to get a missing dataset.
"""

from lead_hsr.data.layouts import PREPARER_LAYOUTS

# preparer name -> raw datasets (keys of config `raw` / `synthetic.datasets`) it reads (layouts: data/layouts.py)
PREPARER_INPUTS = {preparer: list(datasets) for preparer, datasets in PREPARER_LAYOUTS.items()}

# Preparers of a user's own image collection (lead_hsr.data.prepare_folder): they read the paths in the store's
# own config entry (`prepared.<store>.<key>`, these keys; landmarks and exclude optional), not a raw dataset.
OWN_DATA_PREPARERS = {"image_folder": ("images", "landmarks", "exclude"), "image_folder_gan": ("images",)}

# Synthetic raw datasets built from another synthetic dataset (MAFL's lists name CelebA files).
SYNTHETIC_DEPENDS = {"mafl": "celeba"}

RAW_DATASETS = ("celeba", "mafl", "aflw_m", "aflw_r", "w300", "ffhq", "lsun_church", "animalface", "cub")

# Where a user gets each raw dataset (named in "missing file" errors).
OFFICIAL_SOURCES = {
    "celeba": "CelebA, https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (img_align_celeba, img_celeba, Anno/*, Eval/list_eval_partition.txt)",
    "mafl": "MAFL split lists (training.txt, testing.txt), https://github.com/zhzhanp/TCDCN-face-alignment (MAFL), as used by DVE",
    "aflw_m": "MTFL, https://mmlab.ie.cuhk.edu.hk/projects/TCDCN.html, and the aflw_cropped crops distributed with DVE (https://github.com/jamt9000/DVE)",
    "aflw_r": "AFLW_R (aflw_{train,test}_images.txt, aflw_{train,test}_keypoints.mat) distributed with DVE (https://github.com/jamt9000/DVE)",
    "w300": "300-W, https://ibug.doc.ic.ac.uk/resources/300-W/ (AFW, HELEN, LFPW, IBUG + Bounding Boxes)",
    "ffhq": "FFHQ, https://github.com/NVlabs/ffhq-dataset (images1024x1024)",
    "lsun_church": "LSUN church_outdoor_train_lmdb, https://github.com/fyu/lsun",
    "animalface": "Animal Face dataset (Si & Zhu 2012), https://vcla.stat.ucla.edu/people/zhangzhang-si/HiT/AnimalFace.zip (Image/DogHead, Image/CatHead), or the dog/cat zips StyleGAN2-ADA and the HSR authors train on, https://data-efficient-gans.mit.edu/datasets/AnimalFace-dog.zip and AnimalFace-cat.zip, each unzipped into a folder of its name (unzip AnimalFace-dog.zip -d <root>/AnimalFace-dog)",
    "cub": "CUB-200-2011, https://www.vision.caltech.edu/datasets/cub_200_2011/",
}
