"""Animal Face raw layout (Si & Zhu 2012): `Image/DogHead/*.jpg`, `Image/CatHead/*.jpg`."""

from __future__ import annotations

from pathlib import Path

from lead_hsr.data.layouts import ANIMALFACE_FOLDERS, raw_root_fix
from lead_hsr.errors import InputError

# preparer name -> (folder under the raw root, paper image count: thesis Sec. 4.3.1 "Dog (389 images)",
# "Cat (160 images)")
ANIMALFACE_CLASSES = {
    "animalface_dog": (ANIMALFACE_FOLDERS["animalface_dog"], 389),
    "animalface_cat": (ANIMALFACE_FOLDERS["animalface_cat"], 160),
}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def list_animalface_images(root: Path, name: str) -> list[str]:
    """Relative paths of the images of one Animal Face class (`name` is a key of ANIMALFACE_CLASSES), sorted."""
    folder = Path(root) / ANIMALFACE_CLASSES[name][0]
    if not folder.is_dir():
        raise InputError(
            f"{folder}: folder not found; expected the Animal Face layout Image/DogHead, Image/CatHead. "
            f"{raw_root_fix('animalface')}"
        )
    files = [path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(path.relative_to(root).as_posix() for path in files)
