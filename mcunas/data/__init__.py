"""Visual Wake Words data: build from COCO, read any of three formats, feed Keras.

The search calls three things:

* :func:`load_split` — uint8 images (memory-mapped where possible) and int32
  labels of one split of any dataset folder (see :mod:`mcunas.data.formats`);
  :func:`train_val_test` — a campaign's three sets (see :mod:`mcunas.data.split`);
* :func:`make_train_dataset` / :func:`make_eval_dataset` — ``tf.data``
  pipelines over those arrays (see :mod:`mcunas.data.pipeline`);
* :func:`evaluate_tflite` — accuracy of a ``.tflite`` model on arrays.

The last three import TensorFlow or LiteRT, so they are loaded on first use
and ``import mcunas.data`` stays light.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mcunas.data.formats import read_dataset
from mcunas.data.split import check_split, validation_mask
from mcunas.errors import UserError

_LAZY = {"make_train_dataset": "mcunas.data.pipeline", "make_eval_dataset": "mcunas.data.pipeline",
         "preprocess": "mcunas.data.pipeline", "evaluate_tflite": "mcunas.data.evaluate"}


def load_split(path: str | Path, split: str, resolution: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Images N×R×R×C uint8 and labels N int32 (1 = person) of ``split`` of the dataset at ``path``.

    ``split`` is ``"train"``, ``"eval"`` or ``"all"``.  Built sets use their
    own split; the two MLPerf folder formats a deterministic 80/20 split by
    file name.  Images are resized (whole frame squashed, see
    :mod:`mcunas.data.images`) and grayed as asked, and cached, so a second
    call is a memory map.  The images are a contiguous slice of that map.
    """
    check_split(split)
    if channels not in (1, 3):
        raise UserError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels}")
    if not 8 <= resolution <= 1024:
        raise UserError(f"resolution must be between 8 and 1024 pixels, got {resolution}")
    images, labels, splits = read_dataset(Path(path), resolution, channels)
    if split == "all":
        return images, labels
    rows = np.flatnonzero(splits == split)
    if len(rows) == 0:
        return images[:0], labels[:0]
    start, stop = rows[0], rows[-1] + 1
    assert stop - start == len(rows), "splits are stored contiguously"
    return images[start:stop], labels[start:stop]


class RowView:
    """Rows ``index`` (sorted) of a memory-mapped array, read only when indexed.

    The training pipeline gathers batches by index (:mod:`mcunas.data.pipeline`),
    so a training set drawn from scattered rows never has to be copied into RAM.
    """

    def __init__(self, base: np.ndarray, index: np.ndarray):
        self.base, self.index = base, np.asarray(index)
        self.shape = (len(self.index), *base.shape[1:])
        self.dtype = base.dtype

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, key):
        return self.base[self.index[key]]

    def __array__(self, dtype=None, copy=None):
        rows = self.base[self.index]
        return rows if dtype is None else rows.astype(dtype)


def train_val_test(data: str | Path, eval_data: str | Path | None, resolution: int, channels: int,
                   seed: int) -> dict[str, tuple]:
    """``{"train": (x, y), "val": (x, y), "test": (x, y)}`` of a campaign (see :mod:`mcunas.data.split`).

    Test is the eval split of ``data`` or all of ``eval_data``; validation a
    seeded, stratified share of the rest; images stay memory-mapped.
    """
    images, labels, splits = read_dataset(Path(data), resolution, channels)
    if eval_data:
        pool = np.arange(len(labels))
        test = read_dataset(Path(eval_data), resolution, channels)[:2]
    else:
        pool = np.flatnonzero(splits == "train")
        test = load_split(data, "eval", resolution, channels)
    val = validation_mask(labels[pool], seed)
    if val.all() or not val.any() or not len(test[0]):
        raise UserError(f"--data {data}: {len(pool)} image(s) to train and validate on and {len(test[0])} to test "
                        "on: too few to split; give more images")
    return {"train": (RowView(images, pool[~val]), labels[pool[~val]]),
            "val": (RowView(images, pool[val]), labels[pool[val]]), "test": test}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mcunas.data' has no attribute {name!r}")


__all__ = ["load_split", "train_val_test", "RowView", *_LAZY]
