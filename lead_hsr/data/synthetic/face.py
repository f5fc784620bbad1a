"""Procedural renderer of a face-like category with exact landmark ground truth.

A face is built in a canonical frame whose unit is the distance between the two eye centres, origin at their
midpoint, y pointing down, z pointing towards the camera. The 68 landmarks are laid out as in the iBUG 300-W
68-point markup (jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67; "left" = image left); the drawn
features are polygons and lines through those very points, so every landmark sits on its feature. The 5 MAFL
points (CelebA order) are derived from the 68: eye centres, nose tip, mouth corners.

Three levels of randomness: `FaceIdentity` (shape and colours, fixed per identity id), `FaceView` (pose,
expression, accessories, lighting, placement: one per image) and the background/noise drawn from the rng
passed to `render_face`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw

# iBUG 300-W 68-point markup (https://ibug.doc.ic.ac.uk/resources/facial-point-annotations/), 0-based ranges.
JAW = range(0, 17)
BROW_LEFT, BROW_RIGHT = range(17, 22), range(22, 27)
NOSE_BRIDGE, NOSE_BASE = range(27, 31), range(31, 36)
EYE_LEFT, EYE_RIGHT = range(36, 42), range(42, 48)
MOUTH_OUTER, MOUTH_INNER = range(48, 60), range(60, 68)
NOSE_TIP_68 = 30
MOUTH_LEFT_CORNER_68, MOUTH_RIGHT_CORNER_68 = 48, 54
OUTER_EYE_CORNERS_68 = (36, 45)  # DVE's 300W IOD normaliser (eye_kp_idxs = [36, 45])
NUM_LANDMARKS_68 = 68

# CelebA / MAFL 5-point order (list_landmarks_align_celeba.txt header): left eye, right eye, nose, left mouth
# corner, right mouth corner, where "left" is the image left, as in CelebA (lefteye_x < righteye_x).
LANDMARK_NAMES_5 = ("lefteye", "righteye", "nose", "leftmouth", "rightmouth")

HAIR_COLOURS = {  # name -> base RGB; the names map onto CelebA's Black/Brown/Blond/Gray_Hair attributes
    "black": (30, 24, 22),
    "brown": (101, 64, 36),
    "blond": (214, 181, 110),
    "gray": (160, 158, 155),
}
SKIN_TONES = np.array([(236, 200, 170), (224, 176, 140), (198, 146, 108), (150, 104, 72), (104, 70, 50)], float)

# Depth model for yaw: the face is a shallow bulge (nose sticking out) in front of the vertical yaw axis, whose
# edges lie on the axis depth. Turning the head then narrows it by cos(yaw) and shifts the bulging centre (and
# most of all the nose) towards the turn, while every feature stays inside the outline.
_DEPTH = 0.2  # bulge of the face centre towards the camera (canonical units)
_PIVOT_Z = 0.0  # depth of the yaw axis = depth of the face outline


@dataclass(frozen=True)
class FaceIdentity:
    """Everything that stays fixed across images of one identity."""

    male: bool
    young: bool
    beard: bool
    hair_colour: str
    long_hair: bool
    skin_rgb: tuple[float, float, float]
    hair_rgb: tuple[float, float, float]
    iris_rgb: tuple[float, float, float]
    lipstick_rgb: tuple[float, float, float]  # lip colour of a female-like face
    face_width_base: float  # jaw half width at eye level, before the male-like widening
    chin_base: float  # chin distance below the eye line, before the male-like lengthening
    jaw_shape: float  # 0..1 within the sex-dependent squareness range
    forehead_height: float  # top of the head above the eye line
    eye_width: float
    eye_height: float
    brow_y: float
    brow_weight: float  # 0..1 within the sex-dependent brow thickness range
    nose_length: float
    nose_half_width: float
    mouth_y: float
    mouth_half_width: float
    lip_weight: float  # 0..1 within the sex-dependent lip thickness range
    glasses_propensity: float
    bangs_propensity: float

    # Male-like faces are drawn differently (wider, longer, squarer jaw, heavier brows, thinner unpainted lips),
    # so the `male` label is visible in the image itself, not only through correlated sampling.
    @property
    def half_face_width(self) -> float:
        return self.face_width_base + (0.08 if self.male else 0.0)

    @property
    def chin_y(self) -> float:
        return self.chin_base + (0.08 if self.male else 0.0)

    @property
    def jaw_squareness(self) -> float:  # exponent < 1 flattens the chin (squarer jaw)
        return 0.45 + 0.2 * self.jaw_shape if self.male else 0.75 + 0.25 * self.jaw_shape

    @property
    def brow_thickness(self) -> float:
        return 0.08 + 0.03 * self.brow_weight if self.male else 0.045 + 0.025 * self.brow_weight

    @property
    def lip_thickness(self) -> float:
        return 0.06 + 0.03 * self.lip_weight if self.male else 0.08 + 0.04 * self.lip_weight

    @property
    def lip_rgb(self) -> tuple[int, int, int]:
        return _rgb(np.array(self.skin_rgb) * [0.85, 0.55, 0.55]) if self.male else self.lipstick_rgb


@dataclass(frozen=True)
class FaceView:
    """Everything that changes from image to image: pose, expression, accessories, light, placement."""

    centre_xy: tuple[float, float]  # pixel position of the canonical origin (midpoint between the eyes)
    eye_distance_px: float  # pixels between the eye centres = the canonical unit
    yaw: float  # radians, positive turns the face towards the image right
    roll: float  # radians, positive rotates clockwise on screen
    smile: float  # 0 (neutral) .. 1 (broad smile, mouth open)
    eyeglasses: bool
    bangs: bool
    light_angle: float  # direction of the brightness gradient
    light_strength: float  # relative brightness change across the image
    brightness: float  # global gain; <= LOW_LIGHT_BRIGHTNESS[1] is a low-light image
    noise_sigma: float  # Gaussian pixel noise (0-255 scale)
    clutter: int  # number of background shapes

    @property
    def smiling(self) -> bool:
        return self.smile >= SMILING_THRESHOLD

    @property
    def low_light(self) -> bool:
        return self.brightness <= LOW_LIGHT_BRIGHTNESS[1]


SMILING_THRESHOLD = 0.5  # smile values are drawn away from it (<= 0.35 or >= 0.6) so the label is unambiguous
LOW_LIGHT_BRIGHTNESS = (0.18, 0.35)  # gain range of low-light images (thesis Fig. 3.11 "low lighting")


@dataclass(frozen=True)
class Placement:
    """Where faces go on the canvas: ranges the per-image view is drawn from."""

    centre_x: tuple[float, float]
    centre_y: tuple[float, float]
    eye_distance_px: tuple[float, float]
    max_yaw_deg: float = 25.0
    max_roll_deg: float = 8.0
    low_light_probability: float = 0.05


@dataclass
class RenderedFace:
    image: np.ndarray  # uint8 H x W x 3
    landmarks68: np.ndarray  # float64 68 x 2, (x, y) 0-based pixel coordinates (pixel centres at integers)
    landmarks5: np.ndarray  # float64 5 x 2, CelebA order
    face_box: tuple[float, float, float, float]  # x0, y0, x1, y1 of the head (forehead to chin), clipped
    attributes: dict  # male, young, smiling, hair_colour, bangs, beard, eyeglasses, low_light


def sample_identity(rng: np.random.Generator) -> FaceIdentity:
    male = bool(rng.random() < 0.5)
    young = bool(rng.random() < 0.6)
    hair_p = [0.35, 0.35, 0.2, 0.1] if young else [0.2, 0.25, 0.1, 0.45]
    hair_colour = str(rng.choice(list(HAIR_COLOURS), p=hair_p))
    skin = SKIN_TONES[rng.integers(len(SKIN_TONES))] + rng.normal(0, 8, 3)
    hair = np.array(HAIR_COLOURS[hair_colour], float) + rng.normal(0, 10, 3)
    return FaceIdentity(
        male=male,
        young=young,
        beard=bool(male and rng.random() < 0.45),
        hair_colour=hair_colour,
        long_hair=bool(rng.random() < (0.15 if male else 0.85)),
        skin_rgb=_rgb(skin),
        hair_rgb=_rgb(hair),
        iris_rgb=_rgb(rng.choice([(60, 40, 25), (40, 80, 120), (70, 100, 60), (25, 20, 20)]) + rng.normal(0, 8, 3)),
        lipstick_rgb=_rgb(np.array([190.0, 50, 70]) + rng.normal(0, 15, 3)),
        face_width_base=rng.uniform(0.95, 1.08),
        chin_base=rng.uniform(1.45, 1.7),
        jaw_shape=rng.uniform(0.0, 1.0),
        forehead_height=rng.uniform(1.0, 1.25),
        eye_width=rng.uniform(0.36, 0.46),
        eye_height=rng.uniform(0.15, 0.2),
        brow_y=-rng.uniform(0.3, 0.38),
        brow_weight=rng.uniform(0.0, 1.0),
        nose_length=rng.uniform(0.5, 0.62),
        nose_half_width=rng.uniform(0.16, 0.24),
        mouth_y=rng.uniform(0.98, 1.1),
        mouth_half_width=rng.uniform(0.33, 0.43),
        lip_weight=rng.uniform(0.0, 1.0),
        glasses_propensity=float(rng.choice([0.03, 0.85], p=[0.8, 0.2])),
        bangs_propensity=float(rng.choice([0.05, 0.85], p=[0.75, 0.25])),
    )


def sample_view(rng: np.random.Generator, identity: FaceIdentity, placement: Placement,
                low_light: bool | None = None) -> FaceView:
    """One image's pose/expression/lighting; `low_light` forces (True/False) or samples (None) darkness."""
    if low_light is None:
        low_light = bool(rng.random() < placement.low_light_probability)
    smiling = rng.random() < 0.5
    brightness = rng.uniform(*LOW_LIGHT_BRIGHTNESS) if low_light else rng.uniform(0.8, 1.1)
    return FaceView(
        centre_xy=(rng.uniform(*placement.centre_x), rng.uniform(*placement.centre_y)),
        eye_distance_px=rng.uniform(*placement.eye_distance_px),
        yaw=math.radians(rng.uniform(-1, 1) * placement.max_yaw_deg),
        roll=math.radians(rng.uniform(-1, 1) * placement.max_roll_deg),
        smile=rng.uniform(0.6, 1.0) if smiling else rng.uniform(0.0, 0.35),
        eyeglasses=bool(rng.random() < identity.glasses_propensity),
        bangs=bool(rng.random() < identity.bangs_propensity),
        light_angle=rng.uniform(0, 2 * math.pi),
        light_strength=rng.uniform(0.0, 0.5),
        brightness=brightness,
        noise_sigma=rng.uniform(2.0, 5.0) * (1.6 if low_light else 1.0),
        clutter=int(rng.integers(3, 9)),
    )


