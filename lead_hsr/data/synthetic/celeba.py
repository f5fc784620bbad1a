"""CelebA and MAFL raw layouts from the face renderer.

CelebA root: `img_align_celeba/NNNNNN.jpg` (178x218), `img_celeba/NNNNNN.jpg` (the same faces in the wild),
`list_landmarks_align_celeba.txt`, `list_landmarks_celeba.txt`, `list_bbox_celeba.txt`, `list_eval_partition.txt`,
`identity_CelebA.txt`, `list_attr_celeba.txt`. MAFL root: `training.txt`, `testing.txt` (CelebA file names).
Landmark values are integer 0-based pixel positions, as in CelebA (DVE uses them without a -1 shift).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from lead_hsr.data.synthetic.common import (atomic_directory, check_counts, image_rng, save_jpeg, write_manifest,
                                            write_text)
from lead_hsr.data.synthetic.face import (FaceIdentity, FaceView, Placement, render_face, sample_identity,
                                          sample_view, with_placement)
from lead_hsr.errors import InputError

CELEBA_SPLITS = ("train", "val", "test")  # list_eval_partition.txt values 0, 1, 2
MAFL_SPLITS = ("train", "test")
MAFL_SOURCE_PARTITION = 0  # synthetic MAFL train and test images both come from CelebA's training partition
ALIGNED_SIZE = (178, 218)  # width, height of img_align_celeba images
# CelebA's alignment puts the eyes near (69, 109) and (106, 113) (row 000001 of list_landmarks_align_celeba.txt):
# mid-eye ~ (88, 111), eye distance ~ 37 px. The protocol crop (top=30, 178x178) then keeps the whole face.
# We draw eye distances of 37-45 px (21-25% of the crop width): the demo prototype found faces below ~20-25% of
# the width roughly doubled the landmark error (DESIGN 4.4), and real CelebA eye distances spread this much.
ALIGNED_PLACEMENT = Placement(centre_x=(85.0, 91.0), centre_y=(107.0, 115.0), eye_distance_px=(37.0, 45.0),
                              max_yaw_deg=25.0, max_roll_deg=5.0)
IMAGES_PER_IDENTITY = 20  # CelebA: 202,599 images of 10,177 identities
LANDMARK_HEADER = "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y"
BBOX_HEADER = "image_id x_1 y_1 width height"
BBOX_MARGIN = 0.12  # in-the-wild boxes are a little looser than the head outline, like CelebA's

# The 40 attributes of list_attr_celeba.txt, in the official column order.
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips", "Big_Nose",
    "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses",
    "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache",
    "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks",
    "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick",
    "Wearing_Necklace", "Wearing_Necktie", "Young",
)


def celeba_name(index: int) -> str:
    """1-based image number -> CelebA file name."""
    return f"{index:06d}.jpg"


def celeba_attributes(identity: FaceIdentity, view: FaceView) -> dict[str, int]:
    """+1/-1 per CelebA attribute, derived from what the renderer actually draws (-1 for what it never draws)."""
    drawn = {
        "Male": identity.male, "Young": identity.young, "Smiling": view.smiling,
        "Mouth_Slightly_Open": view.smiling,  # a smile >= SMILING_THRESHOLD opens the mouth (teeth drawn)
        "High_Cheekbones": view.smiling,
        "Black_Hair": identity.hair_colour == "black", "Brown_Hair": identity.hair_colour == "brown",
        "Blond_Hair": identity.hair_colour == "blond", "Gray_Hair": identity.hair_colour == "gray",
        "Bangs": view.bangs, "Eyeglasses": view.eyeglasses,
        "No_Beard": not identity.beard, "Goatee": identity.beard, "Mustache": identity.beard,
        "Sideburns": identity.beard,
        "Wearing_Lipstick": not identity.male, "Heavy_Makeup": not identity.male, "Attractive": identity.young,
        "Straight_Hair": identity.long_hair, "Pale_Skin": float(np.mean(identity.skin_rgb)) > 205,
        "Big_Lips": identity.lip_thickness > 0.095, "Big_Nose": identity.nose_half_width > 0.215,
        "Bushy_Eyebrows": identity.brow_thickness > 0.09, "Chubby": identity.half_face_width > 1.1,
        "Narrow_Eyes": identity.eye_height < 0.16, "Oval_Face": identity.jaw_squareness > 0.85,
        "Pointy_Nose": identity.nose_length > 0.59, "Bags_Under_Eyes": not identity.young,
    }
    return {name: 1 if drawn.get(name, False) else -1 for name in CELEBA_ATTRIBUTES}


def _partition(counts: dict[str, int]) -> list[int]:
    """Partition code (0/1/2) of each image in file order: CelebA's partitions are contiguous blocks."""
    return [code for code, split in enumerate(CELEBA_SPLITS) for _ in range(counts[split])]


