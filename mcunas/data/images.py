"""Decode one image file and fit it to R×R×C uint8: the one resize policy.

Resize policy (every format, every resolution):

* The **whole frame** is squashed to R×R, aspect ratio not kept and nothing
  cropped: the VWW label is about the whole image, and a person near the
  border must not be cropped away from a "person" image.
* JPEGs are decoded with Pillow's ``draft`` (DCT-domain down-scaling by 1/2,
  1/4 or 1/8 while staying at least R×R), which makes decoding a 640×480 COCO
  photo for 96×96 about 4× cheaper, then resized with Pillow's antialiased
  bilinear filter (its support grows with the shrink factor, so it averages
  rather than aliases).
* Grayscale (C = 1) is Pillow's ITU-R 601-2 luma of the RGB image.

Raw ``.bin`` files (the MLPerf perf-sample format) are 96×96×3 uint8, RGB,
row-major; they go through the same resize when R ≠ 96 or C = 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

VWW01_SIDE = 96
# Bump when the policy above changes: it is part of every cache fingerprint.
POLICY_VERSION = "squash-draft-bilinear-v1"


class BadImage(Exception):
    """An image that cannot be used (missing, truncated, corrupt); the build skips it."""


def open_image(path: Path, largest_side: int, channels: int) -> Image.Image:
    """Decode ``path`` to an RGB or L Pillow image at least ``largest_side`` square."""
    mode = "L" if channels == 1 else "RGB"
    try:
        if path.suffix == ".bin":
            raw = np.fromfile(path, dtype=np.uint8)
            if raw.size != VWW01_SIDE * VWW01_SIDE * 3:
                raise BadImage(f"{raw.size} bytes, expected {VWW01_SIDE * VWW01_SIDE * 3}")
            return Image.fromarray(raw.reshape(VWW01_SIDE, VWW01_SIDE, 3)).convert(mode)
        with Image.open(path) as img:
            img.draft("RGB", (largest_side, largest_side))
            # convert() forces the full decode, so truncation surfaces here.
            return img.convert("RGB").convert(mode)
    except FileNotFoundError as exc:
        raise BadImage("missing file") from exc
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise BadImage(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc


def fit(img: Image.Image, resolution: int) -> np.ndarray:
    """``img`` squashed to resolution×resolution, as an H×W×C uint8 array."""
    if img.size != (resolution, resolution):
        img = img.resize((resolution, resolution), Image.Resampling.BILINEAR)
    arr = np.asarray(img, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def fit_array(images: np.ndarray, resolution: int, channels: int) -> np.ndarray:
    """N×H×W×C uint8 arrays refitted by the same policy (for arrays already in memory)."""
    if images.shape[1:] == (resolution, resolution, channels):
        return images
    mode = "L" if channels == 1 else "RGB"
    out = np.empty((len(images), resolution, resolution, channels), dtype=np.uint8)
    for i, image in enumerate(images):
        src = image[:, :, 0] if image.shape[-1] == 1 else image
        out[i] = fit(Image.fromarray(src).convert(mode), resolution)
    return out
