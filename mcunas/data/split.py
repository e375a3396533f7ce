"""How a dataset is split: a fixed train/eval split per folder, then a seeded validation share.

**The folder's own split.** An item of an MLPerf folder goes to ``eval``
when the first 32 bits of SHA-256 of its file name are divisible by 5,
otherwise to ``train``: about 80/20, the same on every machine and Python
version (unlike ``hash()``), and an item keeps its split when others are
added or removed.  A built set keeps the split it was built with (COCO
minival ids with ``--eval-ids``, else the same hash of the image id).

**Train / validation / test in a search** (:func:`mcunas.data.train_val_test`):

* **test** is the folder's ``eval`` split, or all of ``--eval-data`` when
  given.  It is deliberately *not* seeded: every study, every seed and
  ``mcunas evaluate --split eval`` see the same test images, so test figures
  compare across studies and an export's can be reproduced.  Nothing is
  selected on it.
* **validation** is :data:`VAL_SHARE` of the rest (the ``train`` split, or
  all of ``--data`` with ``--eval-data``), drawn per class (stratified: each
  class keeps its share, and each class with two or more images has at least
  one validation image) with the campaign's ``--seed``.  The search selects
  on it: the accuracy objective, halving rungs and pruners read it.
* **train** is what remains.

Every candidate of a campaign sees the same three sets (the validation draw
depends on the campaign seed, not the trial), so their figures compare.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from mcunas.errors import UserError

SPLITS = ("train", "eval", "all")
VAL_SHARE = 0.2  # of the images left after the test split


def hash_split(key: str) -> str:
    return "eval" if int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 5 == 0 else "train"


def validation_mask(labels: np.ndarray, seed: int, share: float = VAL_SHARE) -> np.ndarray:
    """True for the rows drawn into validation: ``share`` of each class, seeded (see module doc)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(int(seed))
    mask = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        take = int(round(share * len(rows)))
        if len(rows) >= 2:
            take = min(max(take, 1), len(rows) - 1)
        mask[rng.permutation(rows)[:take]] = True
    return mask


def majority_share(labels: np.ndarray) -> float:
    """Accuracy of always answering the most common label: the baseline a trained model must beat."""
    labels = np.asarray(labels)
    return float(np.bincount(labels, minlength=2).max() / len(labels)) if len(labels) else 0.0


def read_eval_ids(path: Path) -> set[int]:
    """COCO image ids, one per line (as in ``mscoco_minival_ids.txt``); blank lines and # comments ignored."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise UserError(f"cannot read --eval-ids {path}: {exc.strerror}") from None
    ids = set()
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            ids.add(int(text))
        except ValueError:
            raise UserError(f"--eval-ids {path} line {number} is '{text}', expected one COCO image id "
                            "(an integer) per line") from None
    return ids


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise UserError(f"split must be one of {', '.join(SPLITS)}, got '{split}'")