def canonical_landmarks(identity: FaceIdentity, smile: float) -> np.ndarray:
    """68 x 3 (x, y, z) landmarks in the canonical frame (unit = eye-centre distance)."""
    f = identity
    points = np.zeros((NUM_LANDMARKS_68, 3))
    # Jaw: a half superellipse from the left temple (at eye level) through the chin to the right temple.
    phi = np.linspace(0.0, math.pi, 17)
    jaw_top = 0.08
    points[JAW, 0] = -f.half_face_width * np.cos(phi)
    points[JAW, 1] = jaw_top + (f.chin_y - jaw_top) * np.sin(phi) ** f.jaw_squareness
    # Brows: left brow outer -> inner, right brow inner -> outer (x increases along 17..26).
    u = np.linspace(0.0, 1.0, 5)
    brow_x = -0.85 + 0.7 * u
    arch = 0.08 * np.sin(math.pi * (0.3 + 0.7 * u))
    points[BROW_LEFT, 0], points[BROW_LEFT, 1] = brow_x, f.brow_y - arch
    points[BROW_RIGHT, 0], points[BROW_RIGHT, 1] = -brow_x[::-1], f.brow_y - arch[::-1]
    # Nose: bridge from between the eyes down to the tip, then the base from left to right nostril.
    points[NOSE_BRIDGE, 1] = np.linspace(0.02, f.nose_length, 4)
    points[NOSE_BASE, 0] = f.nose_half_width * np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    points[NOSE_BASE, 1] = f.nose_length + np.array([0.04, 0.07, 0.09, 0.07, 0.04])
    # Eyes: outer corner, two upper lid points, inner corner, two lower lid points (iBUG order).
    half_w, half_h = f.eye_width / 2, f.eye_height / 2
    lid_x = np.array([-half_w, -half_w / 3, half_w / 3, half_w, half_w / 3, -half_w / 3])
    lid_y = np.array([0.0, -half_h, -half_h, 0.0, half_h, half_h])
    points[EYE_LEFT, 0], points[EYE_LEFT, 1] = -0.5 + lid_x, lid_y
    # Right eye starts at its inner corner (42) and runs clockwise to the outer corner (45): mirror of left.
    points[EYE_RIGHT, 0], points[EYE_RIGHT, 1] = 0.5 - lid_x[[3, 2, 1, 0, 5, 4]], lid_y[[3, 2, 1, 0, 5, 4]]
    _place_mouth(points, f, smile)
    # Depth: a smooth bulge, plus the nose sticking out.
    points[:, 2] = _DEPTH * (1.0 - (points[:, 0] / f.half_face_width) ** 2)
    points[NOSE_BRIDGE, 2] += np.linspace(0.1, 0.45, 4)
    points[NOSE_BASE, 2] += 0.2
    return points


