"""The supernet file: one ``.npz`` of the weights plus a JSON record of what they were trained for.

The record (``meta``, stored as UTF-8 bytes so the file loads with
``allow_pickle=False``) names the format, the space and a digest of its
content, the data folder and split seed (the search's validation images
must be ones the supernet never trained on), epochs, resolutions and the
training's own figures.  Written atomically: a killed training leaves the
previous file or none.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from mcunas.atomic import atomic_path
from mcunas.errors import UserError

FORMAT = "mcunas-supernet-1"


def save_supernet(path: Path, weights: dict[str, np.ndarray], meta: dict) -> None:
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, meta=np.frombuffer(json.dumps({"format": FORMAT, **meta}).encode(), np.uint8), **weights)


def read_meta(path: Path) -> dict:
    """The record of a supernet file; one line naming the problem when ``path`` is not one."""
    return _open(path)[0]


def load_supernet(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """``(meta, weights)`` of a supernet file."""
    meta, npz = _open(path)
    with npz:
        return meta, {name: npz[name] for name in npz.files if name != "meta"}


def _open(path: Path):
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--supernet {path} does not exist: make one with `mcunas supernet train --out {path}`")
    try:
        npz = np.load(path, allow_pickle=False)
        meta = json.loads(bytes(npz["meta"]).decode()) if "meta" in npz.files else {}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, UnicodeDecodeError, json.JSONDecodeError):
        meta, npz = {}, None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(f"--supernet {path} is not an mcunas supernet file (expected format {FORMAT}): "
                        "make one with `mcunas supernet train`")
    return meta, npz


def check_for_space(path: Path, meta: dict, space, fingerprint: str) -> None:
    """Refuse a supernet made for another space, or for an earlier version of this space's file."""
    if meta.get("space") != space.name or meta.get("space_sha256") != fingerprint:
        made = f"space '{meta.get('space')}'" if meta.get("space") != space.name else "another version of its file"
        raise UserError(f"--supernet {path} was trained for {made}, not space '{space.name}' ({space.path}): "
                        f"train one with `mcunas supernet train --space {space.name}`")
