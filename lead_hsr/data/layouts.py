"""Which files and folders define each raw dataset's official layout, per preparer: their one home.

The readers take their file names from here, and the Snakefile checks a real raw root against them when it builds
the DAG (`RawRoots.check`, called by rules/common.smk `raw_inputs`): a missing dataset fails at `snakemake -n`,
before any job is submitted, naming the config key (`raw.<name>.root`), the config file, the expected layout and
the official source, and every other store of the config that lacks raw data too.
Only the files that define a layout are checked (annotation lists, image folders), never every image.
Light on purpose (no numpy, no torch): the Snakefile imports it at parse time.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from lead_hsr.errors import InputError

CELEBA_SUBFOLDERS = ("", "Anno", "Eval", "Img")  # files sit in the root or in the official Drive sub-folders
MAFL_SPLIT_FILES = {"train": "training.txt", "test": "testing.txt"}
AFLW_M_TEST_FILE = "MTFL/testing.txt"
AFLW_M_TRAIN_FILE = "aflw_cropped/facedata_cropped.csv"
AFLW_R_IMAGE_DIR = "output"  # DVE: self.subdir = os.path.join(root, 'output')
W300_BOX_DIR = "Bounding Boxes"
# split -> (box file subset name, image folder), in DVE's order
W300_SUBSETS = {
    "train": [("afw", "afw"), ("helen_trainset", "helen/trainset"), ("lfpw_trainset", "lfpw/trainset")],
    "test": [("helen_testset", "helen/testset"), ("lfpw_testset", "lfpw/testset"), ("ibug", "ibug")],
}
FFHQ_IMAGE_DIR = "images1024x1024"  # official folder name (NVlabs/ffhq-dataset)
LSUN_CHURCH_LMDB = "church_outdoor_train_lmdb"  # folder name of the official church_outdoor_train_lmdb.zip
CUB_FOLDER = "CUB_200_2011"  # top folder of the official CUB_200_2011.tgz
CUB_IMAGE_DIR = "images"
ANIMALFACE_FOLDERS = {"animalface_dog": "Image/DogHead", "animalface_cat": "Image/CatHead"}
# the data-efficient-gans per-class zips (images at the top level), each unzipped into a folder of the zip's name
ANIMALFACE_ZIP_FOLDERS = {"animalface_dog": "AnimalFace-dog", "animalface_cat": "AnimalFace-cat"}


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


@dataclass(frozen=True)
class Required:
    """One file (or folder) of a layout; any of `paths`, relative to the raw root, satisfies it."""

    paths: tuple[str, ...]
    folder: bool = False
    shown: str | None = None  # how messages name it when the alternatives are many

    def found(self, root: Path) -> bool:
        return any((root / path).is_dir() if self.folder else (root / path).is_file() for path in self.paths)

    def __str__(self) -> str:
        if self.shown:
            return self.shown
        shown = [path + "/" if self.folder else path for path in self.paths]
        return shown[0] if len(shown) == 1 else " or ".join(shown)


def _file(*paths: str) -> Required:
    return Required(paths)


def _folder(*paths: str) -> Required:
    return Required(paths, folder=True)


def _celeba(name: str, folder: bool = False) -> Required:
    subs = ", ".join(f"{sub}/" for sub in CELEBA_SUBFOLDERS if sub)
    return Required(tuple(Path(sub, name).as_posix() for sub in CELEBA_SUBFOLDERS), folder,
                    f"{name}{'/' if folder else ''} (in the root or in {subs})")


def _either_root_or(sub: str, name: str, folder: bool = False) -> Required:
    """A file the reader finds in the root or in the official archive's top folder `sub`."""
    return Required((name, f"{sub}/{name}"), folder, f"{name}{'/' if folder else ''} (in the root or in {sub}/)")


_MAFL = tuple(_file(name) for name in MAFL_SPLIT_FILES.values())
_ALIGNED = (_celeba("list_landmarks_align_celeba.txt"), _celeba("img_align_celeba", folder=True))

# preparer -> raw dataset (key of config `raw`) -> what must exist under its root
PREPARER_LAYOUTS: dict[str, dict[str, tuple[Required, ...]]] = {
    "celeba_ssl": {"celeba": (_celeba("list_eval_partition.txt"), *_ALIGNED), "mafl": _MAFL},
    "mafl": {"celeba": _ALIGNED, "mafl": _MAFL},
    "mafl_unaligned": {"celeba": (_celeba("list_landmarks_celeba.txt"), _celeba("list_bbox_celeba.txt"),
                                  _celeba("img_celeba", folder=True)), "mafl": _MAFL},
    "aflw_m": {"aflw_m": (_file(AFLW_M_TEST_FILE), _file(AFLW_M_TRAIN_FILE))},
    "aflw_r": {"aflw_r": (*(_file(f"aflw_{split}_{kind}") for split in ("train", "test")
                            for kind in ("images.txt", "keypoints.mat")), _folder(AFLW_R_IMAGE_DIR))},
    # the box files list every image (afw/, helen/..., ibug/ hold them with their .pts)
    "w300": {"w300": tuple(_file(f"{W300_BOX_DIR}/bounding_boxes_{subset}.mat")
                           for subsets in W300_SUBSETS.values() for subset, _ in subsets)},
    "celeba_attributes": {"celeba": (_celeba("list_eval_partition.txt"), _celeba("list_attr_celeba.txt"),
                                     _celeba("img_align_celeba", folder=True))},
    "ffhq": {"ffhq": (_folder(FFHQ_IMAGE_DIR),)},
    "lsun_church": {"lsun_church": (_either_root_or(LSUN_CHURCH_LMDB, "data.mdb"),)},
    **{name: {"animalface": (_folder(ANIMALFACE_FOLDERS[name], ANIMALFACE_ZIP_FOLDERS[name]),)}
       for name in ANIMALFACE_FOLDERS},
    "cub": {"cub": (_either_root_or(CUB_FOLDER, "images.txt"), _either_root_or(CUB_FOLDER, "bounding_boxes.txt"),
                    _either_root_or(CUB_FOLDER, CUB_IMAGE_DIR, folder=True))},
}


