"""``mcunas data build``: COCO images + annotations -> a built VWW set.

A built set is a folder::

    manifest.csv   image_id,file_name,split,label,fraction,source — one row per
                   usable image, in cache row order: all train rows, then all
                   eval rows, so each split is one contiguous memory-mapped slice
    skipped.csv    image_id,file_name,source,reason — images that were missing
                   or did not decode, and duplicates of an image id already seen
    build.json     the parameters, counts and current caches (so a dataset
                   reader can add a resolution later with the same inputs)
    cache/r<R>_c<C>.npy  N×R×R×C uint8 (see :mod:`mcunas.data.cache`)

Labels are recomputed on every run (pycocotools takes seconds even for all of
COCO); image caches depend only on the ordered image list, the resolution and
the channels, so changing ``--threshold`` or ``--class`` reuses them, while
changing the split reorders rows and rebuilds them.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from mcunas.atomic import write_atomic
from mcunas.data.cache import cache_name, ensure_caches, fingerprint
from mcunas.data.coco import category_names, class_ids, label_images, load_coco
from mcunas.data.split import hash_split, read_eval_ids
from mcunas.errors import UserError, did_you_mean

MANIFEST_FIELDS = ("image_id", "file_name", "split", "label", "fraction", "source")


@dataclass(frozen=True)
class Row:
    image_id: int
    file_name: str
    split: str
    label: int
    fraction: float
    source: str
    path: Path


def warn(message: str) -> None:
    print(f"mcunas: warning: {message}", file=sys.stderr)


def build(sources: list[tuple[str, str]], out: str, classes: list[str] = ("person",),
          threshold: float = 0.005, area: str = "segmentation", resolutions: list[int] = (96,),
          eval_ids: str | None = None, grayscale: bool = False) -> dict:
    """Label, split and cache; returns the figures ``mcunas data build`` prints.

    ``sources`` pairs an images folder with its annotations file.  Nothing in
    ``out`` is replaced until the new version of that file is complete.
    """
    if not 0 <= threshold < 1:
        raise UserError(f"--threshold is a fraction of the image area in [0, 1), got {threshold}")
    for r in resolutions:
        if not 8 <= r <= 1024:
            raise UserError(f"--resolution must be between 8 and 1024 pixels, got {r}")
    for images_dir, _ in sources:
        if not Path(images_dir).is_dir():
            raise UserError(f"--images {images_dir} is not a folder")
    _check_out(Path(out))
    channels = 1 if grayscale else 3
    rows, skipped, unmatched = _label_rows(sources, list(classes), threshold, area, eval_ids)
    out_dir = Path(out)
    cache_dir = out_dir / "cache"
    paths = [row.path for row in rows]
    start = time.perf_counter()
    caches = ensure_caches(cache_dir, paths, sorted(set(resolutions)), channels)
    seconds = time.perf_counter() - start
    failed = next(iter(caches.values())).failed
    if any(c.failed != failed for c in caches.values()):
        raise UserError(f"caches in {cache_dir} disagree on which images decode; delete that folder and rebuild")
    kept = [row for i, row in enumerate(rows) if i not in failed]
    skipped += [(row, failed[i]) for i, row in enumerate(rows) if i in failed]

    _write_csv(out_dir / "manifest.csv", MANIFEST_FIELDS,
               [(r.image_id, r.file_name, r.split, r.label, f"{r.fraction:.6f}", r.source) for r in kept])
    _write_csv(out_dir / "skipped.csv", ("image_id", "file_name", "source", "reason"),
               [(r.image_id, r.file_name, r.source, why) for r, why in skipped])
    params = {"sources": [[str(Path(i).resolve()), str(Path(a).resolve())] for i, a in sources],
              "classes": list(classes), "threshold": threshold, "area": area,
              "eval_ids": str(Path(eval_ids).resolve()) if eval_ids else None}
    current = _current_caches(cache_dir, paths)
    figures = {
        "images": len(kept),
        "person": sum(r.label for r in kept),
        "train": sum(r.split == "train" for r in kept),
        "eval": sum(r.split == "eval" for r in kept),
        "skipped": len(skipped),
        "eval_ids_unmatched": unmatched,
    }
    write_atomic(out_dir / "build.json", json.dumps({"params": params, "figures": figures,
                                                      "caches": current}, indent=1))
    built = [r for r, c in caches.items() if not c.reused]
    for r, c in sorted(caches.items()):
        figures[f"cache_{cache_name(r, channels)}"] = "reused" if c.reused else "built"
    if built:
        figures["decode_images_per_s"] = round(len(rows) / seconds, 1)
    figures["out"] = str(out_dir)
    return figures


def _check_out(out: Path) -> None:
    """Refuse an ``--out`` that holds anything but an earlier build: a build overwrites its files."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder (new, empty or an earlier build)")
    own = {"manifest.csv", "skipped.csv", "build.json", "cache"}
    if out.is_dir() and any(p.name not in own and not p.name.startswith(".") for p in out.iterdir()):
        raise UserError(f"--out {out} exists and is not an earlier `mcunas data build` folder; "
                        "choose a new or empty folder")


