"""Per-resolution uint8 image caches: ``r<R>_c<C>.npy`` + ``r<R>_c<C>.json``.

Each cache is an N×R×R×C uint8 ``.npy`` file that training opens with
``np.load(mmap_mode="r")``, so a 115k-image set (3.2 GB at 96×96×3) never has
to fit in RAM.  The JSON beside it records a fingerprint of its inputs (the
ordered image paths with their sizes and modification times, R, C and the
resize policy) and which inputs failed to decode.  A cache whose fingerprint
matches is reused as it is; anything else is rebuilt.

A cache is written to a temporary file in the same folder and renamed over
the old one only when complete, so an interrupted or failed build leaves the
previous cache intact.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mcunas.atomic import write_atomic
from mcunas.data.images import POLICY_VERSION, BadImage, fit, open_image
from mcunas.errors import UserError

# Images handed to the decoding threads at once (bounds memory in flight).
_CHUNK = 256


@dataclass(frozen=True)
class Cache:
    """One cache file: its memory-mapped images and the inputs it skipped."""

    images: np.ndarray  # N_kept × R × R × C uint8, memory-mapped
    failed: dict[int, str]  # input index -> reason, for inputs that did not decode
    reused: bool


def fingerprint(paths: list[Path], resolution: int, channels: int) -> str:
    """Hash of everything a cache's content depends on."""
    h = hashlib.sha256(f"{POLICY_VERSION}|{resolution}|{channels}".encode())
    for path in paths:
        try:
            st = path.stat()
            h.update(f"|{path}|{st.st_size}|{st.st_mtime_ns}".encode())
        except OSError:
            h.update(f"|{path}|missing".encode())
    return h.hexdigest()


def cache_name(resolution: int, channels: int) -> str:
    return f"r{resolution}_c{channels}"


def open_cache(folder: Path, resolution: int, channels: int, expect: str | None = None) -> Cache | None:
    """The cache in ``folder`` if present, complete and (when ``expect`` is given) current."""
    stem = folder / cache_name(resolution, channels)
    try:
        meta = json.loads(stem.with_suffix(".json").read_text())
        if expect is not None and meta.get("fingerprint") != expect:
            return None
        images = np.load(stem.with_suffix(".npy"), mmap_mode="r")
    except (OSError, ValueError):
        return None
    if images.shape != (meta["count"], resolution, resolution, channels):
        return None
    return Cache(images, {int(k): v for k, v in meta["failed"].items()}, reused=True)


def ensure_caches(folder: Path, paths: list[Path], resolutions: list[int], channels: int,
                  label: str = "decoding") -> dict[int, Cache]:
    """Reuse or build one cache per resolution for ``paths`` (decoded once for all)."""
    folder.mkdir(parents=True, exist_ok=True)
    prints = {r: fingerprint(paths, r, channels) for r in resolutions}
    caches = {r: open_cache(folder, r, channels, prints[r]) for r in resolutions}
    todo = [r for r, c in caches.items() if c is None]
    if todo:
        caches.update(_build(folder, paths, todo, channels, prints, label))
    return caches


def _decode(path: Path, resolutions: list[int], channels: int) -> list[np.ndarray] | str:
    try:
        img = open_image(path, max(resolutions), channels)
    except BadImage as exc:
        return str(exc)
    return [fit(img, r) for r in resolutions]


def _build(folder: Path, paths: list[Path], resolutions: list[int], channels: int,
           prints: dict[int, str], label: str) -> dict[int, Cache]:
    from mcunas.output import progress_bar

    tmp = {r: Path(tempfile.mkstemp(dir=folder, prefix=f".{cache_name(r, channels)}.", suffix=".npy")[1])
           for r in resolutions}
    try:
        out = {r: np.lib.format.open_memmap(tmp[r], mode="w+", dtype=np.uint8,
                                            shape=(max(len(paths), 1), r, r, channels))
               for r in resolutions}
        for r in resolutions:
            _reserve(tmp[r])
        failed: dict[int, str] = {}
        kept = 0
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool, \
                progress_bar(len(paths), label) as bar:
            for start in range(0, len(paths), _CHUNK):
                chunk = paths[start:start + _CHUNK]
                for i, result in enumerate(pool.map(lambda p: _decode(p, resolutions, channels), chunk)):
                    if isinstance(result, str):
                        failed[start + i] = result
                        continue
                    for r, arr in zip(resolutions, result):
                        out[r][kept] = arr
                    kept += 1
                bar.update(len(chunk))
        if kept == 0:
            first = next(iter(failed.values()), "no inputs")
            raise UserError(f"none of the {len(paths)} images could be read (first: {first}); "
                            "check the image folder")
        caches = {}
        for r in resolutions:
            arr = out.pop(r)
            arr.flush()
            del arr
            _shrink(tmp[r], kept, r, channels)
            stem = folder / cache_name(r, channels)
            _readable(tmp[r])
            os.replace(tmp[r], stem.with_suffix(".npy"))
            meta = {"fingerprint": prints[r], "count": kept, "resolution": r, "channels": channels,
                    "policy": POLICY_VERSION, "failed": failed}
            write_atomic(stem.with_suffix(".json"), json.dumps(meta, indent=1))
            images = np.load(stem.with_suffix(".npy"), mmap_mode="r")
            caches[r] = Cache(images, failed, reused=False)
        return caches
    finally:
        for path in tmp.values():
            path.unlink(missing_ok=True)


def _reserve(path: Path) -> None:
    """Allocate the whole (sparse) file now: a full disk is then an OSError here, not SIGBUS mid-write.

    Writing through a memory map into a sparse file's hole on a full disk
    kills the process with SIGBUS, leaving the temporary file behind.
    """
    with open(path, "r+b") as f:
        try:
            os.posix_fallocate(f.fileno(), 0, os.fstat(f.fileno()).st_size)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # file systems that cannot preallocate
                raise OSError(exc.errno, exc.strerror, str(path)) from None


def _shrink(path: Path, kept: int, resolution: int, channels: int) -> None:
    """Rewrite the .npy header for ``kept`` rows and cut the unused tail.

    Rows were written compactly, so only the header's shape and the file
    length change; the header is padded to the same length whenever it fits.
    """
    shape = (kept, resolution, resolution, channels)
    with open(path, "r+b") as f:
        np.lib.format.read_magic(f)
        np.lib.format.read_array_header_1_0(f)
        data_offset = f.tell()
        header = _header_bytes(shape, data_offset)
        if header is None:  # would not fit: copy into a fresh file (rare)
            old = np.load(path, mmap_mode="r")[:kept]
            fresh = path.with_suffix(".shrink")
            np.save(fresh, old)
            del old
            os.replace(fresh, path)
            return
        f.seek(0)
        f.write(header)
        f.truncate(data_offset + kept * resolution * resolution * channels)


def _header_bytes(shape: tuple, length: int) -> bytes | None:
    """A version-1.0 .npy header for uint8 ``shape`` padded to exactly ``length`` bytes."""
    text = "{'descr': '|u1', 'fortran_order': False, 'shape': %r, }" % (shape,)
    prefix = b"\x93NUMPY\x01\x00"
    room = length - len(prefix) - 2 - len(text) - 1
    if room < 0:
        return None
    body = (text + " " * room + "\n").encode("latin1")
    return prefix + len(body).to_bytes(2, "little") + body


def _readable(path: Path) -> None:
    """Give a mkstemp file (always 0600) the mode a plain ``open`` would have."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


