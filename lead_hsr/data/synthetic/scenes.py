"""Simpler procedural categories for the GAN datasets: church-like buildings, dog/cat faces, birds.

Each has a recognisable layout (so a GAN has structure to learn) with per-image variation in shape, colour,
position, background clutter, lighting and noise. Birds come with their bounding box; animal faces can come with
4 landmarks (`render_animal_face_landmarks`: eyes, nose tip, mouth end), for own-data landmark tests.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from lead_hsr.data.synthetic.face import _pts, _rgb, apply_lighting, draw_clutter

ANIMAL_KINDS = ("dog", "cat")
FUR_COLOURS = ((210, 140, 70), (150, 150, 150), (40, 35, 32), (235, 230, 220), (120, 80, 50), (200, 180, 140))
BIRD_SPECIES = {  # CUB-style class folder -> (body RGB, wing RGB, beak RGB)
    "001.Synthetic_Red_Finch": ((200, 40, 40), (120, 20, 20), (240, 200, 60)),
    "002.Synthetic_Blue_Jay": ((60, 110, 210), (240, 240, 250), (30, 30, 30)),
    "003.Synthetic_Yellow_Warbler": ((235, 210, 50), (150, 140, 40), (90, 70, 40)),
    "004.Synthetic_Gray_Catbird": ((120, 120, 125), (60, 60, 65), (20, 20, 20)),
    "005.Synthetic_Green_Parakeet": ((70, 170, 80), (30, 100, 60), (230, 120, 40)),
}


def render_church(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A church-like building: nave with a pitched roof, a tower with a spire, arched windows, a door."""
    sky_top, sky_bottom = rng.uniform([60, 100, 160], [150, 190, 250]), rng.uniform([150, 170, 190], [230, 230, 250])
    sky = np.linspace(sky_top, sky_bottom, height, dtype=np.float32)[:, None, :].repeat(width, axis=1)
    canvas = Image.fromarray(sky.astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(0, 4))):  # clouds
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, 0.4 * height), rng.uniform(0.05, 0.15) * width
        draw.ellipse([cx - 2 * r, cy - r, cx + 2 * r, cy + r], fill=_rgb(rng.uniform(220, 255, 3)))
    ground_y = rng.uniform(0.75, 0.9) * height
    draw.rectangle([0, ground_y, width, height], fill=_rgb(rng.uniform([40, 90, 30], [110, 160, 80])))
    wall = rng.uniform([150, 130, 110], [235, 225, 210])
    roof = rng.uniform([60, 40, 30], [150, 90, 80])
    nave_w, nave_h = rng.uniform(0.35, 0.55) * width, rng.uniform(0.2, 0.32) * height
    nave_x = rng.uniform(0.05, 0.95 - nave_w / width) * width
    tower_w, tower_h = nave_w * rng.uniform(0.25, 0.4), nave_h * rng.uniform(1.6, 2.4)
    tower_left = bool(rng.random() < 0.5)
    tower_x = nave_x - 0.6 * tower_w if tower_left else nave_x + nave_w - 0.4 * tower_w
    draw.rectangle([nave_x, ground_y - nave_h, nave_x + nave_w, ground_y], fill=_rgb(wall))
    draw.polygon([(nave_x - 4, ground_y - nave_h), (nave_x + nave_w / 2, ground_y - nave_h - 0.6 * nave_w * 0.5),
                  (nave_x + nave_w + 4, ground_y - nave_h)], fill=_rgb(roof))
    draw.rectangle([tower_x, ground_y - tower_h, tower_x + tower_w, ground_y], fill=_rgb(wall * 0.9))
    spire_h = tower_w * rng.uniform(1.2, 2.2)
    draw.polygon([(tower_x - 2, ground_y - tower_h), (tower_x + tower_w / 2, ground_y - tower_h - spire_h),
                  (tower_x + tower_w + 2, ground_y - tower_h)], fill=_rgb(roof * 0.8))
    _arched(draw, tower_x + tower_w * 0.3, ground_y - tower_h * 0.85, tower_w * 0.4, tower_h * 0.12, (40, 40, 50))
    for i in range(int(rng.integers(2, 5))):
        wx = nave_x + nave_w * (0.12 + 0.22 * i)
        if wx + nave_w * 0.1 < nave_x + nave_w:
            _arched(draw, wx, ground_y - nave_h * 0.8, nave_w * 0.08, nave_h * 0.4, (50, 60, 90))
    door_x = nave_x + nave_w * rng.uniform(0.4, 0.5)
    _arched(draw, door_x, ground_y - nave_h * 0.45, nave_w * 0.12, nave_h * 0.45, _rgb(roof * 0.5))
    for _ in range(int(rng.integers(0, 4))):  # trees
        tx, tr = rng.uniform(0, width), rng.uniform(0.04, 0.09) * width
        draw.rectangle([tx - tr * 0.15, ground_y - 2 * tr, tx + tr * 0.15, ground_y + 2], fill=(80, 55, 30))
        draw.ellipse([tx - tr, ground_y - 3.6 * tr, tx + tr, ground_y - 1.4 * tr],
                     fill=_rgb(rng.uniform([20, 70, 20], [70, 140, 60])))
    return apply_lighting(np.asarray(canvas, dtype=np.float32), rng.uniform(0, 2 * math.pi), rng.uniform(0, 0.4),
                          rng.uniform(0.75, 1.1), rng.uniform(1.5, 4.0), rng)