def _place_mouth(points: np.ndarray, f: FaceIdentity, smile: float) -> None:
    """Outer lip 48-59 and inner lip 60-67; a smile lifts the corners and opens the mouth."""
    mw, my, lip = f.mouth_half_width * (1 + 0.12 * smile), f.mouth_y, f.lip_thickness
    gap = 0.13 * max(0.0, smile - 0.45)  # mouth opening (shows teeth) only for real smiles
    outer_x = mw * np.array([-1.0, -0.6, -0.25, 0.0, 0.25, 0.6, 1.0, 0.6, 0.3, 0.0, -0.3, -0.6])
    outer_dy = np.array([0.0, -0.8, -1.0, -0.8, -1.0, -0.8, 0.0, 0.8, 1.0, 1.05, 1.0, 0.8]) * lip
    outer_dy[7:] += gap
    inner_x = mw * np.array([-0.8, -0.35, 0.0, 0.35, 0.8, 0.35, 0.0, -0.35])
    inner_dy = np.array([0.0, -0.25, -0.2, -0.25, 0.0, 0.25, 0.3, 0.25]) * lip
    inner_dy[5:] += gap
    curve = 0.14 * smile  # corners go up by `curve`, the centre stays: y_offset = -curve * (x / mw)^2
    points[MOUTH_OUTER, 0] = outer_x
    points[MOUTH_OUTER, 1] = my + outer_dy - curve * (outer_x / mw) ** 2
    points[MOUTH_INNER, 0] = inner_x
    points[MOUTH_INNER, 1] = my + inner_dy + gap / 2 - curve * (inner_x / mw) ** 2


