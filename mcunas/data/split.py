"""The deterministic train/eval split for data that brings no split of its own.

An item goes to ``eval`` when the first 32 bits of SHA-256 of its key (the
COCO image id as decimal text, or the file name for the MLPerf folders) are
divisible by 5, otherwise to ``train``: about 80/20, the same on every
machine and Python version (unlike ``hash()``), and an item keeps its split
when others are added or removed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from mcunas.errors import UserError

SPLITS = ("train", "eval", "all")


def hash_split(key: str) -> str:
    return "eval" if int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 5 == 0 else "train"


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
