"""Accuracy of a ``.tflite`` classifier on uint8 images, with the LiteRT interpreter.

Why LiteRT (``ai_edge_litert.interpreter.Interpreter``):

* ``tf.lite.Interpreter`` is deprecated in TF 2.21 (it warns that it is
  scheduled for deletion) in favour of exactly this package, which is the
  same TFLite runtime without TensorFlow: ``mcunas evaluate`` starts in
  ~0.1 s instead of paying the ~2.5 s / 640 MB TensorFlow import.
* TFLM (``tflite_micro.runtime``) runs the kernels the board will run, but
  it can abort the whole process on a bad model, so it would need a
  subprocess, and it is slow: measured here on the MLPerf VWW model,
  about 12 ms per image against about 0.3 ms for LiteRT (XNNPACK).  Both
  give integer-exact int8 kernels up to rounding ties; on vww01_dev both
  agree with the published 428/500.  ``mcunas measure`` is where TFLM runs.

Input quantisation is read from the model: images go through the shared
:func:`mcunas.input_convention.preprocess` (uint8 -> float in [0, 1]) and then
``round(x / scale + zero_point)`` — for mcunas and MLPerf models (scale
1/255, zero point -128) that is exactly ``pixel - 128``.  Images whose size
or channel count differs from the model input are refitted with the dataset
resize policy (:mod:`mcunas.data.images`).  The prediction is the argmax of
the outputs (label 1 = person).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mcunas.data.images import fit_array
from mcunas.errors import UserError
from mcunas.quiet import native_output_captured

CLASS_NAMES = ("non_person", "person")


def load_interpreter(model: bytes | str | Path):
    """A LiteRT interpreter with tensors allocated; unreadable models are a UserError."""
    from ai_edge_litert.interpreter import Interpreter

    if not isinstance(model, (bytes, bytearray)) and not Path(model).is_file():
        raise UserError(f"model {model} does not exist")
    try:
        with native_output_captured(show_on_error=False):  # the reason is in the exception; LiteRT's "INFO: Created ... XNNPACK delegate" line
            if isinstance(model, (bytes, bytearray)):
                interpreter = Interpreter(model_content=bytes(model))
            else:
                interpreter = Interpreter(model_path=str(model))
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise UserError(f"cannot load {'model bytes' if isinstance(model, bytes) else model} as TFLite: "
                        f"{str(exc).strip().splitlines()[0]}") from None
    return interpreter


def input_shape(interpreter) -> tuple[int, int, int]:
    """(H, W, C) the model takes."""
    shape = interpreter.get_input_details()[0]["shape"]
    return tuple(int(d) for d in shape[1:])


def quantize_input(images: np.ndarray, detail: dict) -> np.ndarray:
    """uint8 images -> the model's input tensor values (float, or quantised int8/uint8)."""
    from mcunas.input_convention import preprocess

    x = preprocess(images)
    dtype = np.dtype(detail["dtype"])
    if dtype == np.float32:
        return x
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zero_point), info.min, info.max).astype(dtype)


def evaluate_tflite(model: bytes | str | Path, images: np.ndarray, labels: np.ndarray) -> dict:
    """``accuracy``, ``correct``, ``total`` and per-class counts of ``model`` on uint8 ``images``.

    ``model`` is ``.tflite`` bytes or a path.  One image per invoke, so
    batch-1 models (all mcunas exports) run unchanged.
    """
    interpreter = load_interpreter(model)
    height, width, channels = input_shape(interpreter)
    if height != width:
        raise UserError(f"model input is {height}×{width}; mcunas datasets are square")
    images = fit_array(np.asarray(images), height, channels)
    labels = np.asarray(labels)
    detail = interpreter.get_input_details()[0]
    out_index = interpreter.get_output_details()[0]["index"]
    predictions = np.empty(len(images), dtype=np.int32)
    for i in range(len(images)):
        interpreter.set_tensor(detail["index"], quantize_input(images[i:i + 1], detail))
        interpreter.invoke()
        predictions[i] = int(np.argmax(interpreter.get_tensor(out_index)[0]))
    hits = predictions == labels
    figures = {"accuracy": float(hits.mean()) if len(hits) else 0.0,
               "correct": int(hits.sum()), "total": int(len(hits))}
    for label, name in enumerate(CLASS_NAMES):
        figures[f"{name}_correct"] = int(hits[labels == label].sum())
        figures[f"{name}_total"] = int((labels == label).sum())
    return figures
