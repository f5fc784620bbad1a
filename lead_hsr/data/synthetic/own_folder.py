"""A stand-in for a user's own collection: a plain folder of synthetic animal faces (the AnimalFace renderer)
of mixed sizes, plus a landmark CSV (`file,x1,y1,...,x4,y4`: eyes, nose tip, mouth end) for some of them.

    python -m lead_hsr.data.synthetic.own_folder demo_data/own/animals --count 400 --annotated 160

writes `<root>/images/{cat,dog}/*.jpg` and `<root>/landmarks.csv` (the worked example of config/examples/).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lead_hsr.data.synthetic.common import atomic_directory, image_rng, save_jpeg, write_text
from lead_hsr.data.synthetic.scenes import ANIMAL_FACE_LANDMARKS, ANIMAL_KINDS, render_animal_face_landmarks

SIZES = (64, 80)  # alternating image sides: a collection of mixed sizes


def write_animal_folder(root: Path, count: int, seed: int = 0, annotated: int | None = None,
                        sizes: tuple[int, ...] = SIZES) -> dict[str, int]:
    """`count` images (cats and dogs alternating) under `root/images`, the first `annotated` (default all) in
    `root/landmarks.csv`, in pixels of each image; returns {"images": ..., "annotated": ...}."""
    annotated = count if annotated is None else min(annotated, count)
    header = "file," + ",".join(f"{name}_x,{name}_y" for name in ANIMAL_FACE_LANDMARKS)
    rows = []
    with atomic_directory(Path(root)) as out:
        for index in range(count):
            kind = ANIMAL_KINDS[index % len(ANIMAL_KINDS)]
            image, landmarks = render_animal_face_landmarks(image_rng(seed, f"own/{kind}", index), kind,
                                                            sizes[index % len(sizes)])
            file = f"{kind}/{kind}_{index:04d}.jpg"
            save_jpeg(out / "images" / file, image)
            if index < annotated:
                rows.append(file + "," + ",".join(f"{value:.2f}" for value in landmarks.ravel()))
        write_text(out / "landmarks.csv", [header, *rows])
    return {"images": count, "annotated": annotated}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--annotated", type=int, default=160)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(write_animal_folder(args.root, args.count, args.seed, args.annotated))


if __name__ == "__main__":
    main()
