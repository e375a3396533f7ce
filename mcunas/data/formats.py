"""The three dataset folders ``--data`` accepts, each read into (images, labels, splits).

* **built**: a folder made by ``mcunas data build`` (has ``manifest.csv``).
  Its caches live in its own ``cache/``; a resolution or channel count not
  yet cached is built there from the recorded COCO sources.
* **mlperf-folders**: MLPerf Tiny's pre-built set (e.g. ``vw_coco2014_96/``):
  ``person/`` and ``non_person/`` subfolders of images, label 1 and 0.
* **vww01**: MLPerf Tiny's perf-sample set: ``*.bin`` files of 96×96×3 raw
  RGB uint8 and ``y_labels.csv`` rows ``file_name,2,label``.

The two MLPerf formats carry no split; :func:`mcunas.data.split.hash_split`
of the file name gives one.  Their caches go under the user cache folder
(``$MCUNAS_CACHE_DIR``, else ``$XDG_CACHE_HOME/mcunas``, else
``~/.cache/mcunas``) in ``data/<name>-<hash of the folder's path>/``, never
into the dataset folder (which may be shared or read-only).  In every format
rows are ordered train first, then eval, so a split is a contiguous slice of
the memory-mapped cache, not an in-RAM copy.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

from mcunas.data.cache import cache_name, ensure_caches, open_cache
from mcunas.data.split import hash_split
from mcunas.errors import UserError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
FORMATS_HELP = ("a folder made by `mcunas data build` (manifest.csv), an MLPerf Tiny folder with person/ and "
                "non_person/ image subfolders, or an MLPerf perf-sample vww01 folder (*.bin + y_labels.csv)")


def detect_format(path: Path) -> str:
    if (path / "manifest.csv").is_file():
        return "built"
    if (path / "y_labels.csv").is_file():
        return "vww01"
    if (path / "person").is_dir() and (path / "non_person").is_dir():
        return "mlperf-folders"
    what = "does not exist" if not path.exists() else "is not a dataset folder"
    raise UserError(f"--data {path} {what}: expected {FORMATS_HELP}")


def check_label(label: int, where: str) -> None:
    """Refuse (one line) any label but 0 (non-person) and 1 (person): the models have two outputs."""
    if label not in (0, 1):
        raise UserError(f"{where} has label {label}; labels must be 0 (non-person) or 1 (person): fix that row")


def dataset_items(path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Every listed item of a dataset folder — names, int32 labels, split names — without decoding an image.

    Labels are checked (0 or 1) and, for vww01, every ``.bin`` must be
    present and exactly 96×96×3 bytes (``VWW01_BYTES``): what the search's
    up-front check (:mod:`mcunas.data.check`) reads.
    """
    path = Path(path)
    fmt = detect_format(path)
    if fmt == "built":
        rows, labels, splits = _manifest(path)
        return [r["file_name"] for r in rows], labels, splits
    names, labels = _vww01_items(path) if fmt == "vww01" else _folder_items(path)
    if fmt == "vww01":
        for name in names:
            _check_bin(path, name)
    splits = np.asarray([hash_split(Path(n).name) for n in names])
    return names, np.asarray(labels, dtype=np.int32), splits


VWW01_BYTES = 96 * 96 * 3


def _check_bin(path: Path, name: str) -> None:
    try:
        size = (path / name).stat().st_size
        with open(path / name, "rb"):
            pass
    except OSError as exc:
        raise UserError(f"{path / 'y_labels.csv'} lists {name}, which cannot be read ({exc.strerror}): "
                        "restore the file or remove its row") from None
    if size != VWW01_BYTES:
        raise UserError(f"{path / name} is {size:,} bytes, not {VWW01_BYTES:,} (96x96x3 raw RGB): "
                        "restore the file or remove its row from y_labels.csv")