class _Projector:
    """Canonical (x, y, z) -> image (x, y): yaw about a vertical axis, then roll, scale and translation."""

    def __init__(self, view: FaceView):
        self.cos_yaw, self.sin_yaw = math.cos(view.yaw), math.sin(view.yaw)
        cos_r, sin_r = math.cos(view.roll), math.sin(view.roll)
        self.linear = view.eye_distance_px * np.array([[cos_r, -sin_r], [sin_r, cos_r]])
        self.offset = np.asarray(view.centre_xy, float)

    def __call__(self, xyz: np.ndarray) -> np.ndarray:
        x = xyz[:, 0] * self.cos_yaw + (xyz[:, 2] - _PIVOT_Z) * self.sin_yaw
        return np.stack([x, xyz[:, 1]], axis=1) @ self.linear.T + self.offset


def landmarks_5_from_68(points68: np.ndarray) -> np.ndarray:
    """MAFL/CelebA 5 points from the 68: eye centres (mean of each eye's 6 points), nose tip, mouth corners."""
    return np.stack([
        points68[EYE_LEFT].mean(axis=0),
        points68[EYE_RIGHT].mean(axis=0),
        points68[NOSE_TIP_68],
        points68[MOUTH_LEFT_CORNER_68],
        points68[MOUTH_RIGHT_CORNER_68],
    ])