def missing_layout(preparer: str, dataset: str, root) -> list[Required]:
    """What preparer `preparer` needs from raw dataset `dataset` and `root` lacks (everything if no root)."""
    root = Path(root)
    required = PREPARER_LAYOUTS[preparer][dataset]
    return list(required) if not root.is_dir() else [entry for entry in required if not entry.found(root)]


def raw_root_fix(dataset: str, config_file: str | None = None) -> str:
    """How to point the workflow at a dataset: the config key and file, and the official source."""
    where = config_file or "the config file you run with (config/config.yaml unless --configfile overrides it)"
    return (f"Fix: get {OFFICIAL_SOURCES.get(dataset, dataset)}; set `raw.{dataset}.root` in {where} to the "
            f"directory holding it.")


def missing_raw_message(dataset: str, root, preparer: str, store: str, missing: list[Required],
                        config_file: str) -> str:
    """The DAG-time error of one raw dataset: root, config key and file, what is missing, layout and source."""
    what = "does not exist" if not Path(root).is_dir() else "lacks " + "; ".join(map(str, missing))
    layout = ", ".join(map(str, PREPARER_LAYOUTS[preparer][dataset]))
    return (f"{root}: raw dataset '{dataset}' (config key `raw.{dataset}.root`, set in {config_file}) {what}. "
            f"The prepared store '{store}' (preparer {preparer}) needs this layout under that root: {layout}. "
            f"{raw_root_fix(dataset, config_file)}")


# Set to 1 by the test suite (tests/conftest.py) to plan paper DAGs without their datasets; a real run never sets it.
SKIP_RAW_CHECK_ENV = "LEAD_HSR_SKIP_RAW_CHECK"


@dataclass(frozen=True)
class RawRoots:
    """The raw data of a configuration's prepared stores, as the DAG sees it (rules/common.smk builds it once)."""

    preparers: Mapping[str, str]  # every prepared store of the config -> its preparer
    prepared: Callable[[str], str]  # prepared store -> its directory (an existing store needs no raw data)
    root: Callable[[str], str]  # raw dataset -> its root (`raw.<name>.root`, or the synthetic tree)
    synthetic: Collection[str]  # raw datasets the DAG renders itself: outputs of a job, not checked
    config_file: Callable[[str], str]  # raw dataset -> the config file that sets `raw.<name>.root`

    def problems(self, store: str) -> list[str]:
        """One message per real raw root of `store` that lacks the files defining its layout (none for a store of
        your own data: its images are inputs of the job that prepares it)."""
        preparer = self.preparers[store]
        return [missing_raw_message(d, self.root(d), preparer, store, missing, self.config_file(d))
                for d in PREPARER_LAYOUTS.get(preparer, {}) if d not in self.synthetic
                if (missing := missing_layout(preparer, d, self.root(d)))]

    def check(self, store: str) -> None:
        """Raise `InputError` if `store` cannot be prepared (the DAG is being built: `snakemake -n` included, before
        any submission), naming every other unprepared store of the config that lacks raw data too."""
        if os.environ.get(SKIP_RAW_CHECK_ENV) == "1" or Path(self.prepared(store)).exists():
            return
        problems = self.problems(store)
        if problems:
            others = [s for s in self.preparers if s != store and not Path(self.prepared(s)).exists()
                      and self.problems(s)]
            also = f"\nOther prepared stores of this config lack raw data too: {', '.join(others)}." if others else ""
            raise InputError("\n".join(problems) + also)


# ---- folders of your own images (prepared stores, Fig. 4.11's photos): listed at DAG build, so they are inputs ----
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
GENERATED_SOURCE = "generated"  # hsr.figures.edits.source: sampled latents (the thesis's), not a folder of photos


def is_image_name(name: str) -> bool:
    """A path (relative, "/"-separated) with an image extension, in no hidden folder (".x", macOS' __MACOSX)."""
    parts = name.split("/")
    hidden = any(part.startswith(".") or part == "__MACOSX" for part in parts)
    return not hidden and name.lower().endswith(IMAGE_EXTENSIONS)


def image_files(folder, setting: str) -> list[Path]:
    """The image files under `folder` (recursively, sorted; hidden files and non-images ignored); InputError
    naming `setting` (the config key or option that gave the folder) when it is no folder or holds no image."""
    folder = Path(folder)
    fix = f"Fix: set {setting} to a folder of {'/'.join(IMAGE_EXTENSIONS)} images."
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder ({setting}). {fix}")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and is_image_name(p.relative_to(folder).as_posix()))
    if not files:
        raise InputError(f"{folder}: no image files found ({setting}). {fix}")
    return files


def source_photos(source: str, setting: str) -> list[Path]:
    """The photos of an image source: none for GENERATED_SOURCE, else the image files of the folder it names."""
    return [] if source == GENERATED_SOURCE else image_files(source, setting)
