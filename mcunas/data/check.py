"""The data folders of a search, checked once before the study is touched.

Without this a bad ``y_labels.csv`` row or a label of 7 was found inside
every worker: five FAIL trials written to the study, then the run stopped.
:func:`check_search_data` reads every listed item's label and (vww01) file
without decoding an image, so it takes well under a second for the 500
images of vww01_dev, and raises one :class:`UserError` line on the first
problem.  It also returns the figures the study records about its data:
the test set's size and its majority-class share (the accuracy of always
answering the most common label, the baseline every accuracy is read against).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mcunas.data.formats import dataset_items
from mcunas.data.split import majority_share, validation_mask
from mcunas.errors import UserError


def check_both_classes(flag: str, path, labels: np.ndarray) -> None:
    """Refuse (one line) a set in which one class has no image.

    A demo set interrupted half-way once left 249 person images and no
    non_person ones; trained on, it "reached" int8 accuracy 1.000 by always
    answering person.  No accuracy on such a set means anything.
    """
    counts = {name: int(np.sum(labels == label)) for label, name in ((1, "person"), (0, "non_person"))}
    empty = [name for name, n in counts.items() if n == 0]
    if empty:
        full = next(name for name in counts if name not in empty) if len(empty) == 1 else None
        has = f"{counts[full]:,} {full} image(s) and no {empty[0]} ones" if full else "no images"
        raise UserError(f"{flag} {path} has {has}: both classes are needed (a half-written or filtered set?); "
                        "complete the folder, or delete it and build or generate it again")


def check_search_data(data: str, eval_data: str | None, seed: int) -> dict:
    """Validate ``--data`` (and ``--eval-data``); the test and validation sets' sizes and test majority share."""
    _, labels, splits = dataset_items(Path(data))
    check_both_classes("--data", data, labels)
    if eval_data:
        _, test_labels, _ = dataset_items(Path(eval_data))
        check_both_classes("--eval-data", eval_data, test_labels)
        pool = labels
    else:
        test_labels, pool = labels[splits == "eval"], labels[splits == "train"]
        if not len(test_labels):
            raise UserError(f"--data {data} has no images in its eval split to test on: give --eval-data DIR, "
                            "or rebuild the set with eval ids that match its images")
    val = validation_mask(pool, seed)
    if val.all() or not val.any():
        raise UserError(f"--data {data} has {len(pool)} image(s) to train on: too few to keep a validation "
                        "share apart; give more images")
    return {"test_images": int(len(test_labels)), "val_images": int(val.sum()),
            "train_images": int((~val).sum()), "majority_test_accuracy": round(majority_share(test_labels), 6),
            "test_person_share": round(float(np.mean(test_labels == 1)), 6)}
