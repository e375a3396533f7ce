"""``mcunas data synth``: a small generated person / not-person set, no download needed.

What it is, exactly: ``N`` JPEGs (quality 90) of R×R pixels, half in
``person/`` and half in ``non_person/`` (the MLPerf Tiny folder format), each
drawn at 2R and downsampled with an antialiasing filter.  Every image has

* a **background**: a linear gradient between two random colours at a random
  angle, plus smooth low-frequency colour noise and, in half of them,
  sinusoidal stripes;
* **clutter**: 1-5 random shapes (rectangles, ellipses, triangles, thick
  lines, and "distractors" that share parts with a person: lone discs, and
  sticks with a disc on top), in random colours, some drawn in front;
* **camera effects**: a random contrast/brightness change and pixel noise.

A ``person/`` image also has one or two **stick-figure people** drawn between
the clutter layers: a head disc, a thick torso line, two-segment arms and
legs with random joint angles (standing, walking, waving, sitting-like),
a random lean, clothes and skin colours, a dark (70 %) or light silhouette
outline, a height of 45-95 % of the frame, anywhere in the frame (possibly
cut by its border or partly hidden by clutter).  ``non_person/`` images are
drawn from the same distribution without the people.

So a model must recognise the arrangement (head above torso with limbs),
not a colour or a single shape: lone heads and lone sticks appear in both
classes.  Measured: MobileNetV1-0.25@96 (the ``mlperf-vww`` preset, ``fast``
recipe, batch 32, augmentation) trained on the 1,576 train images of
``--n 2000 --seed 0`` reaches 74 % on its 424 eval images after 1 epoch and
81-83 % after 3-4, so it is learnable in a couple of epochs but not solved.
It is a smoke-test set to exercise the whole search on a fresh
machine; accuracies on it say nothing about COCO.

Deterministic: image ``i`` of class ``c`` is drawn from
``numpy.random.default_rng([seed, c, i])``, so the same arguments give the
same pixels and the set is independent of how it was parallelised.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from mcunas.atomic import atomic_folder
from mcunas.errors import UserError
from mcunas.output import progress_bar

ABOUT = "about.txt"
SKIN = [(241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36), (255, 219, 172), (90, 56, 37)]


def synthesize(out: str | Path, n: int = 2000, resolution: int = 96, seed: int = 0) -> dict:
    """Write the set (replacing an earlier synth set in ``out``); returns counts."""
    if n < 2:
        raise UserError(f"--n must be at least 2 (one image per class), got {n}")
    if not 16 <= resolution <= 512:
        raise UserError(f"--resolution must be between 16 and 512, got {resolution}")
    out = Path(out)
    _check_out(out)
    counts = {"person": n // 2 + n % 2, "non_person": n // 2}
    # Written whole or not at all: a set interrupted half-way (Ctrl-C) once left 249 person images and no
    # non_person ones, which the next run trained on.  The folder appears only when every image is in it.
    with atomic_folder(out) as tmp, progress_bar(n, "drawing demo images") as bar:
        for label, name in ((1, "person"), (0, "non_person")):
            (tmp / name).mkdir()
            for i in range(counts[name]):
                img = draw_image(np.random.default_rng([seed, label, i]), resolution, person=bool(label))
                img.save(tmp / name / f"{i:05d}.jpg", quality=90)
                bar.update(1)
        (tmp / ABOUT).write_text(f"Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by `mcunas data synth "
                                 f"--n {n} --resolution {resolution} --seed {seed}`: drawn stick figures over random "
                                 "backgrounds and clutter, not photographs (see mcunas/data/synth.py).\n")
    return {"images": n, "person": counts["person"], "non_person": counts["non_person"],
            "resolution": resolution, "seed": seed, "out": str(out)}


def is_synth_set(folder: Path) -> bool:
    """Whether ``folder`` is a complete generated set (its ``about.txt`` is written with the last image)."""
    return (Path(folder) / ABOUT).is_file()


def generated_at(folder) -> str | None:
    """``2026-11-21 18:20 UTC``, when the generated set in ``folder`` was finished; None for any other folder."""
    about = Path(folder) / ABOUT
    if not about.is_file():
        return None
    return f"{datetime.fromtimestamp(about.stat().st_mtime, timezone.utc):%Y-%m-%d %H:%M} UTC"


def _own_layout(out: Path) -> bool:
    """Empty, or holding only what synth writes (an interrupted run before issue 18 left no about.txt)."""
    return all(p.name in ("person", "non_person", ABOUT) for p in out.iterdir())


def _check_out(out: Path) -> None:
    """Refuse to replace a folder that is not an earlier synth set; never touch other folders' files."""
    if out.exists() and (not out.is_dir() or not _own_layout(out)):
        raise UserError(f"--out {out} exists and is not an earlier `mcunas data synth` folder; "
                        "choose a new or empty folder")