def _identities(partition: list[int], seed: int) -> list[int]:
    """Identity id per image; identity pools are disjoint across partitions, as in CelebA."""
    ids, next_id = [], 1
    for code in range(len(CELEBA_SPLITS)):
        members = [i for i, c in enumerate(partition) if c == code]
        pool = max(1, math.ceil(len(members) / IMAGES_PER_IDENTITY))
        rng = image_rng(seed, f"celeba/identity-assignment/{code}", 0)
        # every identity of the pool gets at least one image (when there are enough images), the rest at random
        choice = np.concatenate([np.arange(pool), rng.integers(0, pool, max(0, len(members) - pool))])[: len(members)]
        ids.extend(int(next_id + c) for c in rng.permutation(choice))
        next_id += pool
    return ids


def _wild_view(rng: np.random.Generator, view: FaceView, width: int, height: int) -> FaceView:
    """The same face (pose, expression, light) placed freely on an in-the-wild canvas, with more roll."""
    eye_distance = rng.uniform(0.14, 0.24) * width
    return with_placement(view, centre_xy=(rng.uniform(0.35, 0.65) * width, rng.uniform(0.35, 0.55) * height),
                          eye_distance_px=eye_distance, roll=view.roll + math.radians(rng.uniform(-12, 12)))


def _fmt_points(points: np.ndarray) -> str:
    return " ".join(f"{int(round(v)):4d}" for v in points.reshape(-1))


def write_celeba(root: Path, counts: dict, seed: int, image_size: int | None = None) -> dict[str, int]:
    counts = check_counts("celeba", counts, CELEBA_SPLITS)
    if image_size is not None:
        raise InputError("synthetic dataset 'celeba': image_size must be null; img_align_celeba is 178x218 by "
                         "definition of the CelebA alignment protocol. Fix: remove image_size for 'celeba'.")
    partition = _partition(counts)
    identities = _identities(partition, seed)
    rows = {key: [] for key in ("align", "wild", "bbox", "partition", "identity", "attr")}
    with atomic_directory(root) as out:
        for i, (code, identity_id) in enumerate(zip(partition, identities), start=1):
            name = celeba_name(i)
            identity = sample_identity(image_rng(seed, "celeba/identity", identity_id))
            rng = image_rng(seed, "celeba/image", i)
            view = sample_view(rng, identity, ALIGNED_PLACEMENT)
            aligned = render_face(identity, view, *ALIGNED_SIZE, rng)
            save_jpeg(out / "img_align_celeba" / name, aligned.image)
            width = int(rng.integers(160, 240))
            height = int(width * rng.uniform(1.0, 1.3))
            wild = render_face(identity, _wild_view(rng, view, width, height), width, height, rng)
            save_jpeg(out / "img_celeba" / name, wild.image)
            rows["align"].append(f"{name} {_fmt_points(aligned.landmarks5)}")
            rows["wild"].append(f"{name} {_fmt_points(wild.landmarks5)}")
            rows["bbox"].append(f"{name} {_fmt_box(wild.face_box, width, height)}")
            rows["partition"].append(f"{name} {code}")
            rows["identity"].append(f"{name} {identity_id}")
            attributes = celeba_attributes(identity, view)
            rows["attr"].append(f"{name} " + " ".join(f"{attributes[a]:2d}" for a in CELEBA_ATTRIBUTES))
        n = str(len(partition))
        write_text(out / "list_landmarks_align_celeba.txt", [n, LANDMARK_HEADER, *rows["align"]])
        write_text(out / "list_landmarks_celeba.txt", [n, LANDMARK_HEADER, *rows["wild"]])
        write_text(out / "list_bbox_celeba.txt", [n, BBOX_HEADER, *rows["bbox"]])
        write_text(out / "list_eval_partition.txt", rows["partition"])
        write_text(out / "identity_CelebA.txt", rows["identity"])
        write_text(out / "list_attr_celeba.txt", [n, " ".join(CELEBA_ATTRIBUTES) + " ", *rows["attr"]])
        write_manifest(out, "celeba", seed, image_size, counts)
    return counts


