"""One export folder: Keras model, int8 ``.tflite``, C array, arch string.

``export_arch`` is what ``mcunas export ARCH`` calls; a study's trial goes
through :mod:`mcunas.export.trial`.  Both build the folder in a temporary
sibling and swap it into place (:func:`export_folder`).  Untrained architectures go through
:func:`mcunas.export.tflite.prepare_untrained` first (see there why); with
``weights`` the trained model is loaded instead and must match the arch.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from mcunas.arch import Arch
from mcunas.atomic import atomic_folder
from mcunas.errors import UserError
from mcunas.input_convention import DEVICE_INPUT

CALIBRATION_IMAGES = 200


def calibration_images(data: str | Path, arch: Arch) -> np.ndarray:
    """Up to 200 uint8 images for calibration from a ``.npy`` array or a dataset folder."""
    path = Path(data)
    shape = (arch.resolution, arch.resolution, arch.in_channels)
    if path.suffix == ".npy":
        images = np.load(path)
        if images.dtype != np.uint8 or images.shape[1:] != shape:
            raise UserError(f"{path}: expected uint8 images N×{'×'.join(map(str, shape))}, got "
                            f"{images.dtype} {'×'.join(map(str, images.shape))}")
    else:
        from mcunas.data import load_split

        images, _ = load_split(path, "train", arch.resolution, arch.in_channels)
    if len(images) == 0:
        raise UserError(f"{path}: no images to calibrate with")
    pick = np.linspace(0, len(images) - 1, min(CALIBRATION_IMAGES, len(images))).astype(int)
    return np.ascontiguousarray(images[pick])


def build_model(arch: Arch, weights: str | Path | None = None):
    """The Keras model of ``arch``: loaded from ``weights`` or untrained (prepared)."""
    import keras

    from mcunas.export.tflite import prepare_untrained
    from mcunas.keras_model import build_keras_model

    model = build_keras_model(arch)
    if weights is None:
        prepare_untrained(model)
        return model
    try:
        trained = keras.models.load_model(weights, compile=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot load weights from {weights}: {exc}") from None
    try:
        model.set_weights(trained.get_weights())
    except ValueError as exc:
        raise UserError(f"{weights} does not match the architecture {arch}: {exc}") from None
    return model


EXPORT_FILES = ("model.keras", "model_int8.tflite", "model_data.h", "model_data.cc", "arch.txt", "report.md")


@contextmanager
def export_folder(out_dir: str | Path):
    """A temporary folder that replaces ``out_dir`` whole once the export in it is complete.

    (:func:`mcunas.atomic.atomic_folder`: a killed export leaves the previous
    folder as it was; concurrent exports into one folder take turns.)  Because
    the folder is replaced, ``out_dir`` must be new, empty or an earlier export:
    a file, or a folder holding anything else, is refused in one line.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file: give a folder (new, empty or an earlier export)")
    if out.is_dir():
        others = sorted(p.name for p in out.iterdir() if p.name not in EXPORT_FILES)
        if others:
            raise UserError(f"--out {out} holds files an export does not write ({', '.join(others[:3])}"
                            f"{', ...' if len(others) > 3 else ''}); an export replaces its folder whole: "
                            "give a new or empty folder, or an earlier export")
    with atomic_folder(out) as tmp:
        yield tmp


def export_arch(arch: Arch, out_dir: str | Path, weights: str | Path | None = None,
                data: str | Path | None = None, target: str = "x86_64", memory_plan: str = "stock",
                say: Callable[[str], None] = lambda text: None) -> dict:
    """Write model.keras, model_int8.tflite, model_data.h/.cc and arch.txt into ``out_dir`` (replaced whole).

    ``memory_plan="offline"`` embeds an offline memory plan in the ``.tflite``
    (:mod:`mcunas.export.memory_plan`); the figures then give the arena with and without it.
    ``say(text)`` is told each step as it starts (``mcunas export`` prints them).
    """
    with export_folder(out_dir) as tmp:
        figures = write_arch_files(arch, tmp, weights, data, target, memory_plan, say)
    return {**figures, "out": str(out_dir)}


def write_arch_files(arch: Arch, out: Path, weights: str | Path | None = None,
                     data: str | Path | None = None, target: str = "x86_64", memory_plan: str = "stock",
                     say: Callable[[str], None] = lambda text: None) -> dict:
    """Write the export files of ``arch`` into the existing folder ``out``; returns the figures."""
    from mcunas.export.c_array import write_c_array
    from mcunas.export.memory_plan import plan_note
    from mcunas.export.tflite import convert_int8

    say(f"building the Keras model{' with the weights of ' + str(weights) if weights else ''} "
        "(TensorFlow loads first, a few seconds)")
    model = build_model(arch, weights)
    images = calibration_images(data, arch) if data is not None else None
    model.save(out / "model.keras")
    say(f"converting to int8, calibrated on {len(images)} images from {data}" if images is not None
        else "converting to int8, calibrated on seeded noise images (give --data to calibrate on real ones)")
    tflite = convert_int8(model, images)
    tflite_path = out / "model_int8.tflite"
    tflite_path.write_bytes(tflite)
    measured, plan_figures = measure_with_plan(tflite_path, memory_plan, say)
    tflite = tflite_path.read_bytes()  # with the offline plan, the file that now holds it
    (out / "arch.txt").write_text(f"{arch}\n")
    state = "trained weights from " + str(weights) if weights else "untrained (random weights)"
    note = "\n" + plan_note(measured, plan_figures) if plan_figures else ""
    write_c_array(tflite, out, measured["tflm_arena_bytes"], target=target,
                  comment=f"arch: {arch}\n{state}; {DEVICE_INPUT}{note}")
    return {
        "arch": str(arch),
        "trained": weights is not None,
        "calibration": f"{len(images)} images from {data}" if images is not None else "fallback noise images",
        "tflite_bytes": len(tflite),
        "tflm_arena_bytes": measured["tflm_arena_bytes"],
        "tflm_head_bytes": measured["tflm_head_bytes"],
        "tflm_tail_bytes": measured["tflm_tail_bytes"],
        **plan_figures,
        "files": sorted(p.name for p in out.iterdir()),
    }


def measure_with_plan(tflite_path: Path, memory_plan: str, say: Callable[[str], None]) -> tuple[dict, dict]:
    """The file's TFLM arena (child process), and with ``offline`` the plan embedded and measured again.

    Returns ``(measured, plan_figures)``; both export routes (an ARCH, a study's trial) end with this.
    """
    from mcunas.export.memory_plan import embed_in_file
    from mcunas.tflm import measure_arena

    say(f"measuring the tensor arena of {tflite_path.name} in TFLM")
    measured = measure_arena(tflite_path)
    if memory_plan != "offline":
        return measured, {}
    say("embedding the offline memory plan and measuring the arena again")
    return embed_in_file(tflite_path, measured)