def render_face(identity: FaceIdentity, view: FaceView, width: int, height: int,
                rng: np.random.Generator) -> RenderedFace:
    """Draw one face on a `width` x `height` canvas; `rng` drives background clutter and pixel noise."""
    canvas = Image.new("RGB", (width, height), _rgb(rng.uniform(40, 220, 3)))
    draw = ImageDraw.Draw(canvas)
    draw_clutter(draw, rng, width, height, view.clutter)
    project = _Projector(view)
    canonical = canonical_landmarks(identity, view.smile)
    points = project(canonical)
    head = _head_outline(identity, canonical, project)
    px = view.eye_distance_px
    _draw_hair_back(draw, identity, head, points, px)
    _draw_head(draw, identity, view, head, points, canonical, project, px)
    image = apply_lighting(np.asarray(canvas, dtype=np.float32), view.light_angle, view.light_strength,
                           view.brightness, view.noise_sigma, rng)
    return RenderedFace(
        image=image,
        landmarks68=points,
        landmarks5=landmarks_5_from_68(points),
        face_box=_clipped_box(head, width, height),
        attributes=dict(male=identity.male, young=identity.young, smiling=view.smiling,
                        hair_colour=identity.hair_colour, bangs=view.bangs, beard=identity.beard,
                        eyeglasses=view.eyeglasses, low_light=view.low_light),
    )


def _head_outline(f: FaceIdentity, canonical: np.ndarray, project: _Projector) -> np.ndarray:
    """Closed head polygon in pixels: the jaw landmarks plus a forehead arc over the top."""
    psi = np.linspace(math.pi, 0.0, 13)[1:-1]  # from the right temple over the top to the left temple
    jaw_top_y = canonical[0, 1]
    arc = np.zeros((len(psi), 3))
    arc[:, 0] = f.half_face_width * np.cos(psi)
    arc[:, 1] = jaw_top_y - (f.forehead_height + jaw_top_y) * np.sin(psi)
    arc[:, 2] = _DEPTH * (1.0 - np.cos(psi) ** 2)
    return np.concatenate([project(canonical[JAW]), project(arc)])


def _draw_hair_back(draw, f: FaceIdentity, head: np.ndarray, points: np.ndarray, px: float) -> None:
    """Hair behind the head: a cap slightly larger than the head; long hair falls to below the chin."""
    centre = head.mean(axis=0)
    grown = centre + (head - centre) * 1.12
    if f.long_hair:
        down = points[8] - points[27]
        down = down / max(float(np.linalg.norm(down)), 1e-6)
        grown = np.concatenate([grown, [grown[0] + down * 1.6 * px, grown[16] + down * 1.6 * px]])
    draw.polygon(_pts(_hull(grown)), fill=f.hair_rgb)


def _draw_head(draw, f: FaceIdentity, view: FaceView, head: np.ndarray, points: np.ndarray, canonical: np.ndarray,
               project: _Projector, px: float) -> None:
    """Neck, skin, age lines, hair, beard, brows, eyes, nose, mouth, glasses: back to front."""
    skin = np.array(f.skin_rgb)
    neck_w = 0.55 * px
    chin = points[8]
    draw.rectangle([chin[0] - neck_w, chin[1] - 0.6 * px, chin[0] + neck_w, chin[1] + 1.2 * px], fill=_rgb(skin * 0.8))
    draw.polygon(_pts(head), fill=f.skin_rgb)
    if not f.young:
        _draw_age_lines(draw, f, canonical, points, project, px)
    _draw_hair_top(draw, f, view, canonical, project)
    if f.beard:
        beard = np.concatenate([points[2:15], project(np.array([[0.55, canonical[33, 1] + 0.08, _DEPTH],
                                                                [-0.55, canonical[33, 1] + 0.08, _DEPTH]]))])
        draw.polygon(_pts(beard), fill=_rgb(np.array(f.hair_rgb) * 0.8))
    brow_width = max(1, round(f.brow_thickness * px))
    brow_rgb = _rgb(np.array(f.hair_rgb) * 0.7)
    draw.line(_pts(points[BROW_LEFT]), fill=brow_rgb, width=brow_width)
    draw.line(_pts(points[BROW_RIGHT]), fill=brow_rgb, width=brow_width)
    _draw_eyes(draw, f, points, px)
    shadow = _rgb(skin * 0.7)
    draw.line(_pts(points[NOSE_BRIDGE]), fill=_rgb(skin * 0.82), width=max(1, round(0.04 * px)))
    draw.line(_pts(points[NOSE_BASE]), fill=shadow, width=max(1, round(0.05 * px)))
    _disc(draw, points[NOSE_TIP_68], max(1.0, 0.07 * px), shadow)
    draw.polygon(_pts(points[MOUTH_OUTER]), fill=f.lip_rgb, outline=_rgb(np.array(f.lip_rgb) * 0.7))
    inside = (245, 242, 235) if view.smiling else _rgb(np.array(f.lip_rgb) * 0.45)  # teeth show in a smile
    draw.polygon(_pts(points[MOUTH_INNER]), fill=inside)
    if view.eyeglasses:
        _draw_glasses(draw, points, px)