def _fmt_box(box, width: int, height: int) -> str:
    """x_1 y_1 width height (integers) of the head box grown by BBOX_MARGIN, clipped to the image."""
    x0, y0, x1, y1 = box
    mx, my = BBOX_MARGIN * (x1 - x0), BBOX_MARGIN * (y1 - y0)
    x0, y0 = max(0, int(round(x0 - mx))), max(0, int(round(y0 - my)))
    x1, y1 = min(width - 1, int(round(x1 + mx))), min(height - 1, int(round(y1 + my)))
    return f"{x0:4d} {y0:4d} {x1 - x0 + 1:4d} {y1 - y0 + 1:4d}"


def read_partition(celeba_root: Path) -> dict[str, int]:
    """CelebA file name -> partition code, from an existing list_eval_partition.txt."""
    path = Path(celeba_root) / "list_eval_partition.txt"
    if not path.is_file():
        raise InputError(f"{path}: not found; the synthetic MAFL lists are drawn from a synthetic CelebA. "
                         f"Fix: write the 'celeba' synthetic dataset first (write_all does it in order).")
    partition = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise InputError(f"{path}:{number}: expected '<file> <0|1|2>', got {line!r}. Fix: regenerate CelebA.")
        partition[fields[0]] = int(fields[1])
    return partition


def write_mafl(root: Path, counts: dict, seed: int, celeba_root: Path, image_size: int | None = None) -> dict[str, int]:
    """MAFL lists: disjoint training and testing images drawn from CelebA partition 0, each list sorted.

    Drawing both from the CelebA training partition makes "SSL set = partition 0 minus every MAFL image"
    (DESIGN 4.1) a real exclusion for test images too: a preparer that forgot it would train on test faces and
    show it in its counts (synthetic SSL count = celeba train - mafl train - mafl test)."""
    counts = check_counts("mafl", counts, MAFL_SPLITS)
    if image_size is not None:
        raise InputError("synthetic dataset 'mafl': image_size must be null (MAFL is lists of CelebA files).")
    partition = read_partition(celeba_root)
    pool = sorted(name for name, code in partition.items() if code == MAFL_SOURCE_PARTITION)
    wanted = counts["train"] + counts["test"]
    if wanted > len(pool):
        raise InputError(f"synthetic dataset 'mafl': {wanted} images requested (train + test) but the synthetic "
                         f"CelebA at {celeba_root} has only {len(pool)} images in partition {MAFL_SOURCE_PARTITION}. "
                         f"Fix: raise the CelebA train count or lower the MAFL counts in the synthetic data config.")
    chosen = image_rng(seed, "mafl", 0).permutation(pool)[:wanted].tolist() if wanted else []
    with atomic_directory(root) as out:
        write_text(out / "training.txt", sorted(chosen[: counts["train"]]))
        write_text(out / "testing.txt", sorted(chosen[counts["train"]:]))
        write_manifest(out, "mafl", seed, image_size, counts)
    return counts