# Landmarks of `render_animal_face_landmarks`, in this order.
ANIMAL_FACE_LANDMARKS = ("left_eye", "right_eye", "nose_tip", "mouth_end")


def render_animal_face(rng: np.random.Generator, kind: str, size: int) -> np.ndarray:
    """A frontal dog or cat head filling most of a square image (Animal Face dataset style)."""
    return render_animal_face_landmarks(rng, kind, size)[0]


def render_animal_face_landmarks(rng: np.random.Generator, kind: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """`render_animal_face`'s image (same rng draws, same bytes) and its 4 x 2 landmarks (x, y) in pixels
    (ANIMAL_FACE_LANDMARKS; left = image left)."""
    if kind not in ANIMAL_KINDS:
        raise ValueError(f"animal kind {kind!r}; expected one of {ANIMAL_KINDS}")
    canvas = Image.new("RGB", (size, size), _rgb(rng.uniform(40, 220, 3)))
    draw = ImageDraw.Draw(canvas)
    draw_clutter(draw, rng, size, size, int(rng.integers(2, 6)))
    fur = np.array(FUR_COLOURS[rng.integers(len(FUR_COLOURS))], float) + rng.normal(0, 12, 3)
    cx, cy = size * (0.5 + rng.uniform(-0.05, 0.05)), size * (0.55 + rng.uniform(-0.05, 0.05))
    r = size * rng.uniform(0.3, 0.38)
    if kind == "cat":  # pointed upright ears, round head, whiskers
        for side in (-1, 1):
            draw.polygon(_pts(np.array([[cx + side * 0.9 * r, cy - 0.2 * r], [cx + side * 0.75 * r, cy - 1.35 * r],
                                        [cx + side * 0.15 * r, cy - 0.8 * r]])), fill=_rgb(fur * 0.9))
        draw.ellipse([cx - r, cy - 0.9 * r, cx + r, cy + 0.85 * r], fill=_rgb(fur))
    else:  # floppy ears, longer head, a big muzzle
        draw.ellipse([cx - 0.9 * r, cy - 1.0 * r, cx + 0.9 * r, cy + 0.95 * r], fill=_rgb(fur))
        for side in (-1, 1):
            ex = cx + side * 0.95 * r
            draw.ellipse([ex - 0.35 * r, cy - 0.9 * r, ex + 0.35 * r, cy + 0.4 * r], fill=_rgb(fur * 0.6))
        draw.ellipse([cx - 0.45 * r, cy + 0.05 * r, cx + 0.45 * r, cy + 0.75 * r], fill=_rgb(fur * 1.15 + 20))
    eye_rgb = _rgb(rng.choice([(60, 160, 60), (200, 160, 40), (70, 45, 25), (80, 130, 200)]))
    landmarks = []
    for side in (-1, 1):
        ex, ey, er = cx + side * 0.38 * r, cy - 0.15 * r, 0.13 * r
        landmarks.append((ex, ey))
        draw.ellipse([ex - er, ey - er, ex + er, ey + er], fill=eye_rgb)
        pupil = er * (0.35 if kind == "cat" else 0.6)
        draw.ellipse([ex - pupil, ey - er * 0.9, ex + pupil, ey + er * 0.9], fill=(10, 10, 10))
    ny = cy + 0.3 * r
    draw.polygon([(cx - 0.12 * r, ny), (cx + 0.12 * r, ny), (cx, ny + 0.12 * r)], fill=(40, 25, 25))
    draw.line([(cx, ny + 0.12 * r), (cx, ny + 0.3 * r)], fill=(40, 25, 25), width=max(1, size // 80))
    landmarks += [(cx, ny + 0.12 * r), (cx, ny + 0.3 * r)]
    if kind == "cat":
        for side in (-1, 1):
            for dy in (-0.05, 0.05):
                draw.line([(cx + side * 0.2 * r, ny + 0.2 * r), (cx + side * 0.9 * r, ny + (0.1 + dy * 3) * r)],
                          fill=(235, 235, 235), width=1)
    image = apply_lighting(np.asarray(canvas, dtype=np.float32), rng.uniform(0, 2 * math.pi), rng.uniform(0, 0.4),
                           rng.uniform(0.75, 1.1), rng.uniform(1.5, 4.0), rng)
    return image, np.array(landmarks, dtype=np.float64)


def render_bird(rng: np.random.Generator, species: str, width: int, height: int
                ) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """A perched bird of one species; returns the image and its bbox (x, y, w, h) in pixels (CUB style)."""
    body, wing, beak = (np.array(c, float) for c in BIRD_SPECIES[species])
    canvas = Image.new("RGB", (width, height), _rgb(rng.uniform([60, 90, 60], [190, 220, 200])))
    draw = ImageDraw.Draw(canvas)
    draw_clutter(draw, rng, width, height, int(rng.integers(1, 5)))
    scale = min(width, height) * rng.uniform(0.18, 0.3)
    cx, cy = rng.uniform(0.3, 0.7) * width, rng.uniform(0.35, 0.6) * height
    facing = 1 if rng.random() < 0.5 else -1
    draw.line([(0, cy + 1.0 * scale), (width, cy + 1.1 * scale)], fill=(90, 60, 35), width=max(2, int(scale * 0.12)))
    tail = np.array([[cx - facing * 0.8 * scale, cy], [cx - facing * 1.7 * scale, cy + 0.5 * scale],
                     [cx - facing * 1.6 * scale, cy + 0.8 * scale]])
    draw.polygon(_pts(tail), fill=_rgb(wing))
    draw.ellipse([cx - scale, cy - 0.6 * scale, cx + scale, cy + 0.7 * scale], fill=_rgb(body))
    draw.ellipse([cx - 0.6 * scale, cy - 0.3 * scale, cx + 0.5 * scale, cy + 0.4 * scale], fill=_rgb(wing))
    hx, hy, hr = cx + facing * 0.85 * scale, cy - 0.7 * scale, 0.45 * scale
    draw.ellipse([hx - hr, hy - hr, hx + hr, hy + hr], fill=_rgb(body))
    draw.polygon(_pts(np.array([[hx + facing * 0.35 * hr, hy - 0.25 * hr], [hx + facing * 1.9 * hr, hy + 0.1 * hr],
                                [hx + facing * 0.35 * hr, hy + 0.35 * hr]])), fill=_rgb(beak))
    ex = hx + facing * 0.35 * hr
    draw.ellipse([ex - 0.15 * hr, hy - 0.35 * hr, ex + 0.15 * hr, hy - 0.05 * hr], fill=(10, 10, 10))
    xs = [cx - scale, cx + scale, hx - hr, hx + hr, hx + facing * 1.9 * hr, *tail[:, 0]]
    ys = [cy - 0.6 * scale, cy + 0.7 * scale, hy - hr, hy + hr, *tail[:, 1]]
    x0, x1 = max(0.0, min(xs)), min(width - 1.0, max(xs))
    y0, y1 = max(0.0, min(ys)), min(height - 1.0, max(ys))
    image = apply_lighting(np.asarray(canvas, dtype=np.float32), rng.uniform(0, 2 * math.pi), rng.uniform(0, 0.4),
                           rng.uniform(0.75, 1.1), rng.uniform(1.5, 4.0), rng)
    return image, (x0, y0, x1 - x0, y1 - y0)


def _arched(draw, x: float, y: float, w: float, h: float, colour) -> None:
    """Arched window/door: a rectangle topped by a half disc; (x, y) is the top-left of the arch."""
    draw.ellipse([x, y, x + w, y + w], fill=colour)
    draw.rectangle([x, y + w / 2, x + w, y + max(h, w / 2)], fill=colour)