def _label_rows(sources, classes, threshold, area, eval_ids):
    """Rows for every annotated image (train first, then eval), skipped duplicates, unmatched eval ids."""
    indexed = [(images_dir, annotations, load_coco(Path(annotations))) for images_dir, annotations in sources]
    found = [class_ids(coco, classes) for _, _, coco in indexed]
    if not any(found):  # checked before any warning, so the error is the only line
        names = category_names(indexed[-1][2])
        hint = did_you_mean(classes[0], names) if len(classes) == 1 else ""
        raise UserError(f"unknown class {', '.join(repr(c) for c in classes)}{hint}: no annotations file has it; "
                        f"COCO names look like {', '.join(names[:6])}, …")
    wanted = read_eval_ids(Path(eval_ids)) if eval_ids else None
    labelled = []
    for (images_dir, annotations_file, coco), ids in zip(indexed, found):
        if ids and len(ids) < len(classes):
            warn(f"{annotations_file} has no category {', '.join(c for c in classes if c not in ids)}; "
                 f"its images are labelled by {', '.join(ids)} only")
        if not ids:
            warn(f"{annotations_file} has none of the categories {', '.join(classes)}; all its images are label 0")
        for item in label_images(coco, list(ids.values()), threshold, area):
            labelled.append((item, str(annotations_file), Path(images_dir) / item.file_name))
    seen, rows, skipped = set(), [], []
    for item, source, path in labelled:
        if item.image_id in seen:
            skipped.append((Row(item.image_id, item.file_name, "", item.label, item.fraction, source, path),
                            "duplicate image id"))
            continue
        seen.add(item.image_id)
        split = hash_split(str(item.image_id)) if wanted is None else ("eval" if item.image_id in wanted else "train")
        rows.append(Row(item.image_id, item.file_name, split, item.label, item.fraction, source, path))
    unmatched = len(wanted - seen) if wanted is not None else 0
    if wanted is not None and unmatched == len(wanted):
        warn(f"none of the {len(wanted)} ids in --eval-ids {eval_ids} is an annotated image; the eval split is empty")
    rows.sort(key=lambda r: r.split != "train")  # stable: train rows first, then eval
    return rows, skipped, unmatched


def _current_caches(cache_dir: Path, paths: list[Path]) -> dict[str, str]:
    """Caches in ``cache_dir`` made from exactly these images (ones left from other inputs are ignored)."""
    current = {}
    for meta_path in sorted(cache_dir.glob("r*_c*.json")):
        meta = json.loads(meta_path.read_text())
        if meta["fingerprint"] == fingerprint(paths, meta["resolution"], meta["channels"]):
            current[meta_path.stem] = meta["fingerprint"]
    return current


def _write_csv(path: Path, header, rows) -> None:
    import io

    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text.getvalue())
