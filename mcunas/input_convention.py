"""The one input convention of every mcunas model, on the ground floor so data, training and export share it.

The Keras model takes float pixels in [0, 1], i.e. ``uint8 / 255``
(:func:`preprocess`).  The exported int8 model's input is quantised with
scale 1/255 and zero point -128 (the MLPerf Tiny VWW reference model's), so
on a device the int8 input is simply ``pixel - 128``.
"""

from __future__ import annotations

import numpy as np

INPUT_SCALE = 1.0 / 255.0
INPUT_ZERO_POINT = -128
DEVICE_INPUT = "int8 input = pixel - 128 (scale 1/255, zero point -128)"


def preprocess(images: np.ndarray) -> np.ndarray:
    """uint8 pixels (any shape) -> float32 in [0, 1]: what every mcunas Keras model takes."""
    return np.asarray(images, dtype=np.float32) / 255.0
