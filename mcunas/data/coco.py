"""COCO instance annotations -> person / not-person labels, with pycocotools.

The rule is the reference VWW builder's (tensorflow/models,
``research/slim/datasets/build_visualwakewords_data_lib.py``): an image is
labelled 1 when it has at least one annotation of a class of interest whose
area / (width × height) is **greater than** the threshold (0.005 by default);
crowd annotations count.  Several classes mean "any of these".

``area="segmentation"`` (the default) uses each annotation's ``area`` field,
which COCO computes from the segmentation mask: this is what the reference
builder does and what published VWW accuracies were measured on.
``area="bbox"`` uses the box's width × height, the VWW paper's wording
("bounding box area"); boxes are never smaller than their masks, so it
labels at least as many images person.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

from mcunas.errors import UserError

AREA_RULES = ("segmentation", "bbox")


@dataclass(frozen=True)
class Labelled:
    """One COCO image with its VWW label."""

    image_id: int
    file_name: str
    label: int
    fraction: float  # largest area / image area among the classes of interest (0 if none)


def load_coco(path: Path):
    """A pycocotools ``COCO`` index of ``path``; malformed files are one clear UserError."""
    from pycocotools.coco import COCO

    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"annotations file {path} does not exist") from None
    except OSError as exc:
        raise UserError(f"cannot read annotations file {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"annotations file {path} is not JSON ({exc}); pass a COCO "
                        "instances_*.json file") from None
    problem = _coco_problem(data)
    if problem:
        raise UserError(f"annotations file {path} is not COCO instances JSON: {problem}")
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco.createIndex()
    return coco


def _coco_problem(data) -> str | None:
    """What makes ``data`` unusable as COCO instances, or None."""
    if not isinstance(data, dict):
        return f"top level is a {type(data).__name__}, expected an object"
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            return f"no '{key}' list"
    for key, fields in _FIELDS.items():
        for i, entry in enumerate(data[key]):
            missing = [f for f in fields if not isinstance(entry, dict) or f not in entry]
            if missing:
                return f"{key}[{i}] lacks {', '.join(missing)}"
            for field, (kind, expected) in fields.items():
                if not kind(entry[field]):
                    shown = repr(entry[field])
                    return (f"{key}[{i}].{field} is {shown[:40] + '...' if len(shown) > 40 else shown}, "
                            f"expected {expected}")
    return None


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and abs(v) != float("inf")


def _is_id(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_box(v) -> bool:
    return isinstance(v, list) and len(v) == 4 and all(_is_number(x) for x in v)


# Each field the labelling reads, with its check: a wrong type would otherwise surface as a
# TypeError deep inside pycocotools or the area rule.
_FIELDS = {
    "images": {"id": (_is_id, "an integer"), "file_name": (lambda v: isinstance(v, str) and v != "", "a file name"),
               "width": (_is_number, "a number"), "height": (_is_number, "a number")},
    "annotations": {"image_id": (_is_id, "an integer"), "category_id": (_is_id, "an integer"),
                    "area": (_is_number, "a number"), "bbox": (_is_box, "[x, y, width, height] numbers")},
    "categories": {"id": (_is_id, "an integer"), "name": (lambda v: isinstance(v, str), "a string")},
}


def class_ids(coco, names: list[str]) -> dict[str, int]:
    """Category ids of the ``names`` this file knows (possibly none of them)."""
    by_name = {c["name"]: c["id"] for c in coco.loadCats(coco.getCatIds())}
    return {n: by_name[n] for n in names if n in by_name}


def category_names(coco) -> list[str]:
    return sorted(c["name"] for c in coco.loadCats(coco.getCatIds()))


def label_images(coco, cat_ids: list[int], threshold: float, area: str) -> list[Labelled]:
    """Every image in ``coco`` labelled by the VWW rule, sorted by image id."""
    if area not in AREA_RULES:
        raise UserError(f"--area must be one of {', '.join(AREA_RULES)}, got '{area}'")
    out = []
    for image in coco.loadImgs(sorted(coco.getImgIds())):
        image_area = float(image["width"]) * float(image["height"])
        # iscrowd=None: crowd annotations are included, as in the reference builder.
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image["id"], catIds=cat_ids, iscrowd=None)) if cat_ids else []
        sizes = [a["area"] if area == "segmentation" else a["bbox"][2] * a["bbox"][3] for a in anns]
        fraction = max(sizes, default=0.0) / image_area if image_area > 0 else 0.0
        out.append(Labelled(int(image["id"]), image["file_name"], int(fraction > threshold), fraction))
    return out
