"""Which raw datasets each preparer reads (their layouts and sources: `lead_hsr.data.layouts`).

Light on purpose (no torch, no numpy): the Snakefile imports it at parse time to wire prep rules to their raw
inputs (and to check real raw roots against `lead_hsr.data.layouts`, which also says where each dataset comes
from: OFFICIAL_SOURCES).
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