def cache_root() -> Path:
    if os.environ.get("MCUNAS_CACHE_DIR"):
        return Path(os.environ["MCUNAS_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mcunas"


def read_dataset(path: Path, resolution: int, channels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All usable images (memory-mapped, train rows first), int32 labels and split names."""
    path = Path(path)
    fmt = detect_format(path)
    if fmt == "built":
        return _read_built(path, resolution, channels)
    names, labels = _vww01_items(path) if fmt == "vww01" else _folder_items(path)
    order = sorted(range(len(names)), key=lambda i: (hash_split(Path(names[i]).name) != "train", names[i]))
    names = [names[i] for i in order]
    labels = np.asarray([labels[i] for i in order], dtype=np.int32)
    resolved = path.resolve()
    folder = cache_root() / "data" / f"{resolved.name}-{hashlib.sha256(str(resolved).encode()).hexdigest()[:12]}"
    cache = ensure_caches(folder, [path / n for n in names], [resolution], channels, label=f"caching {path.name}")[resolution]
    if cache.failed:
        print(f"mcunas: warning: {len(cache.failed)} of {len(names)} images in {path} could not be read and are "
              f"skipped (e.g. {names[min(cache.failed)]}: {cache.failed[min(cache.failed)]})", file=sys.stderr)
    keep = np.asarray([i not in cache.failed for i in range(len(names))])
    splits = np.asarray([hash_split(Path(n).name) for n in names])
    return cache.images, labels[keep], splits[keep]


def _folder_items(path: Path) -> tuple[list[str], list[int]]:
    names, labels = [], []
    for sub, label in (("non_person", 0), ("person", 1)):
        for f in sorted((path / sub).iterdir()):
            if f.suffix.lower() in IMAGE_SUFFIXES:
                names.append(f"{sub}/{f.name}")
                labels.append(label)
    if not names:
        raise UserError(f"--data {path} has person/ and non_person/ but no images in them "
                        f"({', '.join(sorted(IMAGE_SUFFIXES))})")
    return names, labels


def _vww01_items(path: Path) -> tuple[list[str], list[int]]:
    names, labels = [], []
    with open(path / "y_labels.csv", newline="") as f:
        for number, row in enumerate(csv.reader(f), 1):
            if not row:
                continue
            try:
                name, _classes, label = row
                labels.append(int(label))
            except ValueError:
                raise UserError(f"{path / 'y_labels.csv'} line {number} is {','.join(row)!r}; expected "
                                "file_name,2,label") from None
            check_label(labels[-1], f"{path / 'y_labels.csv'} line {number}")
            names.append(name)
    if not names:
        raise UserError(f"{path / 'y_labels.csv'} lists no images")
    return names, labels


def _read_built(path: Path, resolution: int, channels: int,
                rebuilt: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from mcunas.data.build import build

    _, labels, splits = _manifest(path)
    try:
        record = json.loads((path / "build.json").read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"--data {path} is a damaged built set ({exc}); run `mcunas data build` again") from None
    name = cache_name(resolution, channels)
    cache = open_cache(path / "cache", resolution, channels)
    if not rebuilt and (cache is None or record["caches"].get(name) != _fingerprint_of(path / "cache", name)):
        params = record["params"]
        for images_dir, annotations in params["sources"]:
            if not (Path(images_dir).is_dir() and Path(annotations).is_file()):
                raise UserError(f"--data {path} has no {name} cache and its sources ({images_dir}) are gone; "
                                f"run `mcunas data build ... --resolution {resolution}` to add it")
        print(f"mcunas: {path} has no {name} cache yet; building it from the recorded COCO sources",
              file=sys.stderr)
        build([tuple(s) for s in params["sources"]], str(path), params["classes"], params["threshold"],
              params["area"], [resolution], params["eval_ids"], grayscale=channels == 1)
        return _read_built(path, resolution, channels, rebuilt=True)
    if cache is None or len(cache.images) != len(labels):
        raise UserError(f"--data {path}: cache {name} is missing or does not match manifest.csv; "
                        "run `mcunas data build` again")
    return cache.images, labels, splits


def _manifest(path: Path) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """A built set's manifest rows, int32 labels and splits, each row checked."""
    try:
        with open(path / "manifest.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        labels = np.asarray([int(r["label"]) for r in rows], dtype=np.int32)
        splits = np.asarray([r["split"] for r in rows])
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"--data {path} is a damaged built set ({exc}); run `mcunas data build` again") from None
    for number, (label, split) in enumerate(zip(labels, splits), 2):
        check_label(int(label), f"{path / 'manifest.csv'} line {number}")
        if split not in ("train", "eval"):
            raise UserError(f"{path / 'manifest.csv'} line {number} has split {split!r}, not train or eval: "
                            "run `mcunas data build` again")
    return rows, labels, splits


def _fingerprint_of(folder: Path, name: str) -> str | None:
    try:
        return json.loads((folder / f"{name}.json").read_text())["fingerprint"]
    except (OSError, ValueError, KeyError):
        return None


def count_images(path: str | Path) -> int:
    """Images a dataset folder lists, without decoding any (the search sizes its per-candidate limit by it)."""
    return len(dataset_items(Path(path))[0])