def _draw_age_lines(draw, f: FaceIdentity, canonical: np.ndarray, points: np.ndarray, project: _Projector,
                    px: float) -> None:
    """Older-looking faces: forehead wrinkles (hidden by bangs, drawn first) and nose-to-mouth folds."""
    colour, width = _rgb(np.array(f.skin_rgb) * 0.72), max(1, round(0.025 * px))
    for dy in (0.15, 0.25):
        y = canonical[19, 1] - dy
        draw.line(_pts(project(np.array([[-0.45, y, _DEPTH], [0.45, y, _DEPTH]]))), fill=colour, width=width)
    for nostril, corner, side in ((31, 48, -1.0), (35, 54, 1.0)):
        fold = np.array([points[nostril], points[corner]]) + np.array([side * 0.12 * px, 0.0])
        draw.line(_pts(fold), fill=colour, width=width)


def _draw_hair_top(draw, f: FaceIdentity, view: FaceView, canonical: np.ndarray, project: _Projector) -> None:
    """Hair over the top of the head down to the hairline; bangs bring a jagged fringe down to the brows."""
    side_x = f.half_face_width + 0.06
    crown_x = np.linspace(-side_x, side_x, 13)
    crown = np.stack([crown_x, -f.forehead_height - 0.08 + 0.45 * (crown_x / side_x) ** 4], axis=1)
    hairline_y = canonical[19, 1] - 0.1 if view.bangs else -0.55 * f.forehead_height - 0.1
    fringe_x = np.linspace(0.8, -0.8, 9) * f.half_face_width
    jag = 0.07 * (np.arange(9) % 2) if view.bangs else np.zeros(9)
    fringe = np.stack([fringe_x, hairline_y - jag], axis=1)
    temples = np.array([[side_x, 0.02], [-side_x, 0.02]])
    ring = np.concatenate([temples[1:], crown, temples[:1], fringe])
    depth = _DEPTH * (1.0 - np.clip(ring[:, 0] / f.half_face_width, -1, 1) ** 2)
    draw.polygon(_pts(project(np.column_stack([ring, depth]))), fill=f.hair_rgb)


def _draw_eyes(draw, f: FaceIdentity, points: np.ndarray, px: float) -> None:
    for eye in (EYE_LEFT, EYE_RIGHT):
        lids = points[eye]
        draw.polygon(_pts(lids), fill=(238, 236, 230), outline=(40, 30, 30))
        centre = lids.mean(axis=0)  # the 5-point eye landmark: the iris is drawn exactly there
        radius = max(1.0, 0.42 * f.eye_height * px)
        _disc(draw, centre, radius, f.iris_rgb)
        _disc(draw, centre, max(0.6, radius * 0.45), (10, 8, 8))


def _draw_glasses(draw, points: np.ndarray, px: float) -> None:
    rim = max(1, round(0.045 * px))
    radius = 0.3 * px
    centres = [points[EYE_LEFT].mean(axis=0), points[EYE_RIGHT].mean(axis=0)]
    for c in centres:
        c = c + _PIL_ROUNDING
        draw.ellipse([c[0] - radius, c[1] - radius * 0.8, c[0] + radius, c[1] + radius * 0.8],
                     outline=(20, 20, 25), width=rim)
    draw.line(_pts(np.array([points[39], points[42]])), fill=(20, 20, 25), width=rim)