def draw_image(rng: np.random.Generator, resolution: int, person: bool) -> Image.Image:
    """One R×R RGB image (see the module docstring for what is in it)."""
    size = 2 * resolution
    img = Image.fromarray(_background(rng, size))
    draw = ImageDraw.Draw(img)
    clutter = int(rng.integers(1, 6))
    in_front = int(rng.binomial(clutter, 0.25))
    for _ in range(clutter - in_front):
        _shape(draw, rng, size)
    if person:
        for _ in range(1 if rng.random() < 0.8 else 2):
            _person(draw, rng, size)
    for _ in range(in_front):
        _shape(draw, rng, size, small=True)
    img = img.resize((resolution, resolution), Image.Resampling.LANCZOS)
    return Image.fromarray(_camera(rng, np.asarray(img)))


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, 3))


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size] / size
    angle = rng.uniform(0, 2 * math.pi)
    t = (x * math.cos(angle) + y * math.sin(angle) + 1.5) / 3
    c1, c2 = np.array(_colour(rng), float), np.array(_colour(rng), float)
    img = c1 + (c2 - c1) * t[..., None]
    cells = int(rng.integers(3, 12))
    noise = rng.normal(0, rng.uniform(5, 35), (cells, cells, 3)).astype(np.float32)
    if rng.random() < 0.5:  # grey noise instead of coloured
        noise[..., 1:] = noise[..., :1]
    img += np.stack([np.asarray(Image.fromarray(noise[..., k]).resize((size, size), Image.Resampling.BICUBIC))
                     for k in range(3)], axis=-1)
    if rng.random() < 0.5:
        phi, freq = rng.uniform(0, math.pi), rng.uniform(4, 30)
        img += rng.uniform(5, 30) * np.sin(freq * (x * math.cos(phi) + y * math.sin(phi)) * 2 * math.pi)[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def _shape(draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: int, small: bool = False) -> None:
    """One clutter shape; 'disc' and 'stick' share parts with a person on purpose."""
    kind = rng.choice(["rect", "ellipse", "triangle", "line", "disc", "stick"])
    scale = size * (rng.uniform(0.08, 0.25) if small else rng.uniform(0.1, 0.5))
    cx, cy = rng.uniform(0, size, 2)
    colour = _colour(rng)
    if kind == "rect":
        w, h = rng.uniform(0.3, 1, 2) * scale
        draw.rectangle([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], fill=colour)
    elif kind == "ellipse":
        w, h = rng.uniform(0.3, 1, 2) * scale
        draw.ellipse([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], fill=colour)
    elif kind == "triangle":
        pts = [(cx + scale * math.cos(a), cy + scale * math.sin(a)) for a in rng.uniform(0, 2 * math.pi, 3)]
        draw.polygon(pts, fill=colour)
    elif kind == "line":
        a = rng.uniform(0, math.pi)
        dx, dy = scale * math.cos(a), scale * math.sin(a)
        draw.line([cx - dx, cy - dy, cx + dx, cy + dy], fill=colour, width=max(2, int(scale * rng.uniform(0.05, 0.2))))
    elif kind == "disc":
        r = scale * rng.uniform(0.1, 0.3)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
    else:  # a stick with a disc on top: a lollipop, a tree, a street lamp
        r = scale * rng.uniform(0.1, 0.3)
        draw.line([cx, cy, cx, cy + scale], fill=_colour(rng), width=max(2, int(r * rng.uniform(0.4, 1.2))))
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)


def _person(draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: int) -> None:
    """A stick-figure person with a dark or light outline; lengths in head radii ``h`` (height ≈ 10 h)."""
    h = size * rng.uniform(0.45, 0.95) / 10
    hip = np.array([rng.uniform(0.1, 0.9) * size, rng.uniform(0.4, 0.75) * size + 2 * h])
    lean = rng.normal(0, 0.15)
    up = np.array([math.sin(lean), -math.cos(lean)])
    neck = hip + 3.4 * h * up
    head = neck + 1.3 * h * up
    shoulder = neck - 0.3 * h * up
    skin, shirt, trousers = SKIN[rng.integers(len(SKIN))], _colour(rng), _colour(rng)

    def limb(start, angle, bend, lengths):
        # angle 0 points along -up (down the body); bend turns the lower segment
        down = math.atan2(-up[1], -up[0])
        a1 = down + angle
        knee = start + lengths[0] * np.array([math.cos(a1), math.sin(a1)])
        a2 = a1 + bend
        return [tuple(start), tuple(knee), tuple(knee + lengths[1] * np.array([math.cos(a2), math.sin(a2)]))]

    parts = []  # (polyline, width, colour), back to front
    for side in (-1, 1):  # legs, behind the torso
        parts.append((limb(hip + side * 0.35 * h * np.array([-up[1], up[0]]), side * rng.uniform(0, 0.6),
                           rng.uniform(-1.6, 0.3) * side, (2.3 * h, 2.3 * h)), 0.9 * h, trousers))
    parts.append(([tuple(hip), tuple(neck)], 2.0 * h, shirt))
    for side in (-1, 1):  # arms: hanging, waving or holding
        parts.append((limb(shoulder, side * rng.uniform(0.1, 2.8), side * rng.uniform(-1.5, 1.5), (1.6 * h, 1.5 * h)),
                      0.7 * h, shirt if rng.random() < 0.5 else skin))
    edge = max(1.0, 0.3 * h)
    outline = (20, 20, 20) if rng.random() < 0.7 else (235, 235, 235)
    for points, width, _ in parts:  # the silhouette's outline first, then the parts over it
        draw.line(points, fill=outline, width=max(2, int(width + 2 * edge)), joint="curve")
    draw.ellipse([head[0] - h - edge, head[1] - h - edge, head[0] + h + edge, head[1] + h + edge], fill=outline)
    for points, width, colour in parts:
        draw.line(points, fill=colour, width=max(2, int(width)), joint="curve")
    draw.ellipse([head[0] - h, head[1] - h, head[0] + h, head[1] + h], fill=skin)


def _camera(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    x = img.astype(np.float32)
    x = (x - 128) * rng.uniform(0.6, 1.2) + 128 + rng.uniform(-30, 30)
    x += rng.normal(0, rng.uniform(0, 8), x.shape)
    return np.clip(np.round(x), 0, 255).astype(np.uint8)
