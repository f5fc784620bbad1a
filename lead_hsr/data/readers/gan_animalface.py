"""Animal Face raw layouts. Either the official archive (Si & Zhu 2012): `Image/DogHead/*.jpg`,
`Image/CatHead/*.jpg`; or the per-class zips of the data-efficient-gans project that StyleGAN2-ADA / DiffAugment
(and the HSR authors) train on, `AnimalFace-dog.zip` / `AnimalFace-cat.zip`: images at the zip's top level
(their dataset tool extracts each zip into `datasets/<name>/` and globs `*`), unzipped here into a folder of the
zip's name: `unzip AnimalFace-dog.zip -d <root>/AnimalFace-dog`."""

from __future__ import annotations

from pathlib import Path

from lead_hsr.data.layouts import ANIMALFACE_FOLDERS, ANIMALFACE_ZIP_FOLDERS, raw_root_fix
from lead_hsr.errors import InputError

# preparer name -> (folder under the raw root, paper image count: thesis Sec. 4.3.1 "Dog (389 images)",
# "Cat (160 images)")
ANIMALFACE_CLASSES = {
    "animalface_dog": (ANIMALFACE_FOLDERS["animalface_dog"], 389),
    "animalface_cat": (ANIMALFACE_FOLDERS["animalface_cat"], 160),
}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def animalface_folders(name: str) -> list[str]:
    """Where the images of one class may be, in order of preference: the official layout, then the
    data-efficient-gans zip unzipped into a folder of its name."""
    return [ANIMALFACE_CLASSES[name][0], ANIMALFACE_ZIP_FOLDERS[name]]


def _images_in(folder: Path) -> list[Path]:
    return [path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES] if folder.is_dir() else []


def list_animalface_images(root: Path, name: str) -> list[str]:
    """Relative paths of the images of one Animal Face class (`name` is a key of ANIMALFACE_CLASSES), sorted,
    from the first of `animalface_folders` that holds images."""
    root = Path(root)
    folders = [root / folder for folder in animalface_folders(name)]
    for folder in folders:
        files = _images_in(folder)
        if files:
            return sorted(path.relative_to(root).as_posix() for path in files)
    if any(folder.is_dir() for folder in folders):
        return []  # the folder is there but empty: the image count check names what is missing
    expected = " or ".join(f"{folder}/*.jpg" for folder in folders)
    raise InputError(
        f"{root}: no Animal Face images of {name}; expected {expected}. {raw_root_fix('animalface')}"
    )