def draw_clutter(draw, rng: np.random.Generator, width: int, height: int, count: int) -> None:
    """Random ellipses, boxes and strokes: background structure the features must learn to ignore."""
    for _ in range(count):
        colour = _rgb(rng.uniform(0, 255, 3))
        x0, x1 = sorted(rng.uniform(-0.2, 1.2, 2) * width)
        y0, y1 = sorted(rng.uniform(-0.2, 1.2, 2) * height)
        kind = rng.integers(3)
        if kind == 0:
            draw.ellipse([x0, y0, x1, y1], fill=colour)
        elif kind == 1:
            draw.rectangle([x0, y0, x1, y1], fill=colour)
        else:
            draw.line([x0, y0, x1, y1], fill=colour, width=int(rng.integers(1, 5)))


def apply_lighting(image: np.ndarray, angle: float, strength: float, brightness: float, noise_sigma: float,
                   rng: np.random.Generator) -> np.ndarray:
    """Linear brightness gradient along `angle`, a global gain and Gaussian noise; returns uint8."""
    height, width = image.shape[:2]
    xs = np.linspace(-1.0, 1.0, width, dtype=np.float32)
    ys = np.linspace(-1.0, 1.0, height, dtype=np.float32)
    gain = brightness * (1.0 + strength * (math.cos(angle) * xs[None, :] + math.sin(angle) * ys[:, None]))
    image = image * gain[:, :, None]
    image += gaussian_noise(rng, image.shape) * noise_sigma
    return np.clip(image, 0, 255).astype(np.uint8)


_NOISE_BANK_SIZE = 1 << 21
_noise_bank: np.ndarray | None = None


def gaussian_noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard-normal float32 noise of `shape`, cut from a fixed bank at an rng-chosen offset.

    Drawing fresh normals costs more than drawing the whole face; a slice of a fixed 2M-value bank is
    deterministic, independent between images (random offset) for our purposes, and ~10x cheaper."""
    global _noise_bank
    size = int(np.prod(shape))
    if size > _NOISE_BANK_SIZE // 2:
        return rng.standard_normal(shape, dtype=np.float32)
    if _noise_bank is None:
        _noise_bank = np.random.default_rng(20_260_000).standard_normal(_NOISE_BANK_SIZE, dtype=np.float32)
    start = int(rng.integers(0, _NOISE_BANK_SIZE - size))
    return _noise_bank[start:start + size].reshape(shape)


def _disc(draw, centre, radius: float, colour) -> None:
    x, y = centre[0] + _PIL_ROUNDING, centre[1] + _PIL_ROUNDING
    draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour)


def _clipped_box(points: np.ndarray, width: int, height: int) -> tuple[float, float, float, float]:
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    return (max(0.0, x0), max(0.0, y0), min(width - 1.0, x1), min(height - 1.0, y1))


def _hull(points: np.ndarray) -> np.ndarray:
    """Convex hull (monotone chain), so a polygon assembled from pieces never self-intersects."""
    pts = sorted(map(tuple, points))

    def half(seq):
        out = []
        for p in seq:
            while len(out) >= 2 and (out[-1][0] - out[-2][0]) * (p[1] - out[-2][1]) - \
                    (out[-1][1] - out[-2][1]) * (p[0] - out[-2][0]) <= 0:
                out.pop()
            out.append(p)
        return out

    lower, upper = half(pts), half(pts[::-1])
    return np.array(lower[:-1] + upper[:-1])


# Landmarks use the usual convention "pixel i has its centre at coordinate i". PIL truncates float drawing
# coordinates to integers, which would draw every feature up to 1 px up-left of its landmark (0.5 px on average);
# shifting by +0.5 turns the truncation into rounding, so features are centred on their landmarks.
_PIL_ROUNDING = 0.5


def _pts(points: np.ndarray) -> list[tuple[float, float]]:
    """Landmark-convention points -> PIL drawing coordinates."""
    return [(float(x) + _PIL_ROUNDING, float(y) + _PIL_ROUNDING) for x, y in points]


def _rgb(values) -> tuple[int, int, int]:
    r, g, b = np.clip(np.asarray(values, float), 0, 255)
    return (int(r), int(g), int(b))


def with_placement(view: FaceView, **changes) -> FaceView:
    """A copy of `view` with some fields replaced (e.g. the same face placed on an in-the-wild canvas)."""
    return replace(view, **changes)
